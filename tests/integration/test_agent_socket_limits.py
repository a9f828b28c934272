"""The agent's unix socket against clients that misbehave: bodies over the limit and clients that hang up mid-request.
Neither is the agent's error: a clear 4xx or a quiet close, never a 500 or an ERROR traceback in its log.  Case IDs
H04 and H12 in docs/e2e-cases.md.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from agent_support import AgentLauncher, Cluster, eventually

from spiderpool.agent.upstream_api import MAX_BODY_BYTES

pytestmark = pytest.mark.integration

TOO_LARGE = f"request body exceeds {MAX_BODY_BYTES} bytes"
WATCHED_LOGGERS = ("spiderpool", "aiohttp")


@asynccontextmanager
async def unix_client(path: Path) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path))) as session:
        yield session


async def chunks(size: int) -> AsyncIterator[bytes]:
    """A body sent with Transfer-Encoding: chunked, so no Content-Length announces its size."""
    step = 64 * 1024
    for start in range(0, size, step):
        yield b" " * min(step, size - start)


def agent_records(caplog: pytest.LogCaptureFixture, since: int = 0) -> list[logging.LogRecord]:
    return [r for r in caplog.records[since:] if r.name.startswith(WATCHED_LOGGERS)]


async def test_h04_bodies_over_the_limit_are_413(
    cluster: Cluster, node_agent: AgentLauncher, caplog: pytest.LogCaptureFixture
) -> None:
    """H04: upstream's API answers a body over 1 MiB with 413 and an upstream error body naming the limit, whether
    Content-Length announces it or it arrives chunked (past the socket's own 4 MiB + 64 KiB limit too); a body at the
    limit is read (then refused for its content: 422); nothing is logged at ERROR and the agent goes on serving."""
    caplog.set_level(logging.INFO)
    node = await cluster.node()
    async with node_agent(node) as agent, unix_client(agent.config.socket_path) as http:
        json_type = {"Content-Type": "application/json"}
        for size in (5 << 20, MAX_BODY_BYTES + 1):
            chunked = await http.post("http://agent/v1/ipam/ip", data=chunks(size), headers=json_type)
            assert (chunked.status, await chunked.json()) == (413, TOO_LARGE), size
        for method, path in (("POST", "/v1/ipam/ip"), ("DELETE", "/v1/ipam/ip"), ("DELETE", "/v1/ipam/ips")):
            over = await http.request(method, f"http://agent{path}", data=io.BytesIO(b" " * (MAX_BODY_BYTES + 1)),
                                      headers=json_type)
            assert (over.status, await over.json()) == (413, TOO_LARGE), (method, path)
        at_limit = await http.post("http://agent/v1/ipam/ip", data=io.BytesIO(b"{}" + b" " * (MAX_BODY_BYTES - 2)),
                                   headers=json_type)
        assert at_limit.status == 422
        assert (await http.get("http://agent/v1/ipam/healthy")).status == 200
    assert [r.getMessage() for r in agent_records(caplog) if r.levelno >= logging.ERROR] == []


async def hang_up_mid_body(socket_path: Path, request_line: bytes) -> None:
    """Sends the head of a request, waits until the agent's handler takes it (its ``100 Continue``), sends part of
    the body and closes the connection."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    try:
        writer.write(request_line + b" HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n")
        await writer.drain()
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100 Continue")
        writer.write(b'{"containerID": "c1", "ifName": ')
        await writer.drain()
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("request_line", [b"POST /v1/ipam/ip", b"DELETE /v1/ipam/ips", b"POST /v2/cni"])
async def test_h12_a_client_that_hangs_up_is_no_error(
    cluster: Cluster, node_agent: AgentLauncher, caplog: pytest.LogCaptureFixture, request_line: bytes
) -> None:
    """H12: a client that closes the connection in the middle of its request body (upstream's API and our CNI
    endpoint) leaves one debug line, no ERROR or WARNING and no traceback; the agent goes on serving."""
    caplog.set_level(logging.DEBUG, logger="spiderpool.agent")
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    node = await cluster.node()
    async with node_agent(node) as agent:
        since = len(caplog.records)
        await hang_up_mid_body(agent.config.socket_path, request_line)
        # The agent has dealt with it once its handler says something about this request (debug or worse).
        path = request_line.split()[1].decode()
        await eventually(lambda: any(path in r.getMessage() or r.exc_info for r in agent_records(caplog, since)))
        loud = [(r.levelname, r.getMessage()) for r in agent_records(caplog, since) if r.levelno >= logging.WARNING]
        assert loud == []
        assert not [r for r in agent_records(caplog, since) if r.exc_info]
        async with unix_client(agent.config.socket_path) as http:
            assert (await http.get("http://agent/v1/ipam/healthy")).status == 200
