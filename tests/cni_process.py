"""The CNI executable run as a container runtime runs it: one process, CNI_* environment, config on stdin."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson


@dataclass(frozen=True)
class PluginRun:
    exit_code: int
    stdout: bytes
    stderr: bytes

    def json(self) -> dict[str, Any]:
        document = orjson.loads(self.stdout)  # stdout must be exactly one JSON document
        assert isinstance(document, dict)
        return document


async def exec_plugin(binary: Path, env: Mapping[str, str], stdin: bytes) -> PluginRun:
    """Run ``binary`` with exactly ``env`` (nothing inherited) and ``stdin``; at most 60 s."""
    process = await asyncio.create_subprocess_exec(
        str(binary), env=dict(env), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout=60)
    assert process.returncode is not None
    return PluginRun(process.returncode, stdout, stderr)
