"""The per-pool record combiner: agents hand their pool records to the controller, which writes several per update.

With one ADD in flight per node, every agent has one record to write at a time, so an agent's own group commit has
nothing to group and ten agents race for one pool object (two of three writes were 409s).  Here each replica runs
one :class:`PoolStatusWriter` for the agents: requests that arrive while a write of a pool is in flight ride the next
write.  Nothing else changes: the records are upstream's, written with compare-and-swap, and the answer is sent only
once the record is durable.  An agent that gets no answer writes directly (see ``spiderpool.agent.combining``);
idempotency by pod UID makes a record both paths wrote, or one the combiner wrote after the agent gave up, count once.

The combiner grants nothing: a caller must present a bearer token of a user that may ``update``
``spiderippools/status`` of the pool itself (TokenReview + SubjectAccessReview, cached), and it trusts no agent's
view: at every plan it re-checks each offered address against the pool object it writes (:class:`PoolEligibility`),
and drops an allocation whose deadline (the agent's patience) has passed rather than write a record nobody waits for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Set
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from aiohttp import web

from spiderpool.core.errors import FieldError, InvalidSpec
from spiderpool.core.record_combining import (
    CONTENTION_WINDOW,
    PATH,
    CombineRequest,
    NoCandidate,
    NodeActivity,
    PoolEligibility,
    first_eligible,
    parse_request,
)
from spiderpool.core.specs import parse_ippool_spec
from spiderpool.k8s.access_reviews import Caller, CallerCache
from spiderpool.k8s.bodies import SpiderIPPool
from spiderpool.k8s.status_plan import Allocated, AllocateIntent, Released, ReleaseIntent, StatusWriteError
from spiderpool.k8s.status_writer import PoolStatusWriter
from spiderpool.k8s.store import CustomObjectStore, StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CandidateIntent(AllocateIntent):
    """An allocation with the agent's candidates, in its order (``ip`` is the first), and the monotonic time after
    which nobody waits for it (None: no deadline, an older agent)."""

    recheck: ClassVar[bool] = True
    candidates: tuple[str, ...] = ()
    expires: float | None = None


class CandidatesTaken(StatusWriteError):
    """No candidate the agent offered is free and eligible: the agent re-decides on its own (it writes directly)."""


class DeadlinePassed(StatusWriteError):
    """The agent no longer waits for this allocation: it was dropped unwritten (the pod may be gone by now)."""


class _Candidates:
    """The combiner's ``redecide``: the first offered address that is free and eligible in the pool object being
    written, checked at every plan; each pool's eligibility is parsed once per spec generation."""

    def __init__(self) -> None:
        self._eligibility: dict[str, tuple[tuple[object, object], PoolEligibility]] = {}
        self.expired = 0  # intents dropped because their deadline passed

    def __call__(self, pool: SpiderIPPool, taken: Set[str], intent: AllocateIntent) -> str | None:
        name = str(pool["metadata"].get("name", ""))
        if isinstance(intent, CandidateIntent) and intent.expires is not None and time.monotonic() >= intent.expires:
            self.expired += 1
            raise DeadlinePassed(name, f"pool {name}: the deadline of {intent.pod}'s request passed before its "
                                       "record was written; dropped, nothing written")
        candidates = intent.candidates if isinstance(intent, CandidateIntent) else ()
        chosen = first_eligible(candidates, taken, self._of(name, pool))
        if isinstance(chosen, NoCandidate):
            raise CandidatesTaken(name, f"pool {name}: {chosen}")
        return chosen

    def _of(self, name: str, pool: SpiderIPPool) -> PoolEligibility:
        metadata = pool["metadata"]
        key = (metadata.get("uid"), metadata.get("generation"))
        known = self._eligibility.get(name)
        if known is not None and known[0] == key and key[1] is not None:
            return known[1]
        try:
            eligibility = PoolEligibility.of(parse_ippool_spec(pool.get("spec")))
        except InvalidSpec as error:
            raise StatusWriteError(name, f"pool {name}: its spec is invalid: {error}") from error
        self._eligibility[name] = (key, eligibility)
        return eligibility


class RecordCombiner:
    """Serves :data:`spiderpool.core.record_combining.PATH` on the controller's HTTPS server."""

    def __init__(self, pools: CustomObjectStore[SpiderIPPool], callers: CallerCache) -> None:
        self.candidates = _Candidates()
        self.writer = PoolStatusWriter(pools, redecide=self.candidates, deadline=10.0)
        self._callers = callers
        self._activity = NodeActivity(window=CONTENTION_WINDOW)

    async def write(self, request: CombineRequest) -> dict[str, Any]:
        """The durable outcome of one request as JSON; StatusWriteError when it cannot be written here."""
        now = asyncio.get_running_loop().time()
        others = self._activity.asked(request.pool, request.node, now=now)
        # Whether the agent should keep combining, and how many records are ahead of its own (its next candidates).
        pool = request.pool
        contended = {"contended": others or self.writer.busy(pool), "pending": self.writer.pending(pool)}
        if request.op == "release":
            released = await self.writer.release(request.pool, ReleaseIntent(ip=request.ip, pod_uid=request.pod_uid))
            return _released_json(released) | contended
        intent = CandidateIntent(pod=request.pod, pod_uid=request.pod_uid, ip=request.candidates[0], nic=request.nic,
                                 candidates=request.candidates, expires=_expiry(request.deadline))
        return _allocated_json(await self.writer.allocate(request.pool, intent)) | contended

    async def view(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _error(401, "Unauthorized", "a bearer token is required")
        try:
            caller = await self._callers.caller(token)
        except StoreError as error:
            return _error(503, "Unavailable", f"cannot review the caller now: {error}")
        if caller is None:
            return _error(401, "Unauthorized", "the token does not authenticate")
        try:
            combine = parse_request(orjson.loads(await request.read()))
        except (FieldError, orjson.JSONDecodeError) as error:
            return _error(400, "invalid", str(error))
        refusal = await self._refusal(token, caller, combine.pool)
        if refusal is not None:
            return refusal
        try:
            return web.Response(body=orjson.dumps(await self.write(combine)), content_type="application/json")
        except StatusWriteError as error:
            return _error(409, type(error).__name__, str(error))

    async def _refusal(self, token: str, caller: Caller, pool: str) -> web.Response | None:
        """403 unless the caller may update this pool's status itself (every pool's, or this one's by name)."""
        try:
            allowed = await self._callers.may_write(token, caller, pool)
        except StoreError as error:
            return _error(503, "Unavailable", f"cannot review the caller now: {error}")
        if not allowed:
            return _error(403, "Forbidden", f"{caller.user} may not update spiderippools/status of {pool}")
        return None

    def add_route(self, app: web.Application) -> None:
        app.router.add_post(PATH, self.view)

    async def close(self) -> None:
        await self.writer.close()


def _expiry(deadline: float | None) -> float | None:
    """The agent's deadline (its wall clock) as this process's monotonic time; the writer's own deadline bounds it."""
    return None if deadline is None else time.monotonic() + (deadline - time.time())


def _allocated_json(allocated: Allocated) -> dict[str, Any]:
    return {"pool": allocated.pool, "ip": allocated.ip, "pod": allocated.pod, "podUid": allocated.pod_uid,
            "existing": allocated.existing, "nic": allocated.nic}


def _released_json(released: Released) -> dict[str, Any]:
    return {"pool": released.pool, "ip": released.ip, "podUid": released.pod_uid, "removed": released.removed}


def _error(status: int, reason: str, message: str) -> web.Response:
    return web.Response(status=status, body=orjson.dumps({"reason": reason, "message": message}),
                        content_type="application/json")
