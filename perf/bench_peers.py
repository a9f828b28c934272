"""Head-to-head of IPAM systems on one machine: this project, upstream Spiderpool v1.2.2 and whereabouts v0.9.2.

The same workload and driver for every system: ``--pods`` pods (1,000) over ``--nodes`` simulated nodes (10), a pool
of exactly ``--pods`` IPv4 addresses, each system's IPAM executable exec'd directly as the node's macvlan would,
K = 1 and 10 calls in flight per node (``perf/inflight.py``), every ADD then every DEL.  Each run gets a fresh API
server (``spiderpool.devcluster`` ControlPlane); the systems' order alternates from one (round, K) group to the next;
two rounds.  Each system runs with its own defaults (upstream's agent with what its webhook would set on the pool).
Per system and K: ADD and DEL wall time, p50/p99, failed calls, duplicate addresses, leaks after DEL, API writes by
request with 409s (``apiserver_request_total``), CPU seconds of agents / executables / API server, the load average
when each run started; ``ratios.*`` (e.g. ``ratios.add_vs_upstream_k1``: upstream's ADD phase over ours).

    python perf/bench_peers.py [--json] [--quick] [--systems ours,upstream,whereabouts[,ours-full]] [--inflight 1,10]
                               [--rounds 2] [--pods 1000] [--nodes 10] [--no-docs] [--output PATH]

Builds what it lacks first (whereabouts and upstream from the Go module proxy, cached in ``~/.cache/spiderpool``).
Root (simulated nodes are network namespaces).  Writes perf/results/bench_peers.json, docs/bench_peers.png and the
table in docs/benchmarks.md (``--quick``: perf/results/bench_peers_quick.json and no docs); prints the table (to
stderr with ``--json``).  A full run takes about 45-60 minutes on 2 cores, most of it whereabouts.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchkit import machine
from peer_plot import plot
from peer_report import TARGETS, ratios, results_json, schedule, summarize, verdicts
from peer_run import RunSpec, run_once
from peer_systems import DEPLOYERS, SYSTEMS, prepare
from peer_table import ratio_lines, replace_section, table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "perf" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "bench_peers.png"


def options_from(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the JSON document on stdout (table on stderr)")
    parser.add_argument("--quick", action="store_true", help="a check: 100 pods, one round, no docs")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help="comma-separated, of " + ", ".join(DEPLOYERS))
    parser.add_argument("--inflight", default="1,10", help="calls in flight per node, comma-separated")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--no-docs", action="store_true", help="leave docs/ (table and plot) untouched")
    parser.add_argument("--output", type=Path, help="the JSON file (default perf/results/bench_peers[_quick].json)")
    options = parser.parse_args(argv)
    if options.quick:
        options.pods, options.rounds, options.no_docs = 100, 1, True
    options.systems = [name.strip() for name in options.systems.split(",") if name.strip()]
    unknown = sorted(set(options.systems) - set(DEPLOYERS))
    if unknown:
        parser.error(f"unknown systems {unknown}; choose from {sorted(DEPLOYERS)}")
    options.inflight = [int(k) for k in options.inflight.split(",")]
    if options.pods < 1 or options.nodes < 1 or options.rounds < 1 or min(options.inflight) < 1:
        parser.error("--pods, --nodes, --rounds and every --inflight K must be at least 1")
    return options


def run_all(options: argparse.Namespace, log: Callable[[str], None], checkpoint: Callable[[list[dict[str, Any]]], None]
            ) -> list[dict[str, Any]]:
    """Every planned run in order; a run that raises is recorded with its error and the others go on (a full run
    takes most of an hour: one peer's bad start must not lose the rest); the runs so far are checkpointed after
    each."""
    order = schedule(options.systems, rounds=options.rounds, inflights=options.inflight)
    runs: list[dict[str, Any]] = []
    for number, planned in enumerate(order, start=1):
        log(f"run {number}/{len(order)}: {planned.system}, K={planned.inflight}, round {planned.round}")
        spec = RunSpec(planned.system, planned.inflight, options.pods, options.nodes, planned.round)
        try:
            run = run_once(spec)
        except Exception as error:  # recorded and shown under the table, never dropped
            log(f"  FAILED: {error!r}")
            runs.append({"system": spec.system, "inflight": spec.inflight, "round": spec.round,
                         "error": f"{type(error).__name__}: {error}"[-2000:]})
        else:
            log(f"  ADD {run['add']['seconds']:.1f} s (p50 {run['add']['p50_ms']:.0f} / p99 "
                f"{run['add']['p99_ms']:.0f} ms, {run['add']['failed']} failed), DEL {run['del']['seconds']:.1f} s, "
                f"leaked {run['leaked']}, load {run['load_average_1m']}")
            runs.append(run)
        checkpoint(runs)
    return runs


def document_of(options: argparse.Namespace, runs: list[dict[str, Any]], started: float) -> dict[str, Any]:
    summary = summarize(runs)
    found = ratios(summary)
    return {
        "benchmark": "bench_peers",
        "machine": machine(),
        "parameters": {"pods": options.pods, "nodes": options.nodes, "pool_size": options.pods,
                       "inflight": options.inflight, "rounds": options.rounds, "systems": options.systems,
                       "quick": options.quick},
        "summary": summary,
        "ratios": found,
        "targets": {name: f"{op} {bound:g}" for name, (op, bound) in TARGETS.items()},
        "verdicts": verdicts(found),
        "errors": [f"{run['system']} K={run['inflight']} round {run['round']}: {run['error']}"
                   for run in runs if "error" in run],
        "runs": runs,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def doc_section(document: Mapping[str, Any], text: str) -> str:
    info, params = document["machine"], document["parameters"]
    loads = ", ".join(f"{run['system']} K={run['inflight']} r{run['round']}: {run['load_average_1m']}"
                      for run in document["runs"] if "error" not in run)
    errors = [f"- run that failed (left out of the table): {error}" for error in document["errors"]]
    return "\n".join([
        f"Measured {info['date']} on {info['cores']} cores ({info['cpu']}), Python {info['python']}, Kubernetes "
        f"{info['kubernetes']}: {params['pods']} pods over {params['nodes']} nodes, a pool of {params['pool_size']}, "
        f"{params['rounds']} round(s), the systems alternating; load average (1 min) when each run started: {loads}.",
        "", text, "", *errors, *ratio_lines(document["ratios"], document["verdicts"]), "",
        "![ADD latency distribution per system and K](bench_peers.png)",
    ])


def main(argv: list[str] | None = None) -> int:
    options = options_from(argv)
    out = sys.stderr if options.json else sys.stdout

    def log(message: str) -> None:
        print(f"[bench_peers] {message}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    output = options.output or RESULTS / ("bench_peers_quick.json" if options.quick else "bench_peers.json")
    output.parent.mkdir(parents=True, exist_ok=True)

    def checkpoint(runs: list[dict[str, Any]]) -> None:
        output.write_text(results_json(document_of(options, runs, started)))

    prepare(options.systems, log)  # builds before any timing: a cold cache costs minutes
    runs = run_all(options, log, checkpoint)
    document = document_of(options, runs, started)
    text = table(document["summary"], pods=options.pods)
    output.write_text(results_json(document))
    title = f"{options.pods} pods over {options.nodes} nodes, pool of {options.pods}, {document['machine']['date']}"
    if not options.no_docs:
        log(plot(runs, PLOT, title=title))
        DOC.write_text(replace_section(DOC.read_text(), doc_section(document, text)))
    else:
        log(plot(runs, output.with_suffix(".png"), title=title))
    print(text, file=out)
    print("\n".join([*document["errors"], *ratio_lines(document["ratios"], document["verdicts"])]), file=out)
    if options.json:
        print(results_json(document), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
