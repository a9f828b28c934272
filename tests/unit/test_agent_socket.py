"""The agent's unix socket (``start_unix_server``): created 0600 without touching the process-wide umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from aiohttp import web

from spiderpool.agent.cni_endpoint import start_unix_server


async def test_ask01_socket_is_private_and_the_umask_never_changes(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    """ASK01: the socket file is 0600 from its creation, under a permissive umask, and the process-wide umask is
    never changed while it is made (worker threads may create files meanwhile; before: it was set to 0o177 around
    the bind)."""
    umask_calls: list[int] = []
    real_umask = os.umask

    def recording_umask(mask: int) -> int:
        umask_calls.append(mask)
        return real_umask(mask)

    previous = real_umask(0o022)
    monkeypatch.setattr(os, "umask", recording_umask)
    socket_path = tmp_path / "agent.sock"
    try:
        runner = await start_unix_server(web.Application(), socket_path=socket_path)
        try:
            mode = os.stat(socket_path).st_mode
            assert stat.S_ISSOCK(mode)
            assert stat.S_IMODE(mode) == 0o600
            assert umask_calls == []
        finally:
            await runner.cleanup()
    finally:
        real_umask(previous)
