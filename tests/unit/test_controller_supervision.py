"""Supervised leader work and the elector's step-down, on fake loop time (``looptime``): every delay is asserted
exactly, and a 30-second scenario runs in milliseconds.  The Lease store is an in-memory fake of our ``Leases``."""

from __future__ import annotations

import asyncio
import copy
import itertools
from typing import Any

import pytest

from spiderpool.controller.leader import LeaderElector
from spiderpool.controller.settings import LeaderSettings
from spiderpool.controller.supervision import (
    Backoff,
    LeaderWorkFailed,
    Ready,
    Unit,
    WorkStates,
    run_supervised,
    supervise,
)
from spiderpool.k8s.store import AlreadyExists, Conflict, NotFound, StoreError

pytestmark = pytest.mark.looptime


class Recorder:
    """The WorkStates callbacks, in order, with the loop time they came at."""

    def __init__(self) -> None:
        self.changes: list[tuple[float, str, bool]] = []
        self.failures: list[tuple[float, str]] = []

    def states(self) -> WorkStates:
        loop = asyncio.get_running_loop()
        return WorkStates(on_change=lambda name, up: self.changes.append((loop.time(), name, up)),
                          on_failure=lambda name: self.failures.append((loop.time(), name)))


def flaky(failures: int, *, every: float = 0.0) -> tuple[Unit, list[float]]:
    """A unit that fails its first ``failures`` starts (after ``every`` s), then stays up; its start times."""
    starts: list[float] = []

    async def start(ready: Ready) -> None:
        starts.append(asyncio.get_running_loop().time())
        ready()
        if len(starts) <= failures:
            await asyncio.sleep(every)
            raise ConnectionError(f"failure {len(starts)}")
        await asyncio.Event().wait()

    return Unit("flaky", start), starts


async def test_sv01_a_failed_unit_is_restarted_with_exponential_backoff() -> None:
    """SV01: a unit that fails three times in a row is restarted after 0.5, 1 and 2 s (loop time), each failure is
    counted and reported down with its reason, and it is reported up again once it runs."""
    recorder = Recorder()
    states = recorder.states()
    unit, starts = flaky(3)
    states.begin([unit.name], now=0.0)
    task = asyncio.create_task(supervise(unit, states, Backoff(initial=0.5, maximum=30.0)))
    await asyncio.sleep(10)
    problem = states.problem()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert starts == [0.0, 0.5, 1.5, 3.5]
    assert [time for time, _ in recorder.failures] == [0.0, 0.5, 1.5]
    assert [(time, up) for time, _, up in recorder.changes] == [
        (0.0, False), (0.0, True), (0.0, False), (0.5, True), (0.5, False), (1.5, True), (1.5, False), (3.5, True)]
    assert problem is None


async def test_sv02_the_backoff_resets_after_a_long_run_and_is_capped() -> None:
    """SV02: delays double up to the maximum; a run that lasted ``reset_after`` starts the sequence again."""
    backoff = Backoff(initial=0.5, maximum=4.0, reset_after=60.0)
    recorder = Recorder()
    states = recorder.states()
    unit, starts = flaky(6, every=0.0)
    states.begin([unit.name], now=0.0)
    task = asyncio.create_task(supervise(unit, states, backoff))
    await asyncio.sleep(30)
    long_runner, long_starts = flaky(2, every=60.0)
    states.begin([long_runner.name], now=30.0)
    second = asyncio.create_task(supervise(long_runner, states, backoff))
    await asyncio.sleep(200)
    for running in (task, second):
        running.cancel()
    await asyncio.gather(task, second, return_exceptions=True)

    assert [later - earlier for earlier, later in itertools.pairwise(starts)] == [
        0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert long_starts == [30.0, 90.5, 151.0]  # each run lasted 60 s: every restart waits the initial delay


async def test_sv03_a_unit_down_for_the_deadline_fails_the_leader_work() -> None:
    """SV03: a unit that never comes up (its start keeps failing) makes ``run_supervised`` raise LeaderWorkFailed
    exactly ``give_up_after`` seconds after it first went down, naming it and its reason; the healthy unit is
    cancelled and every unit is reported not running afterwards."""
    recorder = Recorder()
    states = recorder.states()
    cancelled: list[float] = []

    async def refused(_ready: Ready) -> None:
        raise StoreError("connect: connection refused")

    async def healthy(ready: Ready) -> None:
        ready()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.append(asyncio.get_running_loop().time())

    units = [Unit("webhook-registration", refused), Unit("gc", healthy)]
    with pytest.raises(LeaderWorkFailed) as failed:
        await run_supervised(units, states, backoff=Backoff(initial=0.5), give_up_after=3.0)

    assert asyncio.get_running_loop().time() == 3.0
    assert str(failed.value) == ("leader work webhook-registration has not been up for 3.0s: "
                                 "StoreError: connect: connection refused")
    assert cancelled == [3.0]
    assert states.units == {}
    assert recorder.changes[-2:] == [(3.0, "webhook-registration", False), (3.0, "gc", False)]


async def test_sv04_a_unit_that_recovers_within_the_deadline_keeps_the_leadership() -> None:
    """SV04: failures that leave the unit down for less than ``give_up_after`` at a time never fail the work; while
    it is down, ``problem()`` names it and why."""
    states = WorkStates()
    unit, starts = flaky(2)
    work = asyncio.create_task(run_supervised([unit], states, backoff=Backoff(initial=1.0), give_up_after=5.0))
    await asyncio.sleep(0.25)
    while_down = states.problem()
    await asyncio.sleep(60)
    still_running = not work.done()
    work.cancel()
    await asyncio.gather(work, return_exceptions=True)

    assert while_down == "leader work flaky is not running: ConnectionError: failure 1"
    assert starts == [0.0, 1.0, 3.0]
    assert still_running


class MemoryLeases:
    """An in-memory ``Leases``: resourceVersion compare-and-swap; ``down`` makes every request fail."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreError("connect: connection refused")

    def _store(self, lease: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        lease["metadata"]["resourceVersion"] = str(self.version)
        self.objects[lease["metadata"]["name"]] = lease
        return copy.deepcopy(lease)

    async def get(self, name: str) -> dict[str, Any]:
        self._check()
        if name not in self.objects:
            raise NotFound(name, status=404)
        return copy.deepcopy(self.objects[name])

    async def create(self, name: str, *, spec: dict[str, Any], annotations: dict[str, str] | None = None
                     ) -> dict[str, Any]:
        self._check()
        if name in self.objects:
            raise AlreadyExists(name, status=409)
        return self._store({"metadata": {"name": name}, "spec": copy.deepcopy(spec)})

    async def replace(self, lease: dict[str, Any]) -> dict[str, Any]:
        self._check()
        stored = self.objects[lease["metadata"]["name"]]
        if stored["metadata"]["resourceVersion"] != lease["metadata"]["resourceVersion"]:
            raise Conflict(lease["metadata"]["name"], stale_resource_version=lease["metadata"]["resourceVersion"])
        return self._store(copy.deepcopy(lease))


def _settings() -> LeaderSettings:
    return LeaderSettings(lease_name="test-lease", namespace="ns", identity="me", lease_duration=4.0,
                          renew_deadline=3.0, retry_period=0.5)


async def test_sv05_failed_leader_work_steps_down_releases_and_leads_again() -> None:
    """SV05: the leader's work failing (which used to end the elector, leaving the Lease held and ``is_leader``
    true) steps the replica down: leadership reported lost, the Lease released (empty holder), the elector alive;
    after two retry periods it acquires the Lease again and starts the work anew."""
    leases = MemoryLeases()
    changes: list[tuple[float, bool]] = []
    loop = asyncio.get_running_loop()
    elector = LeaderElector(leases, _settings(), on_change=lambda leading: changes.append((loop.time(), leading)))
    runs: list[float] = []
    holders_after_failure: list[str] = []

    async def lead() -> None:
        runs.append(loop.time())
        if len(runs) == 1:
            await asyncio.sleep(1.0)
            raise LeaderWorkFailed("leader work gc has not been up for 3.0s")
        await asyncio.Event().wait()

    def record_holder(leading: bool) -> None:
        if not leading:
            holders_after_failure.append(leases.objects["test-lease"]["spec"]["holderIdentity"])

    task = asyncio.create_task(elector.run(lead))
    await asyncio.sleep(1.5)
    record_holder(elector.is_leader)
    await asyncio.sleep(3.0)
    leading_again = elector.is_leader
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert changes[:3] == [(0.0, True), (1.0, False), (2.0, True)]
    assert holders_after_failure == [""]
    assert runs == [0.0, 2.0]
    assert leading_again
    assert leases.objects["test-lease"]["spec"]["holderIdentity"] == ""  # cancelled: released again


async def test_sv06_an_unreachable_lease_is_the_electors_problem_until_a_request_succeeds() -> None:
    """SV06: while the Lease cannot be read the elector reports why (readiness shows it); the first request that
    succeeds clears it, and the replica leads."""
    leases = MemoryLeases()
    leases.down = True
    elector = LeaderElector(leases, _settings())
    task = asyncio.create_task(elector.run(lambda: asyncio.Event().wait()))  # type: ignore[arg-type, return-value]
    await asyncio.sleep(1.0)
    while_down = elector.problem
    leases.down = False
    await asyncio.sleep(1.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert while_down == "the Lease test-lease cannot be read or written: connect: connection refused"
    assert elector.problem is None
    assert [lease["spec"]["holderIdentity"] for lease in leases.objects.values()] == [""]
