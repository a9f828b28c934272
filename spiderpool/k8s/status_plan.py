"""The pure planning step of the pool status writer: intents, outcomes, and what one write of a batch would be.

:func:`plan_batch` applies a batch of intents, in order, to one pool object's records and says what to write and
what each intent's outcome is; it does no I/O, so :mod:`spiderpool.k8s.status_writer` can re-run it on a fresh pool
object after every conflict.  Idempotency is by pod UID: an allocation for a UID that already has a record in the
pool returns that record, and a release removes a record only if it still names the releasing UID.  Records are
upstream's format: ``status.allocatedIPs`` is a JSON string map ``ip -> {"pod": "ns/name", "podUid": uid}``, absent
when empty, and ``allocatedIPCount`` is always its length.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, cast

from spiderpool.core.addressing import canonical_ip, ip_version_of
from spiderpool.core.allocations import PoolIPAllocation, allocated_ip_count, encode_allocated_ips
from spiderpool.core.errors import FieldError
from spiderpool.k8s.bodies import SpiderIPPool

_POD_UID = attrgetter("pod_uid")

if TYPE_CHECKING:  # planning only carries the caller's future; it never touches an event loop
    import asyncio


@dataclass(frozen=True, slots=True)
class AllocateIntent:
    """Record an address for a pod; ``ip`` is the allocator's choice, or None to let ``redecide`` choose."""

    pod: str
    pod_uid: str
    ip: str | None = None
    nic: str = ""  # the pod's interface, kept in the record (ours; upstream ignores it)
    # Ask ``redecide`` at every plan, even while the choice is free: it re-checks the choice against each fresh pool
    # object (the record combiner's, which trusts no agent's view and drops intents whose deadline passed).
    recheck: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class ReleaseIntent:
    """Remove the record of ``ip`` if, and only if, it still belongs to ``pod_uid``."""

    ip: str
    pod_uid: str


@dataclass(frozen=True, slots=True)
class Allocated:
    """The record is in the API server; ``existing`` is True when the pod already held it (a repeated ADD)."""

    pool: str
    ip: str
    pod: str
    pod_uid: str
    existing: bool
    nic: str = ""  # the record's interface ("" when it names none)


@dataclass(frozen=True, slots=True)
class Released:
    """No record of ``ip`` names ``pod_uid`` any more; ``removed`` says whether this write was the one to remove it."""

    pool: str
    ip: str
    pod_uid: str
    removed: bool


Intent = AllocateIntent | ReleaseIntent
Outcome = Allocated | Released
Redecide = Callable[[SpiderIPPool, Set[str], AllocateIntent], str | None]
"""(fresh pool object, addresses already taken, intent) -> another free address, or None when the pool is full."""


class StatusWriteError(Exception):
    """An intent could not be written; ``pool`` names the pool, the message says why."""

    def __init__(self, pool: str, message: str) -> None:
        super().__init__(message)
        self.pool = pool


class PoolExhausted(StatusWriteError):
    def __init__(self, pool: str) -> None:
        super().__init__(pool, f"pool {pool} exhausted")


class PoolNotFound(StatusWriteError):
    pass


class PoolUnavailable(StatusWriteError):
    """The pool takes no new allocations (terminating or ``spec.disable``); releases still work."""


class WriteAbandoned(StatusWriteError):
    """Retries or the deadline ran out; whether the last write landed is unknown, and a retry is safe (idempotent)."""


@dataclass(slots=True)
class PendingIntent:
    """An intent waiting in a pool's queue, with the future its caller awaits."""

    intent: Intent
    future: asyncio.Future[Outcome]
    choice: str | None = None  # the address this allocation currently aims at; kept across retries


@dataclass(slots=True)
class BatchPlan:
    """The result of applying a batch to one pool object: the records to write and each intent's outcome.

    ``removed`` and ``added`` are what the batch changed in the base records (so the write can encode only those).
    """

    records: dict[str, PoolIPAllocation]
    outcomes: list[Outcome | StatusWriteError]
    changed: bool
    redecisions: int
    removed: list[str] = dataclass_field(default_factory=list)
    added: dict[str, PoolIPAllocation] = dataclass_field(default_factory=dict)


def canonical_address(text: object, *, field: str) -> str:
    """The address as upstream's records key it (Go's ``net.IP.String()``); a FieldError naming ``field`` otherwise."""
    version = ip_version_of(text) if isinstance(text, str) else None
    if version is None:
        raise FieldError(field=field, value=text, reason="not an IP address")
    return canonical_ip(cast(str, text), version=version, field=field)


def check_intent(intent: Intent) -> str | None:
    """The intent's address in canonical form (None for an allocation left to ``redecide``); FieldError if bad."""
    if not intent.pod_uid:
        raise FieldError(field="pod_uid", value=intent.pod_uid, reason="must not be empty")
    if isinstance(intent, ReleaseIntent):
        return canonical_address(intent.ip, field="ip")
    namespace, _, name = intent.pod.partition("/")
    if not namespace or not name or "/" in name:
        raise FieldError(field="pod", value=intent.pod, reason="must be '<namespace>/<name>'")
    return None if intent.ip is None else canonical_address(intent.ip, field="ip")


def plan_batch(
    name: str, pool: SpiderIPPool, records: dict[str, PoolIPAllocation], batch: list[PendingIntent], redecide: Redecide
) -> BatchPlan:
    """Apply ``batch`` in order to a copy of ``records`` (the pool's current records)."""
    working = dict(records)
    owner_ip = dict(zip(map(_POD_UID, working.values()), working, strict=True))  # C loops: the base is large
    taken = set(working)  # also keeps addresses released in this batch out of this batch's allocations
    plan = BatchPlan(records=working, outcomes=[], changed=False, redecisions=0)
    refusal = _allocation_refusal(name, pool)
    for pending in batch:
        intent = pending.intent
        if isinstance(intent, ReleaseIntent):
            record = working.get(intent.ip)
            removed = record is not None and record.pod_uid == intent.pod_uid
            if removed:
                del working[intent.ip]
                owner_ip.pop(intent.pod_uid, None)
                plan.changed = True
                if plan.added.pop(intent.ip, None) is None:
                    plan.removed.append(intent.ip)
            plan.outcomes.append(Released(name, intent.ip, intent.pod_uid, removed))
            continue
        held = owner_ip.get(intent.pod_uid)
        if held is not None:
            plan.outcomes.append(Allocated(name, held, working[held].pod, intent.pod_uid, existing=True,
                                           nic=working[held].nic))
            continue
        if refusal is not None:
            plan.outcomes.append(refusal)
            continue
        ip = _decide(name, pool, taken, pending, redecide, plan)
        if isinstance(ip, StatusWriteError):
            plan.outcomes.append(ip)
            continue
        working[ip] = plan.added[ip] = PoolIPAllocation(pod=intent.pod, pod_uid=intent.pod_uid, nic=intent.nic)
        owner_ip[intent.pod_uid] = ip
        taken.add(ip)
        plan.changed = True
        plan.outcomes.append(Allocated(name, ip, intent.pod, intent.pod_uid, existing=False, nic=intent.nic))
    return plan


def _allocation_refusal(name: str, pool: SpiderIPPool) -> StatusWriteError | None:
    if pool["metadata"].get("deletionTimestamp"):
        return PoolUnavailable(name, f"pool {name} is terminating: no new allocations")
    if pool.get("spec", {}).get("disable"):
        return PoolUnavailable(name, f"pool {name} is disabled (spec.disable): no new allocations")
    return None


def _decide(
    name: str, pool: SpiderIPPool, taken: set[str], pending: PendingIntent, redecide: Redecide, plan: BatchPlan
) -> str | StatusWriteError:
    """The allocation's current choice if still free, else the allocator's new choice (validated).  ``redecide`` may
    refuse with a StatusWriteError of its own, which is the intent's outcome as it is."""
    intent = cast(AllocateIntent, pending.intent)
    free = pending.choice is not None and pending.choice not in taken
    if free and not intent.recheck:
        return cast(str, pending.choice)
    if not free:
        plan.redecisions += 1
    try:
        chosen = redecide(pool, taken, intent)
    except StatusWriteError as refusal:
        return refusal
    except Exception as error:  # the allocator's failure is this caller's failure, not the whole batch's
        return StatusWriteError(name, f"pool {name}: choosing an address for {intent.pod} failed: {error}")
    if chosen is None:
        return PoolExhausted(name)
    try:
        chosen = canonical_address(chosen, field="redecide result")
    except ValueError as error:
        return StatusWriteError(name, f"pool {name}: {error}")
    if chosen in taken:
        return StatusWriteError(name, f"pool {name}: redecide chose {chosen} for {intent.pod}, which is taken")
    pending.choice = chosen
    return chosen


def status_body(pool: SpiderIPPool, records: dict[str, PoolIPAllocation]) -> SpiderIPPool:
    """``pool`` with its records replaced: the JSON string map (omitted when empty) and the matching count."""
    return encoded_status_body(pool, encode_allocated_ips(records), allocated_ip_count(records))


def encoded_status_body(pool: SpiderIPPool, encoded: str | None, count: int) -> SpiderIPPool:
    """``pool`` with ``status.allocatedIPs`` replaced by the already encoded records (None: none) and their count."""
    status: dict[str, Any] = {key: value for key, value in pool.get("status", {}).items() if key != "allocatedIPs"}
    if encoded is not None:
        status["allocatedIPs"] = encoded
    status["allocatedIPCount"] = count
    return cast(SpiderIPPool, {**pool, "status": status})

