"""Allocator benchmark: the compiled PoolAllocator against the pure-Python reference.

Measures, on IPv4 /24, /16, /8-sized pools and an IPv6 pool of 2**24 addresses at 0 %, 50 % and 99 % fill (the lowest
addresses used, the worst case for a scan): allocate+release pairs and first-fit allocations per second; the time to
rebuild an allocator from a 16,000-record ``status.allocatedIPs`` string against orjson parsing it alone; and bytes
of memory per address. Prints a table (or with ``--json`` one JSON document) and writes perf/results/bench_alloc.json
(+ bench_alloc.png when matplotlib is installed).

    python perf/bench_alloc.py [--json] [--quick] [--output perf/results/bench_alloc.json]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import random
import statistics
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import orjson
from benchkit import machine

with contextlib.redirect_stdout(sys.stderr):  # an editable install announces its rebuild on stdout: keep --json clean
    from spiderpool.core.allocator import PoolAllocator
    from spiderpool.core.bitmap_ref import ReferenceAllocator, SnapshotParts, encode_snapshot

Allocator = PoolAllocator | ReferenceAllocator
IMPLEMENTATIONS: Final[dict[str, type[PoolAllocator] | type[ReferenceAllocator]]] = {
    "compiled": PoolAllocator,
    "reference": ReferenceAllocator,
}
V4_BASE: Final = 10 << 24
V6_BASE: Final = 0xFD00_0000_0000_0000_0000_0000_0000_0000


@dataclass(frozen=True)
class Shape:
    name: str
    key: str  # in ratio names: alloc_<fill>pct_<key>
    version: int
    base: int
    capacity: int


SHAPES: Final = (Shape("ipv4 /24", "24", 4, V4_BASE, 1 << 8), Shape("ipv4 /16", "16", 4, V4_BASE, 1 << 16),
                 Shape("ipv4 /8", "8", 4, V4_BASE, 1 << 24), Shape("ipv6 2^24", "v6", 6, V6_BASE, 1 << 24))
FILLS: Final = (0.0, 0.5, 0.99)
RECORDS: Final = 16_000
RESULTS: Final = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Budget:
    seconds: float  # per round, per measurement
    rounds: int
    max_ops: int
    rebuild_repeats: int


FULL: Final = Budget(seconds=0.06, rounds=3, max_ops=400_000, rebuild_repeats=15)
QUICK: Final = Budget(seconds=0.01, rounds=1, max_ops=20_000, rebuild_repeats=3)


@dataclass(frozen=True)
class Cell:
    impl: str
    pool: str
    capacity: int
    fill: float
    alloc_release_ns: float  # one allocate plus one release
    first_fit_ns: float  # one allocate
    ops: int  # operations timed, both measurements, all rounds

    @property
    def first_fit_per_s(self) -> float:
        return 1e9 / self.first_fit_ns


def filled_pool(cls: type[PoolAllocator] | type[ReferenceAllocator], shape: Shape, fill: float) -> Allocator:
    """A pool whose lowest ``fill`` share is used, built by restoring a crafted snapshot (fast at any size)."""
    used = round(shape.capacity * fill)
    words = ((1 << used) - 1).to_bytes((shape.capacity + 63) // 64 * 8, "little")
    spans = [(shape.base, shape.base + shape.capacity - 1)]
    parts = SnapshotParts(version=shape.version, spans=spans, excluded=[], reserved=[], words=words)
    return cls.restore(encode_snapshot(parts))


def timer_overhead() -> float:
    samples = []
    for _ in range(2000):
        start = time.perf_counter()
        samples.append(time.perf_counter() - start)
    return min(samples)


def run_rounds(step: Callable[[int], float], budget: Budget) -> tuple[float, int]:
    """Best ns/op over ``budget.rounds`` rounds of ``step(n) -> seconds``, chunks doubling until the round's time."""
    best, total_ops = float("inf"), 0
    for _ in range(budget.rounds):
        ops, elapsed, chunk = 0, 0.0, 1
        while ops < budget.max_ops and elapsed < budget.seconds:
            elapsed += step(chunk)
            ops += chunk
            chunk = min(chunk * 2, budget.max_ops - ops, 65_536) or 1
        best = min(best, elapsed / ops * 1e9)
        total_ops += ops
    return best, total_ops


def measure_cell(impl: str, shape: Shape, fill: float, budget: Budget, overhead: float) -> Cell:
    pool = filled_pool(IMPLEMENTATIONS[impl], shape, fill)
    allocate, release = pool.allocate, pool.release

    def alloc_release(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            address = allocate()
            if address is not None:
                release(address)
        return time.perf_counter() - start - overhead

    def first_fit(n: int) -> float:
        elapsed = 0.0
        while n > 0:  # a nearly full pool has few free addresses: allocate them in batches, release untimed
            batch = min(n, pool.free_count)
            start = time.perf_counter()
            taken = [allocate() for _ in range(batch)]
            elapsed += time.perf_counter() - start - overhead
            for address in taken:
                if address is not None:
                    release(address)
            n -= batch
        return elapsed

    with gc_paused():
        pair_ns, pair_ops = run_rounds(alloc_release, budget)
        alloc_ns, alloc_ops = run_rounds(first_fit, budget)
    return Cell(impl, shape.name, shape.capacity, fill, pair_ns, alloc_ns, pair_ops + alloc_ops)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def allocated_ips_status(count: int) -> str:
    """A ``status.allocatedIPs`` string as upstream writes it (Go json.Marshal: compact, keys sorted)."""
    rng = random.Random(2024)
    offsets = rng.sample(range(1, (1 << 16) - 1), count)
    records = {
        f"10.0.{offset >> 8}.{offset & 255}": {
            "pod": f"team-{rng.randrange(40)}/app-{rng.getrandbits(40):010x}-{rng.getrandbits(20):05x}",
            "podUid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        }
        for offset in offsets
    }
    return orjson.dumps(records, option=orjson.OPT_SORT_KEYS).decode()


def measure_rebuild(budget: Budget) -> dict[str, Any]:
    status = allocated_ips_status(RECORDS)
    pool_range = [(V4_BASE + 1, V4_BASE + (1 << 16) - 2)]
    timings: dict[str, list[float]] = {"parse": [], "compiled": [], "reference": []}

    def parse() -> object:
        return orjson.loads(status)

    def rebuild(cls: type[PoolAllocator] | type[ReferenceAllocator]) -> Callable[[], object]:
        def build() -> object:
            pool = cls(version=4, ranges=pool_range)
            rejected = pool.load_used(orjson.loads(status).keys())
            if rejected or pool.used_count != RECORDS:
                raise AssertionError(f"{cls.__name__} rebuilt {pool.used_count} records, rejected {rejected[:3]}")
            return pool

        return build

    steps = {"parse": parse, **{impl: rebuild(cls) for impl, cls in IMPLEMENTATIONS.items()}}
    for step in steps.values():
        step()  # warm orjson's key cache and the allocator code paths
    with gc_paused():
        for _ in range(budget.rebuild_repeats):  # interleaved, so all three see the same machine load
            for key, step in steps.items():
                start = time.perf_counter()
                result = step()
                timings[key].append(time.perf_counter() - start)
                del result  # freeing the parsed records is not part of either measurement
    medians = {key: statistics.median(values) for key, values in timings.items()}
    return {
        "records": RECORDS,
        "status_bytes": len(status),
        "pool": "10.0.0.1-10.0.255.254",
        "median_ms": {key: value * 1e3 for key, value in medians.items()},
        "best_ms": {key: min(values) * 1e3 for key, values in timings.items()},
        "compiled_over_parse": medians["compiled"] / medians["parse"],
        "reference_over_parse": medians["reference"] / medians["parse"],
    }


def measure_memory() -> list[dict[str, Any]]:
    rows = []
    for shape in SHAPES:
        for impl, cls in IMPLEMENTATIONS.items():
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                pool = filled_pool(cls, shape, 0.5)
                held = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            rows.append({"impl": impl, "pool": shape.name, "capacity": pool.capacity, "bytes": held,
                         "bytes_per_address": held / shape.capacity})
            del pool
    return rows


def summarize(cells: list[Cell], rebuild: dict[str, Any]) -> tuple[dict[str, float], dict[str, bool]]:
    by_key = {(cell.impl, cell.pool, cell.fill): cell for cell in cells}
    ratios = {
        f"alloc_{round(fill * 100)}pct_{shape.key}":
            by_key["reference", shape.name, fill].first_fit_ns / by_key["compiled", shape.name, fill].first_fit_ns
        for shape in SHAPES for fill in FILLS
    }
    compiled = [cell for cell in cells if cell.impl == "compiled"]
    targets = {
        "alloc_99pct_16 >= 20": ratios["alloc_99pct_16"] >= 20,
        "compiled allocate <= 1 us at every size and fill": all(cell.first_fit_ns <= 1000 for cell in compiled),
        "rebuild of 16,000 records <= 5x orjson parse": rebuild["compiled_over_parse"] <= 5,
    }
    return ratios, targets


def run(budget: Budget) -> dict[str, Any]:
    overhead = timer_overhead()
    cells = [measure_cell(impl, shape, fill, budget, overhead)
             for shape in SHAPES for fill in FILLS for impl in IMPLEMENTATIONS]
    rebuild = measure_rebuild(budget)
    memory = measure_memory()
    ratios, targets = summarize(cells, rebuild)
    return {
        "machine": machine(),
        "method": {"timer": "time.perf_counter", "rounds": budget.rounds, "seconds_per_round": budget.seconds,
                   "statistic": "best round (ns per op); rebuild: median of interleaved repeats",
                   "fill": "the lowest share of the pool's addresses marked used",
                   "timer_overhead_ns": overhead * 1e9},
        "alloc": [asdict(cell) | {"first_fit_per_s": cell.first_fit_per_s} for cell in cells],
        "rebuild": rebuild,
        "memory": memory,
        "ratios": ratios,
        "targets": targets,
    }


def _rate(ns: float) -> str:
    return f"{ns:12,.0f} ns {1e9 / ns:12,.0f}/s"


def render_table(report: dict[str, Any]) -> str:
    cells = {(row["impl"], row["pool"], row["fill"]): row for row in report["alloc"]}
    lines = [f"{'pool':10} {'fill':>4}  {'impl':9} {'allocate+release':>29}  {'first-fit allocate':>29}  ratio"]
    for shape in SHAPES:
        for fill in FILLS:
            for impl in IMPLEMENTATIONS:
                row = cells[impl, shape.name, fill]
                ratio = report["ratios"][f"alloc_{round(fill * 100)}pct_{shape.key}"] if impl == "reference" else None
                lines.append(f"{shape.name:10} {fill:4.0%}  {impl:9} {_rate(row['alloc_release_ns'])}  "
                             f"{_rate(row['first_fit_ns'])}  {'' if ratio is None else f'{ratio:,.0f}x'}")
    rebuild = report["rebuild"]
    lines.append(f"\nrebuild from {rebuild['records']:,} records ({rebuild['status_bytes']:,} bytes), median ms: "
                 + ", ".join(f"{key} {value:.2f}" for key, value in rebuild["median_ms"].items())
                 + f"; compiled / parse = {rebuild['compiled_over_parse']:.2f}x")
    lines.append("memory (50 % fill), bytes per address: " + ", ".join(
        f"{row['impl']} {row['pool']} {row['bytes_per_address']:.4f}" for row in report["memory"]))
    lines.append("targets: " + ", ".join(f"{name}: {'met' if met else 'MISSED'}"
                                        for name, met in report["targets"].items()))
    info = report["machine"]
    lines.append(f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, {info['date']}, "
                 f"load {info['load_average_1m']:.2f}")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> str:
    try:
        import matplotlib  # optional: the "perf" extra

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"matplotlib is not installed: skipped {path.name} (pip install 'spiderpool[perf]')"
    labels = [f"{shape.name}\n{fill:.0%}" for shape in SHAPES for fill in FILLS]
    figure, axes = plt.subplots(figsize=(12, 5))
    for offset, impl in ((-0.2, "compiled"), (0.2, "reference")):
        values = [row["first_fit_ns"] for row in report["alloc"] if row["impl"] == impl]
        axes.bar([i + offset for i in range(len(labels))], values, width=0.4, label=impl)
    axes.set_yscale("log")
    axes.set_ylabel("ns per first-fit allocate (log)")
    axes.set_xticks(range(len(labels)), labels, fontsize=7)
    axes.axhline(1000, color="grey", linestyle="--", linewidth=0.8)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return f"wrote {path}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    parser.add_argument("--quick", action="store_true", help="short budget: a smoke run, figures not for the record")
    parser.add_argument("--output", type=Path, default=RESULTS / "bench_alloc.json", help="where to write the JSON")
    args = parser.parse_args(argv)
    report = run(QUICK if args.quick else FULL)
    document = orjson.dumps(report, option=orjson.OPT_INDENT_2)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(document + b"\n")
    print(document.decode() if args.json else render_table(report), flush=True)
    print(plot(report, args.output.with_suffix(".png")), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
