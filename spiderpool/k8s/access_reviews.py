"""Who is calling, and may they write pool status: TokenReview and SubjectAccessReview, as aggregated servers do.

The controller's record combiner (``spiderpool.controller.combiner``) writes pool records for agents.  It must grant
nothing a caller could not do itself, so it asks the API server two questions about the bearer token a request
carries: who is this (``TokenReview``), and may that user ``update`` ``spiderippools/status`` (``SubjectAccessReview``).
Both are cached for ``ttl`` seconds by the token's SHA-256 (never the token itself), so the API server sees two
reviews per agent token and minute, not per ADD.  A user refused for every pool may still be allowed some by name
(RBAC ``resourceNames``): only then is the pool named in a further review, cached by token and pool, so callers
allowed every pool (agents) never pay for it.  Needs RBAC ``create`` on ``tokenreviews`` and
``subjectaccessreviews`` (the chart's controller ClusterRole has both).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.api_requests import request_json
from spiderpool.k8s.crd_schema import GROUP, IPPOOL

TOKEN_REVIEWS: Final = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS: Final = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated user, and whether it may write pool status itself."""

    user: str
    groups: tuple[str, ...]
    may_write_pool_status: bool  # every pool's
    uid: str = ""


async def review_token(api: ApiClient, token: str) -> Caller | None:
    """The user ``token`` authenticates as, and its right to update pool status; None when not authenticated."""
    answer = await request_json(api, "POST", TOKEN_REVIEWS, what="TokenReview of a combiner caller", body={
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
    status: dict[str, Any] = answer.get("status", {})
    if not status.get("authenticated"):
        return None
    user: dict[str, Any] = status.get("user", {})
    caller = Caller(str(user.get("username", "")), tuple(str(group) for group in user.get("groups", [])), False,
                    str(user.get("uid", "")))
    return replace(caller, may_write_pool_status=await may_write_status(api, caller, pool=None))


async def may_write_status(api: ApiClient, caller: Caller, *, pool: str | None) -> bool:
    """Whether ``caller`` may ``update`` ``spiderippools/status``: of every pool (None), or of the one named."""
    attributes = {"group": GROUP, "resource": IPPOOL.plural, "subresource": "status", "verb": "update"}
    if pool is not None:
        attributes["name"] = pool
    review = await request_json(api, "POST", ACCESS_REVIEWS, what=f"SubjectAccessReview of {caller.user}", body={
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": caller.user, "groups": list(caller.groups), "uid": caller.uid,
                 "resourceAttributes": attributes}})
    return bool(review.get("status", {}).get("allowed"))


class CallerCache:
    """:func:`review_token` answers by token digest, each kept ``ttl`` seconds (refusals too: a bad token retried
    in a loop must not become two API requests per try), at most ``limit`` at a time: a flood of made-up tokens
    costs a TokenReview each but cannot grow the controller's memory (the oldest answer is forgotten first)."""

    def __init__(self, api: ApiClient, *, ttl: float = 60.0, limit: int = 65536,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._api, self._ttl, self._limit, self._clock = api, ttl, max(1, limit), clock
        self._known: dict[bytes, tuple[float, Caller | None]] = {}  # oldest first: expiry order

    def __len__(self) -> int:
        return len(self._known)

    async def caller(self, token: str) -> Caller | None:
        return await self._remembered(hashlib.sha256(token.encode()).digest(), lambda: review_token(self._api, token))

    async def may_write(self, token: str, caller: Caller, pool: str) -> bool:
        """Whether the ``caller`` that ``token`` authenticated may update ``pool``'s status: allowed for every pool,
        or else for this one by name (a further review, remembered by token and pool)."""
        if caller.may_write_pool_status:
            return True
        key = hashlib.sha256(token.encode() + b"\0" + pool.encode()).digest()
        allowed = await self._remembered(key, lambda: self._named(caller, pool))
        return allowed is not None

    async def _named(self, caller: Caller, pool: str) -> Caller | None:
        return caller if await may_write_status(self._api, caller, pool=pool) else None

    async def _remembered(self, key: bytes, review: Callable[[], Awaitable[Caller | None]]) -> Caller | None:
        now = self._clock()
        found = self._known.get(key)
        if found is not None and found[0] > now:
            return found[1]
        caller = await review()
        self._known.pop(key, None)  # re-inserted at the end: the dict stays in expiry order
        known = self._known
        while known and (len(known) >= self._limit or next(iter(known.values()))[0] <= now):
            del known[next(iter(known))]  # the expired, then the oldest: O(1) each
        known[key] = (now + self._ttl, caller)
        return caller
