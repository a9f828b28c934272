"""The head-to-head's picture: ADD latency distribution per system, one panel per K (``docs/bench_peers.png``).

Each curve is the share of ADDs (every round pooled) answered within a time, on a log time axis: the further left
and the steeper, the better; where a curve stops short of 100 % the rest of the ADDs failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from peer_report import ORDER
from peer_table import SYSTEM_LABELS

COLOURS = {"ours": "#1b7837", "ours-full": "#7fbf7b", "upstream": "#2166ac", "whereabouts": "#b2182b"}


def _cdf(latencies_ms: Sequence[float], calls: int) -> tuple[list[float], list[float]]:
    ordered = sorted(latencies_ms)
    return ordered, [100 * (index + 1) / calls for index in range(len(ordered))]


def _curve(axis: Any, runs: Sequence[Mapping[str, Any]], colour: str | None) -> Any:
    """One system's curve (its rounds pooled); where ADDs failed, their share is written at the curve's end."""
    ok = [ms for run in runs
          for ms, fine in zip(run["add"]["latencies_ms"], run["add"].get("ok") or [], strict=False) if fine]
    calls = sum(len(run["add"]["latencies_ms"]) for run in runs)
    xs, ys = _cdf(ok, calls)
    (line,) = axis.step(xs, ys, where="post", color=colour, linewidth=2)
    if calls > len(ok) and xs:
        axis.annotate(f"{100 * (calls - len(ok)) / calls:.0f} % failed", xy=(xs[-1], ys[-1]), xytext=(5, -4),
                      textcoords="offset points", color=colour, fontsize=8, va="top")
    return line


def duration_label(ms: float) -> str:
    """A log axis tick in milliseconds as people say it: ``10 ms``, ``1 s``, ``100 s``."""
    return f"{ms:g} ms" if ms < 1000 else f"{ms / 1000:g} s"


def plot(runs: Sequence[Mapping[str, Any]], path: Path, *, title: str) -> str:
    """Write the PNG; returns what was done, for the log."""
    try:
        import matplotlib  # the "perf" extra (hack/setup.sh installs it)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import ticker
    except ImportError:
        return f"matplotlib is not installed: {path.name} not drawn (pip install 'spiderpool[perf]')"
    runs = [run for run in runs if "error" not in run]
    inflights = sorted({run["inflight"] for run in runs})
    if not inflights:
        return f"no run succeeded: {path.name} not drawn"
    figure, axes = plt.subplots(1, len(inflights), figsize=(6.2 * len(inflights), 5.0), squeeze=False, sharey=True)
    legend: dict[str, Any] = {}
    for axis, inflight in zip(axes[0], inflights, strict=True):
        for system in ORDER:
            mine = [run for run in runs if run["system"] == system and run["inflight"] == inflight]
            if mine:
                legend[SYSTEM_LABELS.get(system, system)] = _curve(axis, mine, COLOURS.get(system))
        axis.set_xscale("log")
        axis.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: duration_label(value)))
        axis.xaxis.set_minor_formatter(ticker.NullFormatter())
        axis.set_xlabel("ADD latency (log scale)")
        axis.set_title(f"{inflight} ADD{'s' if inflight > 1 else ''} in flight per node")
        axis.grid(True, which="both", alpha=0.3)
        axis.set_ylim(0, 100)
    axes[0][0].set_ylabel("ADDs answered successfully within (%)")
    figure.legend(list(legend.values()), list(legend), loc="lower center", ncol=len(legend), fontsize=9,
                  frameon=False)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return f"wrote {path}"
