"""The chart's alert rules (charts/spiderpool/files/alerts.yaml) under ``promtool test rules``, one firing and one quiet
case per alert, and a check that every metric they use is exported by the agent's or the controller's registry."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from spiderpool.agent.metrics import AgentMetrics
from spiderpool.controller.metrics import ControllerMetrics
from spiderpool.k8s.status_writer import WriterStats

RULES = Path(__file__).resolve().parents[2] / "charts" / "spiderpool" / "files" / "alerts.yaml"
# Metrics Prometheus itself produces for every target.
PROMETHEUS_METRICS = frozenset({"up"})
_LABEL_REF = re.compile(r"\{\{ \$labels\.(\w+) \}\}")
_METRIC_NAME = re.compile(r"\b(spiderpool_\w+|up)\b")


@dataclass(frozen=True)
class AlertCase:
    alert: str
    firing: Mapping[str, str]  # promtool input series -> values
    quiet: Mapping[str, str]
    eval_time: str
    labels: Mapping[str, str]  # the firing alert's labels, severity included
    summary: str


def _pool(allocated: int, total: int, pool: str = "p1") -> dict[str, str]:
    # Two agents report the same pool: the rules must not count it twice.
    return {
        f'spiderpool_ippool_{name}_ip_counts{{pool="{pool}",instance="{node}"}}': f"{value}x30"
        for node in ("n1:5711", "n2:5711")
        for name, value in (("allocated", allocated), ("total", total))
    }


def _overlap(addresses: str) -> dict[str, str]:
    # Every agent reports the same decision: the rule must not add them up.
    return {f'spiderpool_ippool_overlap_addresses{{pool="young",owner="old",instance="{node}"}}': addresses
            for node in ("n1:5711", "n2:5711")}


def _durations(*, slow: bool) -> dict[str, str]:
    counts = {"0.01": "0x30" if slow else "0+10x30", "1": "0x30" if slow else "0+10x30", "3": "0+10x30",
              "+Inf": "0+10x30"}
    return {f'spiderpool_ipam_allocation_duration_seconds_bucket{{instance="n1:5711",le="{le}"}}': values
            for le, values in counts.items()}


def _controller(up: str, leader: str) -> dict[str, str]:
    return {'up{job="spiderpool-controller",instance="c1:5721"}': up,
            'spiderpool_controller_is_leader{job="spiderpool-controller",instance="c1:5721"}': leader}


CASES = (
    AlertCase("SpiderpoolIPPoolUsageHigh", _pool(95, 100), _pool(80, 100) | _pool(0, 0, "empty"), "15m",
              {"pool": "p1", "severity": "warning"}, "SpiderIPPool p1 is 95% allocated"),
    AlertCase("SpiderpoolIPPoolExhausted", _pool(100, 100), _pool(99, 100) | _pool(0, 0, "empty"), "5m",
              {"pool": "p1", "severity": "critical"}, "SpiderIPPool p1 has no free address"),
    AlertCase("SpiderpoolIPPoolOverlap", _overlap("5x10"), _overlap("5 5 0x10"), "8m",
              {"pool": "young", "owner": "old", "severity": "warning"},
              "5 addresses of SpiderIPPool young belong to the older pool old"),
    AlertCase("SpiderpoolIPAllocationFailures",
              {'spiderpool_ipam_allocation_counts_total{instance="n1:5711"}': "0+10x30",
               'spiderpool_ipam_allocation_failure_counts_total{instance="n1:5711"}': "0+1x30"},
              {'spiderpool_ipam_allocation_counts_total{instance="n1:5711"}': "0+10x30",
               'spiderpool_ipam_allocation_failure_counts_total{instance="n1:5711"}': "0x30",
               'spiderpool_ipam_allocation_counts_total{instance="idle:5711"}': "0x30",
               'spiderpool_ipam_allocation_failure_counts_total{instance="idle:5711"}': "0x30"},
              "20m", {"instance": "n1:5711", "severity": "warning"}, "10% of IP allocations fail on n1:5711"),
    AlertCase("SpiderpoolIPAllocationSlow", _durations(slow=True), _durations(slow=False), "20m",
              {"instance": "n1:5711", "severity": "warning"}, "p99 IP allocation takes 2.98s on n1:5711"),
    AlertCase("SpiderpoolIPGCFailures",
              {'spiderpool_ip_gc_failure_counts_total{reason="StoreError"}': "1 1 1 2 2 2 2 2 2 2"},
              {'spiderpool_ip_gc_failure_counts_total{reason="StoreError"}': "1x30"},
              "5m", {"reason": "StoreError", "severity": "warning"},
              "Leaked-IP collection failed in the last 15 minutes (StoreError)"),
    AlertCase("SpiderpoolIPLeakBacklog", {"spiderpool_ip_gc_backlog": "60x40"},
              {"spiderpool_ip_gc_backlog": "60x10 0 60x30"}, "35m", {"severity": "warning"},
              "60 leaked addresses have waited for collection for 30 minutes"),
    AlertCase("SpiderpoolAgentDown", {'up{job="spiderpool-agent",instance="n1:5711"}': "1 1 0x10"},
              {'up{job="spiderpool-agent",instance="n1:5711"}': "1x8 0x4"}, "12m",
              {"job": "spiderpool-agent", "instance": "n1:5711", "severity": "critical"},
              "spiderpool-agent n1:5711 is down"),
    AlertCase("SpiderpoolControllerDown", {'up{job="spiderpool-controller",instance="c1:5721"}': "0x10"},
              {'up{job="spiderpool-controller",instance="c1:5721"}': "0x10",
               'up{job="spiderpool-controller",instance="c2:5721"}': "1x10"},
              "10m", {"severity": "critical"}, "No spiderpool-controller replica is up"),
    AlertCase("SpiderpoolControllerNoLeader", _controller("1x10", "0x10"), _controller("1x10", "0 0 0 1x10"), "10m",
              {"severity": "warning"}, "spiderpool-controller replicas are up but none holds the leader lease"),
    AlertCase("SpiderpoolControllerWorkFailing",
              {'spiderpool_controller_component_failures_total{component="gc",instance="c1:5721"}': "0+1x30"},
              {'spiderpool_controller_component_failures_total{component="gc",instance="c1:5721"}': "0 1 2x30"},
              "20m", {"component": "gc", "severity": "warning"},
              "spiderpool-controller leader work gc keeps failing"),
)


def _rules() -> Iterator[dict[str, Any]]:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        yield from group["rules"]


def _rule(alert: str) -> dict[str, Any]:
    return next(rule for rule in _rules() if rule.get("alert") == alert)


def _description(alert: str, labels: Mapping[str, str]) -> str:
    # Descriptions only refer to labels (checked below), so their expected text is the label substitution.
    return _LABEL_REF.sub(lambda match: labels[match.group(1)], _rule(alert)["annotations"]["description"])


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found on PATH: install Debian's `prometheus` package (hack/setup.sh does)",
                    pytrace=False)
    return path


def _run_promtool(tmp_path: Path, series: Mapping[str, str], alert_test: dict[str, Any]) -> None:
    document = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": [{"series": s, "values": v} for s, v in series.items()],
                   "alert_rule_test": [alert_test]}],
    }
    test_file = tmp_path / "alerts_test.yaml"
    test_file.write_text(yaml.safe_dump(document, sort_keys=False))
    proc = subprocess.run([_promtool(), "test", "rules", str(test_file)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"promtool test rules failed:\n{proc.stdout}\n{proc.stderr}"


def test_every_alert_has_a_case() -> None:
    """ALR01: Every alert has a case."""
    alerts = sorted(rule["alert"] for rule in _rules() if "alert" in rule)
    assert alerts == sorted(case.alert for case in CASES)


def test_descriptions_refer_only_to_labels() -> None:
    """ALR02: Descriptions refer only to labels."""
    for rule in _rules():
        leftover = _LABEL_REF.sub("", rule["annotations"]["description"])
        assert "{{" not in leftover, f"{rule['alert']}: description templates other than $labels: {leftover!r}"


def test_rules_file_is_valid() -> None:
    """ALR03: Rules file is valid."""
    proc = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.alert)
def test_alert_fires(case: AlertCase, tmp_path: Path) -> None:
    """ALR04: Alert fires."""
    expected = {"exp_labels": dict(case.labels),
                "exp_annotations": {"summary": case.summary, "description": _description(case.alert, case.labels)}}
    _run_promtool(tmp_path, case.firing, {"eval_time": case.eval_time, "alertname": case.alert,
                                          "exp_alerts": [expected]})


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.alert)
def test_alert_stays_quiet(case: AlertCase, tmp_path: Path) -> None:
    """ALR05: Alert stays quiet."""
    _run_promtool(tmp_path, case.quiet, {"eval_time": case.eval_time, "alertname": case.alert, "exp_alerts": []})


def _exported_names(registry: CollectorRegistry) -> set[str]:
    """Every series name a scrape of ``registry`` can show, labelled families included before their first sample."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {family.name + suffix for family in registry.collect() for suffix in suffixes.get(family.type, ("",))}


def test_rules_use_only_exported_metrics() -> None:
    """ALR06: Rules use only exported metrics."""
    agent = AgentMetrics()
    agent.watch(writer_stats=WriterStats, pool_usage=lambda: iter([("p1", 10, 1)]))
    exported = _exported_names(agent.registry) | _exported_names(ControllerMetrics().registry) | PROMETHEUS_METRICS
    used = {name for rule in _rules() for name in _METRIC_NAME.findall(rule["expr"])}
    assert used, "no metric found in the rule expressions"
    assert used <= exported, f"metrics used by the rules but exported by no component: {sorted(used - exported)}"


def test_dashboard_uses_only_exported_metrics() -> None:
    """ALR07: Dashboard uses only exported metrics."""
    dashboard = json.loads((RULES.parent / "grafana-dashboard.json").read_text())
    agent = AgentMetrics()
    agent.watch(writer_stats=WriterStats, pool_usage=lambda: iter([("p1", 10, 1)]))
    exported = _exported_names(agent.registry) | _exported_names(ControllerMetrics().registry) | PROMETHEUS_METRICS
    used = {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in _METRIC_NAME.findall(target["expr"])}
    assert len(used) >= 10
    assert used <= exported, f"metrics used by the dashboard but exported by no component: {sorted(used - exported)}"
