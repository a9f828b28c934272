"""The leak collector's index of pool records by pod (``controller.gc.scan.RecordIndex``), fed watch events."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from spiderpool.controller.gc.scan import PodKey, RecordIndex
from spiderpool.core.allocations import PoolIPAllocation, encode_allocated_ips
from spiderpool.k8s.bodies import SpiderIPPool
from spiderpool.k8s.watch_cache import WatchEvent

_PODS = st.sampled_from(["ns/a", "ns/b", "ns/c", "other/a"])
_RECORD = st.builds(PoolIPAllocation, pod=_PODS, pod_uid=st.sampled_from(["u1", "u2", "u3"]),
                    nic=st.sampled_from(["", "eth0"]))
_RECORDS = st.dictionaries(st.integers(1, 40).map(lambda i: f"10.9.0.{i}"), _RECORD, max_size=12)


def _pool(name: str, records: dict[str, PoolIPAllocation]) -> SpiderIPPool:
    text = encode_allocated_ips(records)
    return {"metadata": {"name": name}, "status": {"allocatedIPs": text} if text else {}}


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["p1", "p2"]), _RECORDS, st.booleans()), min_size=1, max_size=10))
def test_gri01_the_index_after_any_events_is_the_index_of_the_last_state(
    events: list[tuple[str, dict[str, PoolIPAllocation], bool]],
) -> None:
    """GRI01: an index fed any sequence of ADDED/MODIFIED/DELETED pool events holds exactly the records of each
    pool's last state (as an index fed only that state does), and every pod whose records changed was reported."""
    reported: list[PodKey] = []
    index = RecordIndex(reported.append)
    state: dict[str, dict[str, PoolIPAllocation]] = {}
    for name, records, deleted in events:
        before = state.get(name, {})
        reported.clear()
        if deleted:
            index.on_pool_event(WatchEvent("DELETED", _pool(name, before), None))
            state.pop(name, None)
            records = {}
        else:
            index.on_pool_event(WatchEvent("MODIFIED", _pool(name, records), None))
            state[name] = records
        changed = {ip for ip in {*before, *records} if before.get(ip) != records.get(ip)}
        expected = {tuple(r.pod.split("/")) for ip in changed for r in (before.get(ip), records.get(ip)) if r}
        assert expected <= set(reported)
    fresh = RecordIndex(lambda pod: None)
    for name, records in state.items():
        fresh.on_pool_event(WatchEvent("ADDED", _pool(name, records), None))
    pods = {pod for records in state.values() for r in records.values() for pod in [tuple(r.pod.split("/"))]}
    assert sorted(index.pods()) == sorted(fresh.pods()) == sorted(pods)
    for pod in pods:
        assert index.records_of(pod) == fresh.records_of(pod)  # type: ignore[arg-type]
    assert len(index) == len(fresh) == sum(len(records) for records in state.values())
