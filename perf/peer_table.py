"""The head-to-head's table (markdown, printed and written into docs/benchmarks.md): pure text from the summary.

One row per system and K, rounds shown as ``min-max`` ranges; K = 10 first, as in issue 11.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from peer_report import DOC_BEGIN, DOC_END, ORDER

SYSTEM_LABELS: Final = {
    "ours": "this project (defaults: lean endpoints)",
    "ours-full": "this project, full mode (a SpiderEndpoint per pod)",
    "upstream": "upstream Spiderpool v1.2.2, agent + executable",
    "whereabouts": "whereabouts v0.9.2",
}
WITHOUT_AGENT: Final = frozenset({"whereabouts"})
HEADER: Final = (
    "| in flight per node | system | ADD phase | ADD p50 / p99 | DEL phase | DEL p50 / p99 | failed ADDs / DELs "
    "| duplicates | API writes per pod, ADD phase (409s) | leaked after DEL "
    "| CPU s in the ADD phase: agents (ours: + controller) / executables / API server | load at start |"
)


def seconds_text(value: float) -> str:
    """A duration in seconds, as the issue writes them: ``364 ms``, ``1.8 s``, ``42 s``."""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def span(values: Sequence[float], show: Any) -> str:
    """``show(min)-show(max)`` across rounds, or one value when they agree."""
    low, high = show(min(values)), show(max(values))
    if low == high:
        return str(low)
    for unit in (" ms", " s", " %"):  # "6.4 s-8.2 s" reads better as "6.4-8.2 s"
        if str(low).endswith(unit) and str(high).endswith(unit):
            return f"{str(low).removesuffix(unit)}-{high}"
    return f"{low}-{high}"


def seconds_span(values: Sequence[float]) -> str:
    """Durations across rounds in one unit, the largest one's: ``364-491 ms``, ``0.36-1.8 s``, ``42-61 s``."""
    if max(values) < 1:
        return span(values, seconds_text)
    return span(values, lambda v: seconds_text(v) if v >= 1 else f"{v:.2f} s")


def _ms(values: Sequence[float]) -> str:
    return seconds_span([v / 1000 for v in values])


def _count(values: Sequence[float]) -> str:
    return span(values, lambda v: f"{v:.0f}")


def _failures(each: Mapping[str, Sequence[float]], pods: int) -> str:
    adds, dels = each["failed_adds"], each["failed_dels"]
    text = f"{_count(adds)} / {_count(dels)}"
    if max(adds) and pods:
        text += f" ({span([100 * a / pods for a in adds], lambda v: f'{v:.0f} %')} of ADDs)"
    return text


def row(entry: Mapping[str, Any], *, pods: int) -> str:
    each = entry["each"]
    writes = f"{span(each['writes_per_pod_add'], lambda v: f'{v:.2f}')} ({_count(each['conflicts_409_add'])})"
    cpu = [span(each[key], lambda v: f"{v:.1f}") for key in (
        "agent_cpu_seconds_add", "executable_cpu_seconds_add", "apiserver_cpu_seconds_add")]
    if entry["system"] in WITHOUT_AGENT:
        cpu[0] = "no agent"
    cells = [
        str(entry["inflight"]),
        SYSTEM_LABELS.get(entry["system"], entry["system"]),
        seconds_span(each["add_seconds"]),
        f"{_ms(each['add_p50_ms'])} / {_ms(each['add_p99_ms'])}",
        seconds_span(each["del_seconds"]),
        f"{_ms(each['del_p50_ms'])} / {_ms(each['del_p99_ms'])}",
        _failures(each, pods),
        _count(each["duplicates"]),
        writes,
        _count(each["leaked"]),
        " / ".join(cpu),
        span(each["load_average_1m"], lambda v: f"{v:.1f}"),
    ]
    return "| " + " | ".join(cells) + " |"


def table(summary: Mapping[str, Mapping[str, Any]], *, pods: int) -> str:
    lines = [HEADER, "|" + "---|" * HEADER.count(" | ") + "---|"]
    for inflight in sorted({entry["inflight"] for entry in summary.values()}, reverse=True):
        for system in ORDER:
            entry = summary.get(f"{system}_k{inflight}")
            if entry is not None:
                lines.append(row(entry, pods=pods))
    return "\n".join(lines)


def ratio_lines(found: Mapping[str, float], verdict: Mapping[str, str]) -> list[str]:
    return [f"- `ratios.{name}` = **{value:g}**" + (f" (target {verdict[name]})" if name in verdict else "")
            for name, value in found.items()]


def replace_section(document: str, section: str) -> str:
    """``document`` with the text between the generated-section markers replaced (appended when absent)."""
    block = f"{DOC_BEGIN}\n{section.strip()}\n{DOC_END}"
    if DOC_BEGIN in document and DOC_END in document:
        head, rest = document.split(DOC_BEGIN, 1)
        return head + block + rest.split(DOC_END, 1)[1]
    return document.rstrip("\n") + "\n\n" + block + "\n"
