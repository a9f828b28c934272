"""spiderpoolctl gc --dry-run (pure): the collector's decisions on one snapshot, with their reasons."""

from __future__ import annotations

from typing import Any

from spiderpool.cli.gc_preview import Snapshot, preview_gc
from spiderpool.core.allocations import PoolIPAllocation, encode_allocated_ips
from spiderpool.core.gc_planning import GcPolicy, Verdict

NOW = 1_800_000_000.0


def snapshot(records: dict[str, tuple[str, str]], pods: list[dict[str, Any]], endpoints: list[dict[str, Any]]
             ) -> Snapshot:
    encoded = encode_allocated_ips({ip: PoolIPAllocation(p, uid) for ip, (p, uid) in records.items()})
    pool = {"metadata": {"name": "p"}, "status": {"allocatedIPs": encoded}}
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    return Snapshot(
        pools=[pool],
        endpoints={(e["metadata"]["namespace"], e["metadata"]["name"]): e for e in endpoints},
        pods={(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods},
        nodes={"n1": ready}, statefulsets={},
    )


def running(name: str, uid: str, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "uid": uid, **meta}, "spec": {"nodeName": "n1"},
            "status": {"phase": "Running"}}


def test_gone_pods_and_uid_mismatches_are_released_and_live_pods_kept() -> None:
    """CLG01: Gone pods and UID mismatches are released and live pods kept."""
    state = snapshot({"10.80.0.1": ("ns/gone", "u0"), "10.80.0.2": ("ns/b", "old"), "10.80.0.3": ("ns/c", "u3")},
                     [running("b", "new"), running("c", "u3")], [])
    decisions = {line.holder.ip: (line.decision.verdict, line.decision.reason)
                 for line in preview_gc(state, policy=GcPolicy(), now=NOW)}
    assert decisions == {
        "10.80.0.1": (Verdict.RELEASE, "PodDeleted"),
        "10.80.0.2": (Verdict.RELEASE, "UidMismatch"),
        "10.80.0.3": (Verdict.KEEP, "Alive"),
    }


def test_a_grace_delay_traces_until_a_time_the_document_states() -> None:
    """CLG02: A grace delay traces until a time the document states."""
    state = snapshot({"10.80.0.1": ("ns/gone", "u0")}, [], [])
    [line] = preview_gc(state, policy=GcPolicy(additional_grace_delay=60), now=NOW)
    assert line.decision.verdict is Verdict.TRACE
    assert line.as_document()["until"] == "2027-01-15T08:01:00+00:00"


def test_a_terminating_pod_past_its_grace_is_released_and_the_endpoint_claim_is_listed() -> None:
    """CLG03: A terminating pod past its grace is released and the endpoint claim is listed."""
    terminating = running("t", "u1", deletionTimestamp="2027-01-15T07:00:00Z", deletionGracePeriodSeconds=30)
    endpoint = {"metadata": {"namespace": "ns", "name": "t"}, "status": {"current": {"uid": "u1", "node": "n1"}}}
    lines = preview_gc(snapshot({"10.80.0.9": ("ns/t", "u1")}, [terminating], [endpoint]), policy=GcPolicy(), now=NOW)
    assert [(line.pool, line.holder.ip, line.decision.reason) for line in lines] == [
        ("p", "10.80.0.9", "Terminating"), (None, None, "Terminating")]
