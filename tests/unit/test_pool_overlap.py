"""The pure overlap rule (``spiderpool.core.pool_overlap``) and the agent-side pool validation it comes with."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from spiderpool.core.addressing import parse_ip_text
from spiderpool.core.errors import InvalidSpec
from spiderpool.core.pool_overlap import OverlapCandidate, held_ranges, plan_overlap_owners
from spiderpool.core.specs import parse_ippool_spec
from spiderpool.core.validation import validate_ippool_object


def candidate(name: str, created: str, ips: list[str], *, subnet: str = "192.0.2.0/24",
              **spec: Any) -> OverlapCandidate:
    return OverlapCandidate(name=name, created=created, spec=parse_ippool_spec({"subnet": subnet, "ips": ips, **spec}))


def ip(text: str) -> int:
    return parse_ip_text(text)[1]


def test_ov01_the_older_pool_owns_contested_addresses() -> None:
    """OV01: two pools list 192.0.2.20-30 and .25-.40; the older keeps all of its own, the newer loses .25-.30 (six
    addresses) to it and keeps the rest; a pool overlapping nothing loses nothing."""
    plan = plan_overlap_owners([
        candidate("young", "2026-01-02T00:00:00Z", ["192.0.2.25-192.0.2.40"]),
        candidate("old", "2026-01-01T00:00:00Z", ["192.0.2.20-192.0.2.30"]),
        candidate("apart", "2025-01-01T00:00:00Z", ["192.0.2.100-192.0.2.110"]),
    ])
    assert set(plan.losses) == {"young"}
    (loss,) = plan.losses["young"]
    assert loss.owner == "old"
    assert plan.blocked("young") == [(ip("192.0.2.25"), ip("192.0.2.30"))]
    assert plan.lost_count("young") == 6
    assert plan.lost_count("old") == plan.lost_count("apart") == 0
    assert loss.describe() == "6 addresses (192.0.2.25-192.0.2.30) belong to the older SpiderIPPool old"


def test_ov02_same_timestamp_falls_back_to_the_name_and_the_order_seen_does_not_matter() -> None:
    """OV02: pools created in the same second: the name decides; every order the pools are given in (as two
    agents may have seen them) yields the same plan."""
    pools = [
        candidate("b", "2026-01-01T00:00:00Z", ["192.0.2.10-192.0.2.19"]),
        candidate("a", "2026-01-01T00:00:00Z", ["192.0.2.15-192.0.2.24"]),
        candidate("c", "2026-01-01T00:00:00Z", ["192.0.2.12-192.0.2.30"]),
    ]
    plans = {tuple(sorted((name, losses) for name, losses in plan_overlap_owners(order).losses.items()))
             for order in itertools.permutations(pools)}
    assert len(plans) == 1
    plan = plan_overlap_owners(pools)
    assert "a" not in plan.losses
    assert [loss.owner for loss in plan.losses["b"]] == ["a"]
    assert plan.blocked("b") == [(ip("192.0.2.15"), ip("192.0.2.19"))]
    assert [(loss.owner, loss.ranges) for loss in plan.losses["c"]] == [
        ("a", ((ip("192.0.2.15"), ip("192.0.2.24")),)),
        ("b", ((ip("192.0.2.12"), ip("192.0.2.14")),)),
    ]


def test_ov03_excluded_addresses_and_other_families_are_not_contested() -> None:
    """OV03: an address the older pool excludes is not its to own, so the newer pool keeps it; IPv4 and IPv6
    pools never contest; a timestamp that does not parse counts as the newest."""
    plan = plan_overlap_owners([
        candidate("old", "2026-01-01T00:00:00Z", ["192.0.2.10-192.0.2.20"], excludeIPs=["192.0.2.15"]),
        candidate("new", "2026-02-01T00:00:00Z", ["192.0.2.15-192.0.2.25"]),
        candidate("v6", "2020-01-01T00:00:00Z", ["2001:db8::10-2001:db8::20"], subnet="2001:db8::/64"),
        candidate("odd", "not a time", ["192.0.2.24"]),
    ])
    assert plan.blocked("new") == [(ip("192.0.2.16"), ip("192.0.2.20"))]
    assert plan.blocked("odd") == [(ip("192.0.2.24"), ip("192.0.2.24"))]
    assert [loss.owner for loss in plan.losses["odd"]] == ["new"]
    assert set(plan.losses) == {"new", "odd"}


def test_ov04_no_address_is_left_to_two_pools() -> None:
    """OV04: random overlapping pools: every address any pool lists is served by exactly one pool (its owner, the
    oldest lister), and no address is lost by all of them."""
    rng = random.Random(9)
    for _ in range(50):
        pools = []
        for index in range(5):
            first = rng.randrange(1, 60)
            last = first + rng.randrange(0, 30)
            created = f"2026-01-0{rng.randrange(1, 4)}T00:00:00Z"
            pools.append(candidate(f"p{index}", created, [f"192.0.2.{first}-192.0.2.{min(last, 254)}"]))
        plan = plan_overlap_owners(pools)
        served: dict[int, list[str]] = {}
        for pool in pools:
            blocked = plan.blocked(pool.name)
            for first, last in pool.spec.usable_ranges:
                for value in range(first, last + 1):
                    if not any(low <= value <= high for low, high in blocked):
                        served.setdefault(value, []).append(pool.name)
        listed = {value for pool in pools for first, last in pool.spec.usable_ranges
                  for value in range(first, last + 1)}
        assert set(served) == listed
        assert all(len(names) == 1 for names in served.values()), served


def test_ov05_duplicate_names_are_refused() -> None:
    """OV05: two candidates with one name cannot be ordered deterministically: a ValueError, not a guess."""
    with pytest.raises(ValueError, match="unique"):
        plan_overlap_owners([candidate("a", "2026-01-01T00:00:00Z", ["192.0.2.1"]),
                             candidate("a", "2026-01-02T00:00:00Z", ["192.0.2.2"])])


def test_ov06_the_agent_validates_a_whole_pool_with_the_webhook_rules() -> None:
    """OV06: ``validate_ippool_object`` (what the agent loads pools with) refuses ips and a gateway outside the
    subnet, naming each field; a valid pool comes back as its PoolView."""
    bad = {"metadata": {"name": "bad"},
           "spec": {"subnet": "192.0.2.0/24", "ips": ["198.51.100.10-198.51.100.12"], "gateway": "198.51.100.1"}}
    with pytest.raises(InvalidSpec) as refused:
        validate_ippool_object(bad)
    fields = [error.field for error in refused.value.errors]
    assert fields == ["spec.ips[0]", "spec.gateway"]
    assert "outside spec.subnet 192.0.2.0/24" in str(refused.value)
    good = validate_ippool_object({"metadata": {"name": "good", "labels": {"a": "b"}},
                                   "spec": {"subnet": "192.0.2.0/24", "ips": ["192.0.2.10"], "gateway": "192.0.2.1"}})
    assert (good.name, dict(good.labels), good.spec.total_ip_count) == ("good", {"a": "b"}, 1)


def test_ov07_peers_are_the_pools_that_share_an_address() -> None:
    """OV07: every pool that shares a usable address with another lists it as a peer, both ways (the owner too: it
    must not hand out what a peer still records); pools that only touch each other's hull or exclude the shared
    address are no peers."""
    plan = plan_overlap_owners([
        candidate("a", "2026-01-01T00:00:00Z", ["192.0.2.10-192.0.2.20"]),
        candidate("b", "2026-01-02T00:00:00Z", ["192.0.2.20-192.0.2.30"]),
        candidate("c", "2026-01-03T00:00:00Z", ["192.0.2.5", "192.0.2.40"], excludeIPs=[]),
        candidate("d", "2026-01-04T00:00:00Z", ["192.0.2.25-192.0.2.26"], excludeIPs=["192.0.2.25-192.0.2.26"]),
    ])
    assert dict(plan.peers) == {"a": ("b",), "b": ("a",)}
    assert held_ranges([ip("192.0.2.3"), ip("192.0.2.1"), ip("192.0.2.2")]) == [(ip("192.0.2.1"), ip("192.0.2.3"))]
