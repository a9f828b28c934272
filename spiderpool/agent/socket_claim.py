"""One agent per socket path: an exclusive ``flock`` on ``<socket>.lock``, and the identity of the socket we bound.

Without the lock a second agent started on the same path removed the first one's socket and bound its own: the first
stayed Ready on its TCP probes while no CNI request could reach it any more.  The lock is taken before the stale
socket is removed and held until the agent has stopped serving; the kernel drops it when the process dies, however
it dies, so a crashed agent never blocks the next one.  The lock file itself stays (removing it would let two agents
lock two different files of the same name).

Readiness asks ``problem()``: the path must still be the socket we bound (same device and inode), so a socket file
removed or replaced behind our back makes the agent not ready instead of silently unreachable.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path


class SocketInUse(RuntimeError):
    """Another process (another agent) holds the lock of this socket path."""


def lock_path_of(socket_path: Path) -> Path:
    return socket_path.with_name(socket_path.name + ".lock")


def _holder(fd: int) -> str:
    """The pid the holder wrote into the lock file, for the message ("" when unknown)."""
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


class SocketClaim:
    """``take(path)`` before binding ``path``; ``bound()`` after; ``release()`` once the server is closed."""

    def __init__(self, socket_path: Path, fd: int) -> None:
        self.socket_path = socket_path
        self._fd: int | None = fd
        self._bound: tuple[int, int] | None = None

    @classmethod
    def take(cls, socket_path: Path) -> SocketClaim:
        """Lock ``<socket_path>.lock``; SocketInUse, naming the path and the holder's pid, when another agent has it."""
        socket_path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = lock_path_of(socket_path)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _holder(fd)
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise SocketInUse(f"{socket_path} is in use by another spiderpool agent{holder}: it holds "
                                  f"{lock_path}; stop it or give this agent another --socket") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(socket_path, fd)

    def bound(self) -> None:
        """Remember the socket now at the path as ours (call right after the server has bound it)."""
        info = os.stat(self.socket_path)
        self._bound = (info.st_dev, info.st_ino)

    def problem(self) -> str | None:
        """Why the path no longer reaches us (removed, replaced, not a socket), or None."""
        if self._bound is None:
            return f"the CNI socket {self.socket_path} is not bound yet"
        try:
            info = os.stat(self.socket_path)
        except FileNotFoundError:
            return f"the CNI socket {self.socket_path} has been removed"
        except OSError as error:
            return f"the CNI socket {self.socket_path} cannot be checked: {error.strerror}"
        if not stat.S_ISSOCK(info.st_mode) or (info.st_dev, info.st_ino) != self._bound:
            return f"the CNI socket {self.socket_path} has been replaced by another file"
        return None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None
