"""``SocketClaim``: one agent per socket path (flock on ``<socket>.lock``) and the identity of the bound socket."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from spiderpool.agent.socket_claim import SocketClaim, SocketInUse, lock_path_of


def _bind(path: Path) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    return listener


def test_skl02_the_path_is_claimed_once_until_released(socket_dir: Path) -> None:
    """SKL02: a second claim of a claimed path fails naming the path, the lock file and the holder's pid; after the
    release the path can be claimed again."""
    path = socket_dir / "agent.sock"
    first = SocketClaim.take(path)
    with pytest.raises(SocketInUse) as refused:
        SocketClaim.take(path)
    first.release()
    again = SocketClaim.take(path)
    again.release()

    assert str(refused.value) == (f"{path} is in use by another spiderpool agent (pid {os.getpid()}): it holds "
                                  f"{lock_path_of(path)}; stop it or give this agent another --socket")


def test_skl03_readiness_problem_follows_the_bound_socket(socket_dir: Path) -> None:
    """SKL03: the claim's problem is None while the path is the socket bound, and names the path once the socket
    file is removed or replaced by another socket (or was never bound)."""
    path = socket_dir / "agent.sock"
    claim = SocketClaim.take(path)
    unbound = claim.problem()
    with _bind(path):
        claim.bound()
        while_bound = claim.problem()
        path.unlink()
        removed = claim.problem()
        with _bind(path):
            replaced = claim.problem()
    claim.release()

    assert unbound == f"the CNI socket {path} is not bound yet"
    assert while_bound is None
    assert removed == f"the CNI socket {path} has been removed"
    assert replaced == f"the CNI socket {path} has been replaced by another file"
