"""Exec'ing a CNI plugin as a container runtime does: CNI_* environment, network configuration on stdin, result or
error JSON on stdout, exit code; optionally from inside a node's network namespace (where its master interfaces are).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from spiderpool.testbed.netns import in_netns, netns_path

_DEFAULT_TIMEOUT: Final = 120.0  # above the executable's own 100 s deadline for the agent


@dataclass(frozen=True, slots=True)
class CniCall:
    """One invocation: ``None`` leaves a variable unset (the environment carries only what is given)."""

    command: str
    config: Mapping[str, Any]
    container_id: str | None = None
    netns: str | None = None  # a namespace *name*; CNI_NETNS gets its path
    ifname: str | None = None
    args: str | None = None
    cni_path: str | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        values = {
            "CNI_COMMAND": self.command,
            "CNI_CONTAINERID": self.container_id,
            "CNI_NETNS": str(netns_path(self.netns)) if self.netns else None,
            "CNI_IFNAME": self.ifname,
            "CNI_ARGS": self.args,
            "CNI_PATH": self.cni_path,
        }
        base = {key: value for key, value in os.environ.items() if not key.startswith("CNI_")}
        return base | {key: value for key, value in values.items() if value is not None} | dict(self.extra_env)

    def stdin(self) -> bytes:
        return orjson.dumps(self.config)


@dataclass(frozen=True, slots=True)
class PluginRun:
    """What the plugin did: exit code, stdout (result or error JSON), stderr (its logs), wall time in seconds."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def json(self) -> dict[str, Any]:
        """stdout as one JSON object (a result, an error, a version reply); ValueError describing the run if not."""
        try:
            document = orjson.loads(self.stdout)
        except orjson.JSONDecodeError as err:
            raise ValueError(f"plugin stdout is not JSON ({err}): {self.describe()}") from None
        if not isinstance(document, dict):
            raise ValueError(f"plugin stdout is not a JSON object: {self.describe()}")
        return document

    @property
    def error_code(self) -> int | None:
        """The CNI error code of a failed run (None on success or without an error object)."""
        if self.ok:
            return None
        try:
            code = self.json().get("code")
        except ValueError:
            return None
        return code if isinstance(code, int) else None

    def describe(self) -> str:
        out = self.stdout.decode(errors="replace")[:600]
        err = self.stderr.decode(errors="replace")[-600:]
        return f"exit {self.exit_code} after {self.seconds * 1000:.1f} ms; stdout: {out!r}; stderr: {err!r}"


def plugin_argv(binary: Path, *, host_netns: str | None) -> list[str]:
    return in_netns(host_netns, [str(binary)]) if host_netns else [str(binary)]


async def exec_plugin(
    binary: Path, call: CniCall, *, host_netns: str | None = None, time_limit: float = _DEFAULT_TIMEOUT
) -> PluginRun:
    """Run ``binary`` for ``call`` (inside ``host_netns``, the node's namespace, when given).

    Past ``time_limit`` seconds the plugin is killed and TimeoutError raised.
    """
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *plugin_argv(binary, host_netns=host_netns),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=call.environment(),
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(call.stdin()), time_limit)
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    exit_code = process.returncode if process.returncode is not None else -1  # communicate() waited: never -1
    return PluginRun(exit_code, stdout, stderr, time.perf_counter() - started)


async def exec_many(
    binary: Path, calls: Sequence[CniCall], *, host_netns: str | None = None, parallel: int = 100
) -> list[PluginRun]:
    """Run every call, at most ``parallel`` at a time; results in the order of ``calls``."""
    gate = asyncio.Semaphore(parallel)

    async def one(call: CniCall) -> PluginRun:
        async with gate:
            return await exec_plugin(binary, call, host_netns=host_netns)

    return list(await asyncio.gather(*(one(call) for call in calls)))
