"""Who is calling, and may they write pool status: TokenReview and SubjectAccessReview, as aggregated servers do.

The controller's record combiner (``spiderpool.controller.combiner``) writes pool records for agents.  It must grant
nothing a caller could not do itself, so it asks the API server two questions about the bearer token a request
carries: who is this (``TokenReview``), and may that user ``update`` ``spiderippools/status`` (``SubjectAccessReview``).
Both are cached for ``ttl`` seconds by the token's SHA-256 (never the token itself), so the API server sees two
reviews per agent token and minute, not per ADD.  Needs RBAC ``create`` on ``tokenreviews`` and
``subjectaccessreviews`` (the chart's controller ClusterRole has both).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
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
    may_write_pool_status: bool


async def review_token(api: ApiClient, token: str) -> Caller | None:
    """The user ``token`` authenticates as, and its right to update pool status; None when not authenticated."""
    answer = await request_json(api, "POST", TOKEN_REVIEWS, what="TokenReview of a combiner caller", body={
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
    status: dict[str, Any] = answer.get("status", {})
    if not status.get("authenticated"):
        return None
    user: dict[str, Any] = status.get("user", {})
    name, groups = str(user.get("username", "")), tuple(str(group) for group in user.get("groups", []))
    review = await request_json(api, "POST", ACCESS_REVIEWS, what=f"SubjectAccessReview of {name}", body={
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": name, "groups": list(groups), "uid": str(user.get("uid", "")),
                 "resourceAttributes": {"group": GROUP, "resource": IPPOOL.plural, "subresource": "status",
                                        "verb": "update"}}})
    return Caller(name, groups, bool(review.get("status", {}).get("allowed")))


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
        key = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        found = self._known.get(key)
        if found is not None and found[0] > now:
            return found[1]
        caller = await review_token(self._api, token)
        self._known.pop(key, None)  # re-inserted at the end: the dict stays in expiry order
        known = self._known
        while known and (len(known) >= self._limit or next(iter(known.values()))[0] <= now):
            del known[next(iter(known))]  # the expired, then the oldest: O(1) each
        known[key] = (now + self._ttl, caller)
        return caller
