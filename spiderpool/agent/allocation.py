"""Durable allocation of a pod's addresses: walk each family's ordered pools, write through the status writer.

Every (NIC, IP family) of a plan is served concurrently; within one, the candidate pools are tried in order until
one has a free address (a pool the pod already holds a record in goes first, so a retried ADD finds what an earlier
attempt wrote).  An address counts only once the writer has made its record durable.  If any part fails, the parts
already written are released (by pod UID) before the error is raised: the pod never holds half an allocation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from typing import Protocol

from spiderpool.agent.pool_book import Holding, PoolBook
from spiderpool.core.selection_types import FamilyCandidates, NicCandidates
from spiderpool.core.specs import PoolView
from spiderpool.k8s.status_plan import (
    Allocated,
    AllocateIntent,
    PoolExhausted,
    PoolNotFound,
    PoolUnavailable,
    Released,
    ReleaseIntent,
    StatusWriteError,
    WriteAbandoned,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Claim:
    """One durable record: ``ip`` of ``pool`` for NIC ``nic``; ``existing`` when an earlier ADD had written it."""

    nic: str
    pool: PoolView
    ip: str
    existing: bool
    clean_gateway: bool


class FamilyFailure(Exception):
    """No candidate pool could give NIC ``nic`` an IPv``version`` address; ``rejections`` says why for each pool."""

    def __init__(self, *, nic: str, version: int, rejections: Sequence[tuple[str, str]], abandoned: bool = False,
                 internal: bool = False) -> None:
        self.nic, self.version, self.rejections = nic, version, tuple(rejections)
        self.abandoned, self.internal = abandoned, internal
        reasons = "; ".join(f"pool {pool} {reason}" for pool, reason in self.rejections)
        super().__init__(f"no IPv{version} address for interface {nic}: {reasons}")

    @property
    def exhausted(self) -> bool:
        return not self.abandoned and not self.internal


class AllocationFailed(Exception):
    """Some part of a pod's allocation failed; nothing of it is kept (see ``rollback_error``)."""

    def __init__(self, failures: Sequence[FamilyFailure], *, rollback_error: Exception | None = None) -> None:
        self.failures = tuple(failures)
        self.rollback_error = rollback_error
        message = "; ".join(str(failure) for failure in self.failures)
        if rollback_error is not None:
            message += f" (releasing the addresses already written failed too: {rollback_error})"
        super().__init__(message)


class ReleaseFailed(Exception):
    def __init__(self, errors: Sequence[tuple[Holding, BaseException]]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(f"{ip} of pool {pool}: {error}" for (pool, ip), error in errors))


def _reason(error: StatusWriteError) -> str:
    if isinstance(error, PoolExhausted):
        return "is exhausted (every address is allocated, excluded or reserved)"
    return f"refused: {error}"


def _recorded_nic(nic: str) -> str:
    """The interface a record names: none for upstream's unnamed ``ippools`` NICs ("0", "1", ...: placeholders the
    pod's SpiderEndpoint maps to the interfaces of its later ADDs)."""
    return "" if nic.isdigit() else nic


class RecordWriter(Protocol):
    """The pool status writer's interface (``PoolStatusWriter``, or the agent's ``CombinedWriter`` in front of it)."""

    async def allocate(self, pool: str, intent: AllocateIntent) -> Allocated: ...

    async def release(self, pool: str, intent: ReleaseIntent) -> Released: ...


class RecordAllocator:
    def __init__(self, book: PoolBook, writer: RecordWriter) -> None:
        self._book = book
        self._writer = writer

    async def allocate(self, nics: Sequence[NicCandidates], *, pod: str, pod_uid: str,
                       keep: Set[Holding] = frozenset()) -> list[Claim]:
        """A durable address for every NIC and family of ``nics``, or AllocationFailed with nothing kept.

        ``keep``: records the rollback must not release (other NICs of the pod, served by earlier ADDs).
        """
        parts = [(nic, family) for nic in nics for family in nic.families]
        outcomes = await asyncio.gather(
            *(self._family(nic, family, pod=pod, pod_uid=pod_uid) for nic, family in parts), return_exceptions=True)
        claims = [outcome for outcome in outcomes if isinstance(outcome, Claim)]
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if not errors:
            return claims
        unexpected = [error for error in errors if not isinstance(error, FamilyFailure)]
        for error in unexpected:
            log.error("allocation for %s failed unexpectedly", pod, exc_info=error)
        rollback = [(claim.pool.name, claim.ip) for claim in claims if (claim.pool.name, claim.ip) not in keep]
        rollback_error: Exception | None = None
        try:
            await self.release(rollback, pod_uid=pod_uid)
        except ReleaseFailed as error:
            rollback_error = error
        failures = [error for error in errors if isinstance(error, FamilyFailure)]
        failures += [FamilyFailure(nic=nic.nic, version=family.version, internal=True,
                                   rejections=[(family.names[0], f"failed: {error!r}")])
                     for (nic, family), error in zip(parts, outcomes, strict=True)
                     if isinstance(error, BaseException) and not isinstance(error, FamilyFailure)]
        raise AllocationFailed(failures, rollback_error=rollback_error)

    def _ordered(self, family: FamilyCandidates, pod_uid: str) -> list[PoolView]:
        held = {pool for pool, _ in self._book.held_by(pod_uid)}
        return sorted(family.pools, key=lambda pool: pool.name not in held)  # stable: held first, then in order

    async def _family(self, nic: NicCandidates, family: FamilyCandidates, *, pod: str, pod_uid: str) -> Claim:
        rejections: list[tuple[str, str]] = []
        for pool in self._ordered(family, pod_uid):
            problem = self._book.problem(pool.name)
            if problem is not None:
                rejections.append((pool.name, f"cannot be served: {problem}"))
                continue
            try:
                allocated = await self._in_pool(pool.name, pod=pod, pod_uid=pod_uid, nic=_recorded_nic(nic.nic))
            except (PoolExhausted, PoolUnavailable, PoolNotFound) as error:
                rejections.append((pool.name, _reason(error)))
                continue
            except WriteAbandoned as error:
                rejections.append((pool.name, f"could not be written: {error}"))
                raise FamilyFailure(nic=nic.nic, version=family.version, rejections=rejections,
                                    abandoned=True) from error
            except StatusWriteError as error:
                rejections.append((pool.name, f"failed: {error}"))
                raise FamilyFailure(nic=nic.nic, version=family.version, rejections=rejections,
                                    internal=True) from error
            return Claim(nic=nic.nic, pool=pool, ip=allocated.ip, existing=allocated.existing,
                         clean_gateway=nic.clean_gateway)
        raise FamilyFailure(nic=nic.nic, version=family.version, rejections=rejections)

    async def _in_pool(self, pool: str, *, pod: str, pod_uid: str, nic: str) -> Allocated:
        chosen = self._book.choose(pool, pod_uid)
        try:
            allocated = await self._writer.allocate(pool, AllocateIntent(pod=pod, pod_uid=pod_uid, ip=chosen, nic=nic))
        except BaseException:
            self._book.settle(pool, chosen, ip=None, pod=pod, pod_uid=pod_uid)
            raise
        self._book.settle(pool, chosen, ip=allocated.ip, pod=pod, pod_uid=pod_uid, existing=allocated.existing,
                          nic=allocated.nic)
        return allocated

    async def release(self, holdings: Iterable[Holding], *, pod_uid: str) -> int:
        """Remove every record of ``holdings`` that still names ``pod_uid``; the number removed by this call.

        Every release is attempted; ReleaseFailed lists those that could not be written.
        """
        holdings = sorted(set(holdings))
        outcomes = await asyncio.gather(
            *(self._writer.release(pool, ReleaseIntent(ip=ip, pod_uid=pod_uid)) for pool, ip in holdings),
            return_exceptions=True)
        removed = 0
        errors: list[tuple[Holding, BaseException]] = []
        for (pool, ip), outcome in zip(holdings, outcomes, strict=True):
            if isinstance(outcome, PoolNotFound):
                continue  # the pool is gone, and its records with it
            if isinstance(outcome, BaseException):
                errors.append(((pool, ip), outcome))
                continue
            self._book.released(pool, ip, pod_uid)
            removed += outcome.removed
        if errors:
            raise ReleaseFailed(errors)
        return removed
