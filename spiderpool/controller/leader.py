"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does it.

- Acquire: the Lease is free (no holder, or its record has not changed for ``lease_duration`` as *we* observed it,
  so clock skew between replicas does not matter) -> compare-and-swap ourselves in.
- Renew every ``retry_period``; when no renew has succeeded for ``renew_deadline`` (< ``lease_duration``), step
  down: the leader's work is cancelled and awaited *before* any other replica can consider the Lease expired.
- Graceful exit releases the Lease (holder empty, duration 1 s) so another replica takes over at once.
- The leader's work failing (``lead()`` raising or returning; see ``supervision``) is a step down too: the Lease is
  released and, after two retry periods (another replica may take it meanwhile), this replica competes again.
  Nothing the work does ends the elector.

Leadership intervals are logged (stderr, INFO) as ``LEADER START <epoch> <id>`` / ``LEADER STOP <epoch> <id>``
(tests check them); ``problem`` says why the last request to the API server failed, None once one succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import aiohttp

from spiderpool.controller.settings import LeaderSettings
from spiderpool.k8s.leases import AlreadyExists, Conflict, NotFound, micro_time
from spiderpool.k8s.store import StoreError

log = logging.getLogger(__name__)

_REQUEST_ERRORS = (StoreError, aiohttp.ClientError, asyncio.TimeoutError, OSError)


class Leases(Protocol):
    """What the elector needs of ``LeaseStore`` (tests give it an in-memory one)."""

    async def get(self, name: str) -> dict[str, Any]: ...

    async def create(self, name: str, *, spec: dict[str, Any], annotations: dict[str, str] | None = None
                     ) -> dict[str, Any]: ...

    async def replace(self, lease: dict[str, Any]) -> dict[str, Any]: ...


class LeaderElector:
    def __init__(self, leases: Leases, settings: LeaderSettings,
                 *, on_change: Callable[[bool], None] | None = None) -> None:
        if not settings.renew_deadline < settings.lease_duration:
            raise ValueError(f"renew_deadline: must be below lease_duration {settings.lease_duration}, "
                             f"got {settings.renew_deadline}")
        self._leases = leases
        self._settings = settings
        self._on_change = on_change or (lambda _: None)
        self._observed: tuple[str, str, str] = ("", "", "")
        self._observed_at = 0.0
        self.is_leader = False
        self.problem: str | None = None

    @property
    def identity(self) -> str:
        return self._settings.identity

    def _lease_spec(self, current: dict[str, Any]) -> dict[str, Any]:
        now = micro_time()
        held_by_us = current.get("holderIdentity") == self.identity
        transitions = int(current.get("leaseTransitions") or 0) + (0 if held_by_us else 1)
        return {"holderIdentity": self.identity, "leaseDurationSeconds": math.ceil(self._settings.lease_duration),
                "acquireTime": current.get("acquireTime") if held_by_us else now, "renewTime": now,
                "leaseTransitions": transitions}

    def _held_by_other(self, lease: dict[str, Any]) -> bool:
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        record = (holder, str(spec.get("renewTime") or ""), str(lease["metadata"].get("resourceVersion")))
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        if not holder or holder == self.identity:
            return False
        duration = float(spec.get("leaseDurationSeconds") or self._settings.lease_duration)
        return time.monotonic() - self._observed_at < duration

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when we hold the Lease afterwards."""
        name = self._settings.lease_name
        try:
            lease = await self._leases.get(name)
        except NotFound:
            try:
                await self._leases.create(name, spec=self._lease_spec({}))
            except AlreadyExists:
                return False
            return True
        if self._held_by_other(lease):
            return False
        try:
            await self._leases.replace({**lease, "spec": self._lease_spec(lease.get("spec") or {})})
        except Conflict:
            return False
        return True

    async def _attempt(self, *, deadline: float) -> bool:
        try:
            async with asyncio.timeout(max(deadline, 0.05)):
                held = await self.try_acquire_or_renew()
        except _REQUEST_ERRORS as error:
            reason = str(error) or type(error).__name__
            log.warning("leader election %s: %s", self._settings.lease_name, reason)
            self.problem = f"the Lease {self._settings.lease_name} cannot be read or written: {reason}"
            return False
        self.problem = None
        return held

    async def _acquire(self) -> None:
        while True:
            if await self._attempt(deadline=self._settings.retry_period):
                return
            await asyncio.sleep(self._settings.retry_period)

    async def _keep(self) -> None:
        """Renew until a renew has failed for longer than renew_deadline; then return (step down)."""
        last_success = time.monotonic()
        while True:
            await asyncio.sleep(self._settings.retry_period)
            started = time.monotonic()
            if await self._attempt(deadline=last_success + self._settings.renew_deadline - started):
                last_success = started
            elif time.monotonic() - last_success >= self._settings.renew_deadline:
                log.error("leader election: no renew for %.1fs; stepping down", self._settings.renew_deadline)
                return

    def _set_leader(self, leading: bool) -> None:
        self.is_leader = leading
        log.info("LEADER %s %.3f %s", "START" if leading else "STOP", time.time(), self.identity)
        self._on_change(leading)

    async def run(self, lead: Callable[[], Coroutine[object, object, None]]) -> None:
        """Forever: acquire, run ``lead()`` while we hold the Lease, cancel it on loss, step down when it fails;
        release when cancelled."""
        try:
            while True:
                await self._acquire()
                self._set_leader(True)
                failure = await self._lead_once(lead)
                if failure is not None:
                    log.error("leader election: the leader's work failed (%s); stepping down", failure)
                    await self.release()
                    await asyncio.sleep(2 * self._settings.retry_period)
        finally:
            await asyncio.shield(self.release())

    async def _lead_once(self, lead: Callable[[], Coroutine[object, object, None]]) -> BaseException | None:
        """Run ``lead()`` while the Lease is kept; why the work failed, or None when the Lease was lost."""
        work = asyncio.create_task(lead(), name="leader-work")
        keeper = asyncio.create_task(self._keep(), name="lease-keeper")
        try:
            done, _ = await asyncio.wait({work, keeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (keeper, work):
                task.cancel()
            await asyncio.gather(keeper, work, return_exceptions=True)
            self._set_leader(False)
        if work not in done:
            return None
        return work.exception() or RuntimeError("the leader's work returned")

    async def release(self) -> None:
        """Hand the Lease back if we still hold it: holder empty, so the next replica need not wait it out."""
        try:
            async with asyncio.timeout(self._settings.renew_deadline):
                lease = await self._leases.get(self._settings.lease_name)
                spec = lease.get("spec") or {}
                if spec.get("holderIdentity") != self.identity:
                    return
                released = {**spec, "holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": micro_time()}
                await self._leases.replace({**lease, "spec": released})
            log.info("leader election: released %s", self._settings.lease_name)
        except _REQUEST_ERRORS as error:
            log.warning("leader election: release of %s failed: %s", self._settings.lease_name,
                        str(error) or type(error).__name__)
