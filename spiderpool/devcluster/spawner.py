"""One long-lived thread that forks every child, because ``PR_SET_PDEATHSIG`` is tied to the spawning *thread*.

The kernel sends the parent-death signal when the thread that forked the child exits, not when the process does.
Children started from a short-lived thread (``asyncio.to_thread``, whose executor shuts down with each event loop,
or any worker pool) would be SIGKILLed when that thread ends.  Forking from this daemon thread instead ties every
child to the life of the process, whichever thread asked for it.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
_Job = tuple[Callable[[], Any], "Future[Any]"]


class _SpawnerThread:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._owner_pid: int | None = None

    def _ensure_running(self) -> None:
        with self._lock:
            if self._owner_pid == os.getpid():
                return
            # First use, or first use in a forked child (threads do not survive fork): start a fresh thread.
            self._jobs = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(self._jobs,), name="devcluster-spawner", daemon=True).start()
            self._owner_pid = os.getpid()

    @staticmethod
    def _serve(jobs: queue.SimpleQueue[_Job]) -> None:
        while True:
            job, result = jobs.get()
            try:
                result.set_result(job())
            except BaseException as exc:  # handed to the caller, who re-raises it in its own thread
                result.set_exception(exc)

    def run(self, job: Callable[[], T]) -> T:
        """Run ``job`` (which forks) on the spawner thread and return its result."""
        self._ensure_running()
        result: Future[T] = Future()
        self._jobs.put((job, result))
        return result.result()


_SPAWNER = _SpawnerThread()


def run_on_spawner_thread(job: Callable[[], T]) -> T:
    return _SPAWNER.run(job)
