"""Working in another network namespace without moving the agent: one short-lived thread per call enters it.

``setns(2)`` with ``CLONE_NEWNET`` changes the namespace of the calling *thread* only, so the agent's event loop and
every other thread stay where they are. ``run_in_netns`` starts a fresh thread, enters the namespace there, runs the
work and puts the thread back before it ends (belt and braces: the thread ends anyway, and a fresh thread per call
means no pooled thread can ever be left in a pod's namespace).

Sockets remember the namespace they were created in, so the cheap way to do a lot of work in a namespace is to
create the socket there (``socket_in_netns``, or a netlink client built by ``run_in_netns``) and use it from any
thread afterwards. Writes under ``/proc/sys/net`` follow the writing thread's namespace, so sysctls of a pod are
written from inside ``run_in_netns`` too.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import threading
from collections.abc import Callable
from typing import Final, TypeVar

T = TypeVar("T")

CLONE_NEWNET: Final = 0x40000000
_OWN_NETNS: Final = "/proc/thread-self/ns/net"
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsGone(FileNotFoundError):
    """The namespace path does not exist (any more): a pod's sandbox that is already gone."""


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def open_netns(path: str) -> int:
    """An O_CLOEXEC descriptor of the namespace at ``path``; ``NetnsGone`` when there is none."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetnsGone(path) from None


def _run_entered(target: int, work: Callable[[], T]) -> T:
    own = os.open(_OWN_NETNS, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target)
        try:
            return work()
        finally:
            _setns(own)
    finally:
        os.close(own)


def run_in_netns(path: str, work: Callable[[], T]) -> T:
    """``work()`` run on a new thread inside the namespace at ``path``; its result or its exception."""
    target = open_netns(path)
    outcome: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            outcome.append(_run_entered(target, work))
        except BaseException as error:  # handed to the caller's thread
            failure.append(error)

    try:
        thread = threading.Thread(target=body, name=f"netns:{path}", daemon=True)
        thread.start()
        thread.join()
    finally:
        os.close(target)
    if failure:
        raise failure[0]
    return outcome[0]


async def run_in_netns_async(path: str, work: Callable[[], T]) -> T:
    """``run_in_netns`` without blocking the event loop (the waiting happens on a pool thread, the namespace
    switching on a thread of its own)."""
    return await asyncio.to_thread(run_in_netns, path, work)


def socket_in_netns(path: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket created inside the namespace at ``path`` (it stays bound to that namespace wherever it is used)."""
    return run_in_netns(path, lambda: socket.socket(family, kind, proto))
