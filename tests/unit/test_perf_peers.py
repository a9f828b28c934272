"""The pure parts of the head-to-head (``perf/bench_peers.py``): run order, ratios, table, doc section, counting."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import peer_whereabouts
import pytest
from peer_report import DOC_BEGIN, DOC_END, ratios, results_json, schedule, summarize, verdicts
from peer_run import duplicates
from peer_systems import pool_range
from peer_table import replace_section, seconds_span, seconds_text, table


def fake_run(system: str, inflight: int, round_no: int, *, add: float, p99_ms: float = 900.0, failed: int = 0,
             writes: float = 1.0, agents: float = 5.0, leaked: int = 0) -> dict[str, Any]:
    """A run as ``peer_run.run_once`` returns it, with only the figures the report reads."""
    phase = {"seconds": add, "p50_ms": 100.0, "p99_ms": p99_ms, "failed": failed, "duplicates": 0,
             "writes_per_pod": writes, "conflicts_409": 7, "cpu_seconds": {"agents": agents, "executables": 1.0,
                                                                           "apiserver": 2.0, "etcd": 0.5}}
    return {"system": system, "inflight": inflight, "round": round_no, "pods": 1000, "load_average_1m": 1.5,
            "add": phase, "del": {**phase, "seconds": add / 2, "failed": 0}, "leaked": leaked}


def test_hh01_systems_alternate_between_groups() -> None:
    """HH01: every (round, K) group runs each system once, and the order rotates from group to group, so each
    system is first in some group."""
    order = schedule(["ours", "upstream", "whereabouts"], rounds=2, inflights=[1, 10])
    groups = [order[i:i + 3] for i in range(0, len(order), 3)]
    assert len(groups) == 4
    for group in groups:
        assert sorted(run.system for run in group) == ["ours", "upstream", "whereabouts"]
        assert len({(run.round, run.inflight) for run in group}) == 1
    assert [group[0].system for group in groups] == ["ours", "upstream", "whereabouts", "ours"]
    assert [(g[0].round, g[0].inflight) for g in groups] == [(1, 1), (1, 10), (2, 1), (2, 10)]


def test_hh02_ratios_are_the_peers_mean_over_ours_and_targets_judge_them() -> None:
    """HH02: ``add_vs_upstream_k1`` is upstream's mean ADD phase over ours (rounds averaged), our own bounded figures
    take the worse round, a peer that did not run has no ratio, and verdicts say met or MISSED."""
    runs = [fake_run("ours", 1, 1, add=10.0, p99_ms=800), fake_run("ours", 1, 2, add=20.0, p99_ms=1200),
            fake_run("upstream", 1, 1, add=60.0), fake_run("upstream", 1, 2, add=90.0),
            fake_run("ours", 10, 1, add=5.0, writes=0.2, agents=1.0), fake_run("whereabouts", 10, 1, add=200.0)]
    found = ratios(summarize(runs))
    assert found["add_vs_upstream_k1"] == 5.0  # 75 / 15
    assert found["del_vs_upstream_k1"] == 5.0
    assert found["add_vs_whereabouts_k10"] == 40.0
    assert "add_vs_whereabouts_k1" not in found
    assert "add_vs_upstream_k10" not in found
    assert found["ours_add_p99_ms_k1"] == 1200
    assert found["ours_agent_cpu_ms_per_add_k10"] == 1.0
    judged = verdicts(found)
    assert judged["add_vs_upstream_k1"].endswith("met")
    assert judged["ours_add_p99_ms_k1"].endswith("MISSED")
    assert judged["add_vs_whereabouts_k10"].endswith("met")
    assert "add_vs_upstream_k10" not in judged


def test_hh03_table_shows_rounds_as_ranges_k10_first() -> None:
    """HH03: the table has one row per system and K (K = 10 first, ours before the peers), rounds as ``min-max``
    in one unit (the larger one's), failures as a share of ADDs, and no agent CPU for whereabouts."""
    runs = [fake_run("ours", 1, 1, add=43.2), fake_run("ours", 1, 2, add=61.0),
            fake_run("upstream", 10, 1, add=42.0, failed=310), fake_run("upstream", 10, 2, add=61.4, failed=312),
            fake_run("whereabouts", 10, 1, add=205.0), fake_run("ours", 10, 1, add=6.4)]
    lines = table(summarize(runs), pods=1000).splitlines()
    assert lines[0].startswith("| in flight per node | system |")
    assert set(lines[1]) <= {"|", "-"}
    assert lines[1].count("|") == lines[0].count("|")
    rows = [line.split(" | ") for line in lines[2:]]
    assert [(r[0], r[1].split()[0]) for r in rows] == [("| 10", "this"), ("| 10", "upstream"), ("| 10", "whereabouts"),
                                                      ("| 1", "this")]
    assert rows[1][2] == "42-61 s"
    assert rows[1][6] == "310-312 / 0 (31 % of ADDs)"
    assert rows[3][2] == "43-61 s"
    assert rows[2][10].startswith("no agent / ")
    assert rows[0][10] == "5.0 / 1.0 / 2.0"
    assert [seconds_text(v) for v in (0.364, 1.84, 42.2)] == ["364 ms", "1.8 s", "42 s"]
    assert [seconds_span(v) for v in ([0.364, 0.491], [0.42, 1.1], [0.42, 0.42])] == ["364-491 ms", "0.42-1.1 s",
                                                                                         "420 ms"]


def test_hh04_doc_section_is_replaced_between_markers_only() -> None:
    """HH04: the generated section replaces what lies between its markers and nothing else; a document without
    them gets it appended; applying it twice changes nothing more."""
    doc = "# Benchmarks\n\nintro\n"
    once = replace_section(doc, "table one")
    assert once.startswith(doc.rstrip("\n"))
    assert f"{DOC_BEGIN}\ntable one\n{DOC_END}" in once
    edited = once + "\n## After\ntext kept\n"
    twice = replace_section(edited, "table two")
    assert "table one" not in twice
    assert "table two" in twice
    assert twice.endswith("## After\ntext kept\n")
    assert replace_section(twice, "table two") == twice


@pytest.mark.parametrize("size", [100, 1000, 4094])
def test_hh05_pool_has_exactly_the_pod_count_and_duplicates_count_extra_holders(size: int) -> None:
    """HH05: the pool every system gets holds exactly ``size`` addresses of its subnet; a duplicate is each pod
    beyond the first told the same address (failed ADDs, None, are not addresses)."""
    pool = pool_range(size)
    first, last = ipaddress.ip_address(pool.first), ipaddress.ip_address(pool.last)
    subnet = ipaddress.ip_network(pool.subnet)
    assert int(last) - int(first) + 1 == size
    assert first in subnet
    assert last in subnet
    assert first != subnet.network_address
    assert last != subnet.broadcast_address
    assert duplicates(["10.0.0.1", "10.0.0.2", "10.0.0.1", None, None, "10.0.0.1"]) == 2
    assert duplicates([None, "10.0.0.3"]) == 0


def test_hh06_whereabouts_gets_the_flat_file_and_range_its_daemonset_and_nad_would_give(tmp_path: Path) -> None:
    """HH06: whereabouts' network configuration names the pool's first and last address of its subnet and the
    node's flat file, which holds the Kubernetes datastore and the kubeconfig (mode 0600, as its install script
    writes it); records left are counted over every IPPool's ``spec.allocations``."""
    pool = pool_range(1000)
    flat = peer_whereabouts.write_flat_file(tmp_path / "whereabouts.conf", kubeconfig=tmp_path / "kubeconfig")
    assert json.loads(flat.read_text())["kubernetes"] == {"kubeconfig": str(tmp_path / "kubeconfig")}
    assert json.loads(flat.read_text())["datastore"] == "kubernetes"
    assert flat.stat().st_mode & 0o777 == 0o600
    config = peer_whereabouts.network_config(name="n", master="m0", flat_file=flat, subnet=pool.subnet,
                                             first=pool.first, last=pool.last)
    assert config["ipam"] == {"type": "whereabouts", "range": "10.240.0.0/20", "range_start": "10.240.0.1",
                              "range_end": "10.240.3.232", "configuration_path": str(flat)}
    pools: list[dict[str, Any]] = [{"spec": {"allocations": {"1": {}, "7": {}}}}, {"spec": {}},
                                   {"spec": {"allocations": {"3": {}}}}]
    assert peer_whereabouts.allocations_of(pools) == 3


def test_hh07_a_run_that_raised_is_left_out_of_figures_but_not_forgotten() -> None:
    """HH07: a run recorded with an error (its system failed to deploy, say) is left out of the summary, the ratios
    and the table, while the other rounds of that system still count."""
    runs = [fake_run("ours", 1, 1, add=10.0), fake_run("upstream", 1, 1, add=50.0),
            {"system": "upstream", "inflight": 1, "round": 2, "error": "TimeoutError: agent did not answer"},
            {"system": "whereabouts", "inflight": 1, "round": 1, "error": "BuildError: no go"}]
    summary = summarize(runs)
    assert sorted(summary) == ["ours_k1", "upstream_k1"]
    assert summary["upstream_k1"]["rounds"] == 1
    found = ratios(summary)
    assert found["add_vs_upstream_k1"] == 5.0
    assert "add_vs_whereabouts_k1" not in found
    assert "whereabouts" not in table(summary, pods=1000)


def test_hh08_results_keep_every_call_on_few_lines_and_read_back_equal() -> None:
    """HH08: the results file reads back exactly as the document, with each per-call list (latencies, ok) on one
    line: 12 full-size runs would otherwise take 48,000 lines."""
    run = fake_run("ours", 1, 1, add=1.0)
    run["add"] = {**run["add"], "latencies_ms": [0.5 + i for i in range(1000)], "ok": [i % 7 != 0 for i in range(1000)]}
    document = {"runs": [run, {**run, "round": 2}], "note": "@per-call-0@ is only text here", "empty": []}
    text = results_json(document)
    assert json.loads(text) == document
    assert len(text.splitlines()) < 100
