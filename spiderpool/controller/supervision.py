"""Supervised leader work: every unit restarted with backoff after a failure, its state known, nothing dropped.

The model is kopf's daemons and controller-runtime's manager: a unit of work (a leader component, the webhook
registration) that raises or returns is logged, counted, marked down and started again after an exponential delay
(reset once a run has lasted ``Backoff.reset_after``).  ``WorkStates`` is what readiness and the metrics read; once a
unit has been down (or not yet up) for ``give_up_after`` seconds, ``run_supervised`` raises ``LeaderWorkFailed`` and
the elector steps down, so a replica whose work cannot run does not keep the Lease (and the webhooks) to itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

log = logging.getLogger(__name__)

Ready = Callable[[], None]


class LeaderWorkFailed(RuntimeError):
    """A unit of the leader's work has not been up for ``give_up_after`` seconds."""


@dataclass(frozen=True, slots=True)
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    reset_after: float = 60.0

    def delay(self, failures: int) -> float:
        """The wait before the restart that follows the ``failures``-th failure in a row (1, 2, ...)."""
        return min(self.maximum, self.initial * 2.0 ** max(0, failures - 1))


@dataclass(frozen=True, slots=True)
class Unit:
    """One supervised piece of work: ``start(ready)`` runs it until cancelled and calls ``ready()`` once it is up."""

    name: str
    start: Callable[[Ready], Awaitable[None]]


@dataclass(slots=True)
class UnitState:
    up: bool = False
    reason: str = "not started"
    down_since: float = 0.0
    failures: int = 0


def _no_change(_name: str, _up: bool) -> None:
    return None


@dataclass(slots=True)
class WorkStates:
    """The state of each unit of the leader's work, for readiness, the metrics and the give-up deadline."""

    on_change: Callable[[str, bool], None] = _no_change
    on_failure: Callable[[str], None] = lambda _name: None
    units: dict[str, UnitState] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def begin(self, names: Sequence[str], *, now: float) -> None:
        self.units = {name: UnitState(reason="starting", down_since=now) for name in names}
        for name in names:
            self.on_change(name, False)
        self.changed.set()

    def end(self) -> None:
        """Leadership is over: nothing of the leader's work runs here any more."""
        for name in self.units:
            self.on_change(name, False)
        self.units = {}
        self.changed.set()

    def mark_up(self, name: str) -> None:
        state = self.units[name]
        state.up, state.reason = True, "up"
        self.on_change(name, True)
        self.changed.set()

    def mark_down(self, name: str, reason: str, *, now: float) -> None:
        state = self.units[name]
        if state.up:
            state.down_since = now
        state.up, state.reason = False, reason
        state.failures += 1
        self.on_change(name, False)
        self.on_failure(name)
        self.changed.set()

    def problem(self) -> str | None:
        """The first unit that is not up, and why; None when every unit is up (or none runs)."""
        for name, state in self.units.items():
            if not state.up:
                return f"leader work {name} is not running: {state.reason}"
        return None

    def overdue(self, *, now: float, give_up_after: float) -> tuple[str, float] | None:
        """The unit that has been down longest, and the time left until it has been down for ``give_up_after``."""
        down = [(name, state.down_since) for name, state in self.units.items() if not state.up]
        if not down:
            return None
        name, since = min(down, key=lambda item: item[1])
        return name, since + give_up_after - now


async def supervise(unit: Unit, states: WorkStates, backoff: Backoff) -> NoReturn:
    """Run ``unit`` forever: after each failure (an exception, or returning) wait the backoff delay and start again."""
    loop = asyncio.get_running_loop()
    in_a_row = 0
    while True:
        started = loop.time()
        try:
            await unit.start(lambda: states.mark_up(unit.name))
            reason = "it stopped by itself"
        except Exception as error:  # a unit that fails is restarted, never dropped
            reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            log.exception("leader work %s failed", unit.name)
        in_a_row = 1 if loop.time() - started >= backoff.reset_after else in_a_row + 1
        delay = backoff.delay(in_a_row)
        states.mark_down(unit.name, reason, now=loop.time())
        log.error("leader work %s is down (%s); restarting in %.1fs (failure %d in a row)",
                  unit.name, reason, delay, in_a_row)
        await asyncio.sleep(delay)


async def _watch(states: WorkStates, *, give_up_after: float) -> NoReturn:
    loop = asyncio.get_running_loop()
    while True:
        states.changed.clear()
        overdue = states.overdue(now=loop.time(), give_up_after=give_up_after)
        if overdue is not None and overdue[1] <= 0:
            name = overdue[0]
            raise LeaderWorkFailed(f"leader work {name} has not been up for {give_up_after:.1f}s: "
                                   f"{states.units[name].reason}")
        try:
            async with asyncio.timeout(overdue[1] if overdue is not None else None):
                await states.changed.wait()
        except TimeoutError:
            pass


async def run_supervised(units: Sequence[Unit], states: WorkStates, *, backoff: Backoff, give_up_after: float) -> None:
    """Run every unit supervised until cancelled; LeaderWorkFailed once one has been down for ``give_up_after``."""
    loop = asyncio.get_running_loop()
    states.begin([unit.name for unit in units], now=loop.time())
    tasks = [asyncio.create_task(supervise(unit, states, backoff), name=f"leader-{unit.name}") for unit in units]
    try:
        await _watch(states, give_up_after=give_up_after)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        states.end()
