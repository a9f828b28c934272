"""Child processes that never outlive their parent.

Every child runs in its own process group (so a stop reaches anything it forked, and a Ctrl-C in the terminal reaches
only the parent, which then stops the children in order) and asks the kernel for ``SIGKILL`` when its parent dies
(``PR_SET_PDEATHSIG``), which covers the cases no Python handler sees: ``SIGKILL`` of the test runner, a crash, an
OOM kill.  The kernel sends that signal when the *thread* that forked the child exits, so every child is forked by
one long-lived thread (``spawner``), whichever thread starts it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

from spiderpool.devcluster.spawner import run_on_spawner_thread

_PR_SET_PDEATHSIG = 1
_BIND_FAILURE_MARKERS = ("address already in use", "bind: address")


class ProcessExitedError(RuntimeError):
    """A child exited while we waited for it; the message carries the tail of its log."""


def _load_prctl() -> Callable[..., int]:
    libc = ctypes.CDLL(None, use_errno=True)
    prctl: Callable[..., int] = libc.prctl
    return prctl


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    prctl = _load_prctl()  # resolved before fork: the child only calls it

    def in_child() -> None:
        if prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            os._exit(126)
        # The parent may have died between fork and prctl; then nobody would ever send the signal.
        if os.getppid() != parent_pid:
            os._exit(126)

    return in_child


class ManagedProcess:
    """One child process with its log file; started by ``start``, stopped (whole process group) by ``stop``."""

    def __init__(self, name: str, argv: Sequence[str], *, log_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._env = dict(env) if env is not None else None
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def start(self) -> None:
        if self.running():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== starting {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            argv, env, die_with_parent = self.argv, self._env, _die_with_parent(os.getpid())
            self._popen = run_on_spawner_thread(
                lambda: subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    process_group=0,
                    preexec_fn=die_with_parent,
                    close_fds=True,
                )
            )

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def exit_code(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def stop(self, *, grace: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; idempotent."""
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            _signal_group(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(popen.pid, signal.SIGKILL)
                popen.wait()
        # Sweep whatever the child forked and left behind; the group id stays ours while any member lives.
        _signal_group(popen.pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the process group at once (a crash, not a shutdown) and reap it; idempotent."""
        popen = self._popen
        if popen is None:
            return
        _signal_group(popen.pid, signal.SIGKILL)
        popen.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        marker = text.rfind("\n=== starting ")
        return "\n".join(text[marker + 1 :].splitlines()[-lines:])

    def failed_to_bind(self) -> bool:
        """True when the latest run exited because its port was taken (the caller retries with another port)."""
        if self.running():
            return False
        tail = self.log_tail(lines=200).lower()
        return any(marker in tail for marker in _BIND_FAILURE_MARKERS)

    def wait_until(self, ready: Callable[[], bool], *, timeout: float, interval: float = 0.1) -> None:
        """Poll ``ready`` until it holds; ProcessExitedError if the child dies first, TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise ProcessExitedError(
                    f"{self.name} exited with code {self.exit_code()} while starting; log {self.log_path}:\n"
                    + self.log_tail()
                )
            if ready():
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{self.name} not ready after {timeout:.0f}s; log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(interval)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def raise_on_termination(exception: type[BaseException] = SystemExit) -> None:
    """Turn SIGTERM and SIGHUP into ``exception`` so ``finally`` blocks, fixtures and ``atexit`` stop the children.

    Pass ``KeyboardInterrupt`` under pytest: it ends the session and runs every teardown, while a ``SystemExit``
    raised inside a test only fails that test.  Only where the default action (die silently) is still installed, and
    only from the main thread (``signal``'s rule).
    """

    def handler(signum: int, _frame: FrameType | None) -> None:
        if exception is SystemExit:
            raise SystemExit(128 + signum)
        raise exception(f"received signal {signal.Signals(signum).name}")

    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, handler)
