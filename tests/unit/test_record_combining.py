"""The record combiner's wire format and its one decision (``spiderpool.core.record_combining``)."""

from __future__ import annotations

from typing import Any

import pytest

from spiderpool.agent.combining import candidate_count
from spiderpool.core.errors import FieldError
from spiderpool.core.record_combining import (
    MAX_CANDIDATES,
    CombineRequest,
    NoCandidate,
    NodeActivity,
    PoolEligibility,
    first_eligible,
    parse_request,
)
from spiderpool.core.specs import parse_ippool_spec

POOL = PoolEligibility.of(parse_ippool_spec({"subnet": "10.0.0.0/24", "ips": ["10.0.0.1-10.0.0.10", "10.0.0.20"],
                                             "excludeIPs": ["10.0.0.5"]}))


def test_requests_round_trip_with_canonical_addresses() -> None:
    """WCB01: An allocation and a release survive ``to_json`` -> ``parse_request``; addresses come back in upstream's
    canonical form (records are keyed by it), the candidates in the agent's order."""
    allocate = CombineRequest("allocate", "p", "u1", pod="ns/a", nic="eth0", candidates=("10.0.0.9", "fd00:0::1"))
    parsed = parse_request(allocate.to_json())
    assert parsed == CombineRequest("allocate", "p", "u1", pod="ns/a", nic="eth0", candidates=("10.0.0.9", "fd00::1"))
    release = CombineRequest("release", "p", "u1", ip="fd00:0:0::a")
    assert parse_request(release.to_json()) == CombineRequest("release", "p", "u1", ip="fd00::a")


@pytest.mark.parametrize(("body", "field"), [
    ([], "body"),
    ({"op": "allocate", "pool": "p"}, "podUid"),
    ({"op": "steal", "pool": "p", "podUid": "u"}, "op"),
    ({"op": "allocate", "pool": "p", "podUid": "u", "pod": "ns/a", "candidates": []}, "candidates"),
    ({"op": "allocate", "pool": "p", "podUid": "u", "pod": "ns/a", "candidates": ["10.0.0.1"] * (MAX_CANDIDATES + 1)},
     "candidates"),
    ({"op": "allocate", "pool": "p", "podUid": "u", "pod": "ns/a", "candidates": ["10.0.0.0/24"]}, "candidates"),
    ({"op": "allocate", "pool": "p", "podUid": "u", "candidates": ["10.0.0.1"]}, "pod"),
    ({"op": "release", "pool": "p", "podUid": "u", "ip": "nope"}, "ip"),
    ({"op": "allocate", "pool": "p", "podUid": "u", "pod": "ns/a", "candidates": ["10.0.0.1"], "deadline": "soon"},
     "deadline"),
    ({"op": "release", "pool": "p", "podUid": "u", "ip": "10.0.0.1", "deadline": float("nan")}, "deadline"),
    ({"op": "release", "pool": "p", "podUid": "u", "ip": "10.0.0.1", "deadline": True}, "deadline"),
])
def test_bad_requests_name_the_field(body: Any, field: str) -> None:
    """WCB02: A malformed request is refused with a FieldError naming the offending field (the combiner answers 400
    and the agent writes the record itself)."""
    with pytest.raises(FieldError) as refused:
        parse_request(body)
    assert refused.value.field == field


def test_first_free_keeps_the_agents_order() -> None:
    """WCB03: The combiner takes the first candidate no record (nor an earlier request of the same write) holds, in
    the agent's order, and says why none when all are taken (the agent then re-decides on its own)."""
    candidates = ("10.0.0.3", "10.0.0.1", "10.0.0.2")
    assert first_eligible(candidates, set(), POOL) == "10.0.0.3"
    assert first_eligible(candidates, {"10.0.0.3"}, POOL) == "10.0.0.1"
    assert first_eligible(candidates, {"10.0.0.3", "10.0.0.1", "10.0.0.2"}, POOL) == NoCandidate(3, 3, ())


def test_the_combiner_records_only_what_the_pool_allows() -> None:
    """WCB06: Every offered address is checked against the pool object: outside ``ips``, in ``excludeIPs`` or of
    the other IP family is not eligible and is skipped (the next eligible one in the agent's order is taken); with
    none eligible the refusal says why for each (before: the agent's first choice was written unchecked)."""
    assert [POOL.refusal(ip) for ip in ("10.0.0.1", "10.0.0.10", "10.0.0.20")] == [None, None, None]
    assert POOL.refusal("10.0.0.5") == "10.0.0.5 is not in the pool's ips minus excludeIPs"
    assert POOL.refusal("10.0.0.11") == "10.0.0.11 is not in the pool's ips minus excludeIPs"
    assert POOL.refusal("10.0.0.0") is not None
    assert POOL.refusal("10.0.1.1") is not None
    assert POOL.refusal("fd00::1") == "fd00::1 is not IPv4"
    assert first_eligible(("10.0.0.5", "10.0.0.99", "10.0.0.2"), set(), POOL) == "10.0.0.2"
    refused = first_eligible(("10.0.0.5", "fd00::1", "10.0.0.1"), {"10.0.0.1"}, POOL)
    assert refused == NoCandidate(3, 1, ("10.0.0.5 is not in the pool's ips minus excludeIPs", "fd00::1 is not IPv4"))
    assert "1 taken, 2 not eligible (10.0.0.5 is not in" in str(refused)


def test_the_agents_deadline_is_optional_on_the_wire() -> None:
    """WCB07: An allocation or a release carries the agent's deadline (Unix seconds) through the wire; a request
    without one (an older agent) parses with none."""
    allocate = CombineRequest("allocate", "p", "u1", pod="ns/a", candidates=("10.0.0.9",), deadline=1765069203.5)
    assert parse_request(allocate.to_json()).deadline == 1765069203.5
    assert parse_request(CombineRequest("release", "p", "u", ip="10.0.0.1", deadline=7).to_json()).deadline == 7.0
    body = CombineRequest("allocate", "p", "u1", pod="ns/a", candidates=("10.0.0.9",)).to_json()
    assert "deadline" not in body
    assert parse_request(body).deadline is None


def test_node_activity_says_whether_other_nodes_write_the_pool() -> None:
    """WCB04: A pool is contended from a node's view while another node asked for its records within the window;
    a node alone, or others seen longer ago, is not; pools are apart."""
    activity = NodeActivity(window=30.0)
    assert not activity.asked("p", "n1", now=0.0)
    assert not activity.asked("p", "n1", now=1.0)  # only itself
    assert activity.asked("p", "n2", now=2.0)
    assert activity.asked("p", "n1", now=3.0)
    assert not activity.asked("q", "n1", now=3.0)
    assert not activity.asked("p", "n1", now=40.0)  # n2 last asked at 2.0: out of the window


def test_the_agent_offers_more_candidates_the_more_records_are_ahead() -> None:
    """WCB05: The agent offers 64 candidates beyond its choice when nothing is ahead of its record at the combiner,
    three more per record ahead (each may take one, the watch may lag by a write), never more than 256."""
    assert [candidate_count(pending) for pending in (0, 1, 10, 100, 10_000)] == [64, 67, 94, 256, 256]
