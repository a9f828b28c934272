"""The integration suite's pools share one control plane and are never deleted, and agents serve an address that
two pools list from the older pool only (``spiderpool.core.pool_overlap``): so two test files whose agents allocate
from overlapping literal ranges would steal each other's addresses, depending on the order they run in."""

from __future__ import annotations

import ipaddress
import itertools
import re
from pathlib import Path

_INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
_SPAN = re.compile(r'span\("(\d+\.\d+\.\d+\.\d+)", *(\d+)\)')
_RANGE = re.compile(r'"(\d+\.\d+\.\d+\.\d+)-(\d+\.\d+\.\d+\.\d+)"')
_AGENT = re.compile(r"\b(node_agent|running_agent|AgentProcess|agent_process|spiderpool\.agent)\b")


def _ranges(text: str) -> list[tuple[int, int, str]]:
    found = [(int(ipaddress.ip_address(first)), int(ipaddress.ip_address(first)) + int(count) - 1, first)
             for first, count in _SPAN.findall(text)]
    found += [(int(ipaddress.ip_address(first)), int(ipaddress.ip_address(last)), first)
              for first, last in _RANGE.findall(text)]
    return found


def test_pv06_agent_test_files_use_their_own_address_ranges() -> None:
    """PV06: no two integration test files that run agents write pools whose literal IPv4 ranges (``span(...)``
    or ``"a-b"``) overlap; the failure names both files and the shared address."""
    files = {path.name: path.read_text() for path in sorted(_INTEGRATION.glob("test_*.py"))}
    with_agents = {name: _ranges(text) for name, text in files.items() if _AGENT.search(text)}
    assert len(with_agents) >= 5, f"the scan found too few agent test files: {sorted(with_agents)}"
    clashes = [f"{a} and {b} both use {ipaddress.ip_address(max(ra[0], rb[0]))}"
               for (a, ranges_a), (b, ranges_b) in itertools.combinations(with_agents.items(), 2)
               for ra in ranges_a for rb in ranges_b if ra[0] <= rb[1] and rb[0] <= ra[1]]
    assert not clashes, "integration test files whose pools overlap:\n" + "\n".join(sorted(set(clashes)))
