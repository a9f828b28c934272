"""The agent's pool book: allocators patched by watch events, in-flight choices, re-decisions, the UID index."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from spiderpool.agent.pool_book import PoolBook
from spiderpool.k8s.bodies import SpiderIPPool, SpiderReservedIP
from spiderpool.k8s.status_plan import AllocateIntent
from spiderpool.k8s.watch_cache import EventType, WatchEvent


def pool(name: str, ips: list[str], records: dict[str, str] | None = None, **spec: Any) -> SpiderIPPool:
    body: dict[str, Any] = {"metadata": {"name": name}, "spec": {"subnet": "10.0.0.0/24", "ips": ips, **spec}}
    if records:
        encoded = {ip: {"pod": f"ns/{uid}", "podUid": uid} for ip, uid in records.items()}
        body["status"] = {"allocatedIPs": orjson.dumps(encoded).decode(), "allocatedIPCount": len(records)}
    return body  # type: ignore[return-value]


class Feed:
    """Feeds a book watch events the way the watch cache does (each with its previous object)."""

    def __init__(self, book: PoolBook) -> None:
        self.book = book
        self.objects: dict[str, SpiderIPPool] = {}

    def pool(self, obj: SpiderIPPool, kind: EventType | None = None) -> None:
        name = obj["metadata"]["name"]
        previous = self.objects.get(name)
        self.objects[name] = obj
        self.book.on_pool_event(WatchEvent(kind or ("MODIFIED" if previous else "ADDED"), obj, previous))

    def reserved(self, name: str, ips: list[str], kind: EventType = "ADDED") -> None:
        obj: SpiderReservedIP = {"metadata": {"name": name}, "spec": {"ips": ips}}
        self.book.on_reserved_event(WatchEvent(kind, obj, None))


def test_choices_skip_recorded_and_in_flight_addresses() -> None:
    """APB01: Choices skip recorded and in flight addresses."""
    book = PoolBook()
    Feed(book).pool(pool("p", ["10.0.0.1-10.0.0.4"], {"10.0.0.1": "u1"}))
    assert book.choose("p", "u2") == "10.0.0.2"
    assert book.choose("p", "u3") == "10.0.0.3"  # 10.0.0.2 is in flight
    assert book.choose("p", "u1") == "10.0.0.1"  # the pod's own record comes first
    assert book.held_by("u1") == {("p", "10.0.0.1")}


def test_watch_diffs_mark_and_free_addresses_without_rebuilding() -> None:
    """APB02: Watch diffs mark and free addresses without rebuilding."""
    book = PoolBook()
    feed = Feed(book)
    feed.pool(pool("p", ["10.0.0.1-10.0.0.3"], {"10.0.0.1": "u1", "10.0.0.2": "u2"}))
    feed.pool(pool("p", ["10.0.0.1-10.0.0.3"], {"10.0.0.2": "u2", "10.0.0.3": "u3"}))
    assert book.held_by("u1") == set()
    assert book.held_by("u3") == {("p", "10.0.0.3")}
    assert book.choose("p", "u4") == "10.0.0.1"
    assert book.choose("p", "u5") is None
    assert list(book.usage()) == [("p", 3, 2)]


def test_settle_keeps_durable_records_and_frees_a_choice_replaced_by_an_existing_record() -> None:
    """APB03: Settle keeps durable records and frees a choice replaced by an existing record."""
    book = PoolBook()
    Feed(book).pool(pool("p", ["10.0.0.1-10.0.0.3"], {"10.0.0.3": "u1"}))
    chosen = book.choose("p", "u2")
    book.settle("p", chosen, ip=chosen, pod="ns/u2", pod_uid="u2")
    record = book.record("p", "10.0.0.1")
    assert record is not None
    assert record.pod_uid == "u2"
    # u1's ADD chose 10.0.0.2 before the book knew u1 already held 10.0.0.3 on the server.
    book.settle("p", "10.0.0.2", ip="10.0.0.3", pod="ns/u1", pod_uid="u1", existing=True)
    assert book.choose("p", "u9") == "10.0.0.2"
    book.released("p", "10.0.0.1", "u2")
    assert book.held_by("u2") == set()
    assert book.choose("p", "u10") == "10.0.0.1"


def test_redecide_trusts_the_servers_records_over_stale_marks() -> None:
    """APB04: Redecide trusts the servers records over stale marks."""
    book = PoolBook()
    feed = Feed(book)
    feed.pool(pool("p", ["10.0.0.1-10.0.0.2"], {"10.0.0.1": "u1", "10.0.0.2": "u2"}))
    # The server has released 10.0.0.2 already; this agent's watch has not shown it yet.
    fresh = pool("p", ["10.0.0.1-10.0.0.2"], {"10.0.0.1": "u1"})
    intent = AllocateIntent(pod="ns/u3", pod_uid="u3")
    assert book.redecide(fresh, {"10.0.0.1"}, intent) == "10.0.0.2"
    assert book.redecide(fresh, {"10.0.0.1", "10.0.0.2"}, intent) is None


def test_reserved_ips_and_range_changes() -> None:
    """APB05: Reserved ips and range changes."""
    book = PoolBook()
    feed = Feed(book)
    feed.pool(pool("p", ["10.0.0.1-10.0.0.3"], {"10.0.0.3": "u1"}))
    feed.reserved("r", ["10.0.0.1"])
    assert book.choose("p", "u2") == "10.0.0.2"
    feed.reserved("r", ["10.0.0.1"], kind="DELETED")
    feed.pool(pool("p", ["10.0.0.1-10.0.0.5"], {"10.0.0.3": "u1"}))  # ranges grew: rebuilt
    assert book.choose("p", "u4") == "10.0.0.1"
    assert book.choose("p", "u5") == "10.0.0.4"  # 10.0.0.2 is still in flight, 10.0.0.3 recorded


def test_invalid_and_deleted_pools() -> None:
    """APB06: Invalid and deleted pools."""
    book = PoolBook()
    feed = Feed(book)
    feed.pool(pool("bad", ["10.9.9.9-10.9.9.1"]))
    assert book.view("bad") is None
    assert book.problem("bad") is not None
    assert book.choose("bad", "u1") is None
    feed.pool(pool("p", ["10.0.0.1"], {"10.0.0.1": "u1"}))
    feed.pool(feed.objects["p"], kind="DELETED")
    assert book.held_by("u1") == set()
    assert "p" not in book.views()


def _versioned(obj: SpiderIPPool, version: int) -> SpiderIPPool:
    obj["metadata"]["resourceVersion"] = str(version)
    return obj


def test_pb03_a_replaced_choice_is_freed_unless_a_record_holds_it() -> None:
    """PB03: the writer planned on a copy where the choice was taken and wrote another address; the book frees the
    replaced choice once no record and no in-flight choice holds it (before: it stayed used until restart)."""
    book = PoolBook()
    feed = Feed(book)
    feed.pool(_versioned(pool("p", ["10.0.0.1-10.0.0.5"], {"10.0.0.1": "u1"}), 1))
    feed.pool(_versioned(pool("p", ["10.0.0.1-10.0.0.5"]), 2))  # another writer freed 10.0.0.1
    chosen = book.choose("p", "u2")
    assert chosen == "10.0.0.1"
    stale = pool("p", ["10.0.0.1-10.0.0.5"], {"10.0.0.1": "u1"})  # a stale base: 10.0.0.1 looks taken
    replaced = book.redecide(stale, {"10.0.0.1"}, AllocateIntent(pod="ns/u2", pod_uid="u2"))
    assert replaced == "10.0.0.2"
    book.settle("p", chosen, ip=None, pod="ns/u2", pod_uid="u2")
    book.settle("p", replaced, ip=replaced, pod="ns/u2", pod_uid="u2")
    assert book.choose("p", "u3") == "10.0.0.1"
    # A choice replaced because a record of another pod holds it stays used.
    feed.pool(_versioned(pool("p", ["10.0.0.1-10.0.0.5"], {"10.0.0.2": "u2", "10.0.0.3": "u9"}), 3))
    book.settle("p", "10.0.0.3", ip="10.0.0.4", pod="ns/u4", pod_uid="u4")
    assert book.choose("p", "u5") == "10.0.0.5"


def test_pb04_the_newest_copy_wins_whichever_path_brings_it() -> None:
    """PB04: the writer's own result (``observe``) and the watch's events are applied by resourceVersion: a lagging
    watch event does not bring back a record the writer's newer result has removed; an older observation is
    ignored; a pool the book does not know is not created by an observation."""
    book = PoolBook()
    feed = Feed(book)
    feed.pool(_versioned(pool("p", ["10.0.0.1-10.0.0.3"], {"10.0.0.1": "u1"}), 5))
    book.observe(_versioned(pool("p", ["10.0.0.1-10.0.0.3"]), 7))
    assert book.record("p", "10.0.0.1") is None
    feed.pool(_versioned(pool("p", ["10.0.0.1-10.0.0.3"], {"10.0.0.1": "u1"}), 6))  # the watch lagging behind
    assert book.record("p", "10.0.0.1") is None
    book.observe(_versioned(pool("p", ["10.0.0.1-10.0.0.3"], {"10.0.0.2": "u2"}), 4))
    assert book.record("p", "10.0.0.2") is None
    assert book.choose("p", "u3") == "10.0.0.1"
    book.observe(_versioned(pool("q", ["10.0.0.1"]), 9))
    assert book.view("q") is None


def _created(obj: SpiderIPPool, when: str) -> SpiderIPPool:
    obj["metadata"]["creationTimestamp"] = when
    return obj


def test_pv03_the_book_blocks_what_an_older_pool_owns_and_refuses_invalid_pools() -> None:
    """PV03: the newer of two overlapping pools never hands out what the older lists (whatever order the watch
    delivered them in), the loss is reported once per change, and it is lifted when the older pool goes; a pool
    whose ips leave its subnet is refused with the reason (before: served, addresses outside the subnet)."""
    notices: list[tuple[str, int]] = []
    book = PoolBook(on_overlap=lambda pool, losses: notices.append(
        (pool["metadata"]["name"], sum(loss.count for loss in losses))))
    feed = Feed(book)
    feed.pool(_created(pool("new", ["10.0.0.3-10.0.0.6"]), "2026-01-02T00:00:00Z"))
    assert book.choose("new", "u0") == "10.0.0.3"
    book.settle("new", "10.0.0.3", ip=None, pod="ns/u0", pod_uid="u0")
    feed.pool(_created(pool("old", ["10.0.0.1-10.0.0.4"]), "2026-01-01T00:00:00Z"))
    assert list(book.overlaps()) == [("new", "old", 2)]
    assert notices == [("new", 2)]
    assert [book.choose("new", f"u{i}") for i in range(1, 4)] == ["10.0.0.5", "10.0.0.6", None]
    assert [book.choose("old", f"v{i}") for i in range(1, 5)] == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
    feed.pool(feed.objects["old"], kind="DELETED")
    assert list(book.overlaps()) == []
    assert notices == [("new", 2), ("new", 0)]
    assert book.choose("new", "u4") == "10.0.0.3"
    feed.pool(pool("outside", ["10.9.0.1-10.9.0.2"]))
    assert book.view("outside") is None
    assert book.choose("outside", "u5") is None
    reason = book.refusals()["outside"]
    assert "pool outside is invalid" in reason
    assert "spec.ips[0]" in reason
    assert "outside spec.subnet 10.0.0.0/24" in reason


def test_pv05_an_owner_does_not_hand_out_what_a_peer_still_records() -> None:
    """PV05: the older pool grows over addresses the newer pool's pods hold: it owns them now, but hands each out
    only once the newer pool's record of it is gone (ownership alone would give it to a second pod)."""
    book = PoolBook()
    feed = Feed(book)
    feed.pool(_created(pool("old", ["10.0.0.1"]), "2026-01-01T00:00:00Z"))
    feed.pool(_created(pool("new", ["10.0.0.2-10.0.0.3"], {"10.0.0.2": "u1"}), "2026-01-02T00:00:00Z"))
    feed.pool(_created(pool("old", ["10.0.0.1-10.0.0.3"]), "2026-01-01T00:00:00Z"))
    assert [book.choose("old", f"v{i}") for i in range(3)] == ["10.0.0.1", "10.0.0.3", None]
    assert book.choose("new", "u2") is None
    feed.pool(_created(pool("new", ["10.0.0.2-10.0.0.3"]), "2026-01-02T00:00:00Z"))
    assert book.choose("old", "v3") == "10.0.0.2"


def test_candidates_offer_the_choice_then_the_next_free_addresses_without_taking_them() -> None:
    """APB07: The record combiner's candidates: the agent's choice first, then the next free addresses in allocation
    order (recorded, reserved and in-flight ones skipped), none of them taken by offering them."""
    book = PoolBook()
    feed = Feed(book)
    feed.pool(pool("p", ["10.0.0.1-10.0.0.8"], {"10.0.0.2": "u1"}))
    feed.reserved("r", ["10.0.0.5"])
    chosen = book.choose("p", "u2")
    assert chosen == "10.0.0.1"
    assert book.candidates("p", chosen, count=3) == ("10.0.0.1", "10.0.0.3", "10.0.0.4", "10.0.0.6")
    assert book.candidates("p", chosen, count=10) == ("10.0.0.1", "10.0.0.3", "10.0.0.4", "10.0.0.6", "10.0.0.7",
                                                      "10.0.0.8")
    assert book.choose("p", "u3") == "10.0.0.3"  # offering did not take it
    assert book.candidates("p", None) == ()  # no choice: the writer decides on the server's records


_UIDS = st.sampled_from(["u1", "u2", "u3", "u4", "u5"])
_STATE = st.dictionaries(st.integers(1, 14).map(lambda i: f"10.0.0.{i}"), _UIDS, max_size=10)


@settings(max_examples=60, deadline=None)
@given(st.lists(_STATE, min_size=1, max_size=12))
def test_pb05_applying_differences_gives_the_book_of_the_last_state(states: list[dict[str, str]]) -> None:
    """PB05: a book fed any sequence of a pool's versions (each applied as its difference from the last, decoded
    incrementally) holds exactly what a book fed only the last version holds: the same records, the same UID index,
    the same free addresses in the same order."""
    book, fresh = PoolBook(), PoolBook()
    feed = Feed(book)
    for version, state in enumerate(states, start=1):
        feed.pool(_versioned(pool("p", ["10.0.0.1-10.0.0.16"], state), version))
    Feed(fresh).pool(_versioned(pool("p", ["10.0.0.1-10.0.0.16"], states[-1]), len(states)))
    for ip in (f"10.0.0.{i}" for i in range(1, 17)):
        assert book.record("p", ip) == fresh.record("p", ip)
    for uid in ("u1", "u2", "u3", "u4", "u5"):
        assert book.held_by(uid) == fresh.held_by(uid)
    assert [book.choose("p", f"n{i}") for i in range(17)] == [fresh.choose("p", f"n{i}") for i in range(17)]
