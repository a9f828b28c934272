"""Serialised admission decisions per IP family, across every replica, through one Lease per family.

A decision against an informer cache is racy: twenty concurrent creations of overlapping pools would all pass.  So a
decision that adds addresses (pool or subnet CREATE, or an UPDATE of its ranges) runs as a compare-and-swap
transaction on the Lease ``spiderpool-admission-ipv<N>``:

1. read the Lease (its annotation holds the objects admitted in the last ``ttl`` seconds: *pending*, since the API
   server stores an object only after every webhook has answered);
2. list the peers fresh from the API server (after step 1, so an object admitted before our read is either pending
   or listed), decide;
3. if allowed, write our object into the pending set with the Lease's resourceVersion; a Conflict means another
   replica (or this one) decided in between: start again at 1.

Within one process an ``asyncio.Lock`` per family keeps replicas' CAS retries rare.  Cost: one GET + one PUT of a
small Lease per address-changing admission, plus the fresh lists; pending entries expire after ``ttl`` (an object
the API server then refused, e.g. AlreadyExists, blocks its addresses for at most that long), disappear once the
object is listed, and are removed on its DELETE.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson

from spiderpool.core.errors import FieldError
from spiderpool.k8s.leases import AlreadyExists, Conflict, LeaseStore, NotFound

PENDING_ANNOTATION: Final = "spiderpool.spidernet.io/admitted-pending"
_MAX_ATTEMPTS: Final = 50


@dataclass(frozen=True, slots=True)
class PendingEntry:
    kind: str
    name: str
    spec: dict[str, Any]
    expires: float


Decide = Callable[[list[PendingEntry]], Awaitable[list[FieldError]]]


class LedgerContention(RuntimeError):
    """The family's Lease kept changing under us; the request is refused (failurePolicy Fail retries it)."""


def _entries(lease: dict[str, Any]) -> list[PendingEntry]:
    raw = (lease.get("metadata", {}).get("annotations") or {}).get(PENDING_ANNOTATION)
    if not raw:
        return []
    return [PendingEntry(kind=e["kind"], name=e["name"], spec=e["spec"], expires=float(e["expires"]))
            for e in orjson.loads(raw)]


def _with_entries(lease: dict[str, Any], entries: list[PendingEntry]) -> dict[str, Any]:
    meta = dict(lease["metadata"])
    encoded = orjson.dumps([{"kind": e.kind, "name": e.name, "spec": e.spec, "expires": e.expires}
                            for e in entries]).decode()
    meta["annotations"] = {**(meta.get("annotations") or {}), PENDING_ANNOTATION: encoded}
    return {**lease, "metadata": meta}


class AdmissionLedger:
    def __init__(self, leases: LeaseStore, *, ttl: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self._leases = leases
        self._ttl = ttl
        self._clock = clock
        self._locks = {4: asyncio.Lock(), 6: asyncio.Lock()}

    @staticmethod
    def lease_name(version: int) -> str:
        return f"spiderpool-admission-ipv{version}"

    async def _read(self, version: int) -> dict[str, Any]:
        name = self.lease_name(version)
        try:
            return await self._leases.get(name)
        except NotFound:
            try:
                return await self._leases.create(name, spec={})
            except AlreadyExists:
                return await self._leases.get(name)

    async def admit(self, *, version: int, kind: str, name: str, spec: dict[str, Any], decide: Decide,
                    record: bool = True) -> list[FieldError]:
        """Run ``decide(pending)``; when it finds nothing wrong, record ``kind/name`` as pending, atomically.

        ``record=False`` (a dry-run request: nothing will be stored) decides against the pending set but books nothing.
        """
        async with self._locks[version]:
            for _ in range(_MAX_ATTEMPTS):
                lease = await self._read(version)
                now = self._clock()
                live = [e for e in _entries(lease) if e.expires > now and (e.kind, e.name) != (kind, name)]
                errors = await decide(live)
                if errors or not record:
                    return errors
                entry = PendingEntry(kind=kind, name=name, spec=spec, expires=now + self._ttl)
                try:
                    await self._leases.replace(_with_entries(lease, [*live, entry]))
                except Conflict:
                    continue
                return []
        raise LedgerContention(f"Lease {self.lease_name(version)}: {_MAX_ATTEMPTS} conflicting decisions in a row")

    async def forget(self, *, version: int, kind: str, name: str) -> None:
        """Drop ``kind/name`` from the pending set (its DELETE); best effort: expiry covers a lost race."""
        async with self._locks[version]:
            for _ in range(5):
                lease = await self._read(version)
                entries = _entries(lease)
                kept = [e for e in entries if (e.kind, e.name) != (kind, name)]
                if kept == entries:
                    return
                try:
                    await self._leases.replace(_with_entries(lease, kept))
                    return
                except Conflict:
                    continue
