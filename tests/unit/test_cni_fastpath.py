"""The socket's fast path for ``POST /v2/cni`` (``cni_fastpath``), over real unix sockets: what it answers itself,
what it hands to aiohttp, and clients that hang up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import orjson
import pytest

from spiderpool.agent.cni_endpoint import _CLIENT_MAX_SIZE, make_cni_app, start_unix_server
from spiderpool.agent.cni_fastpath import CniFastProtocol, parse_head
from spiderpool.core.cni_types import Attachment, CniRequest, IpamResult
from spiderpool.wire import HEADER_EXIT_CODE

STDIN = orjson.dumps({"cniVersion": "1.0.0", "name": "net", "type": "macvlan", "ipam": {"type": "spiderpool"}})
HEAD = (b"POST /v2/cni HTTP/1.1\r\nHost: spiderpool-agent\r\nConnection: close\r\nContent-Type: application/json\r\n"
        b"X-Cni-Command: VERSION\r\nx-cni-containerid: c1\r\nX-Cni-Ifname: eth0\r\n")


class Idle:
    """A backend these tests never reach: VERSION is answered without one."""

    def __init__(self) -> None:
        self.calls = 0

    async def add(self, request: CniRequest) -> IpamResult:
        self.calls += 1
        return IpamResult(ips=())

    async def delete(self, request: CniRequest) -> None:
        self.calls += 1

    async def check(self, request: CniRequest) -> IpamResult:
        return IpamResult(ips=())

    async def gc(self, request: CniRequest, valid: Sequence[Attachment]) -> None:
        return None

    async def status(self, request: CniRequest) -> None:
        return None


def request(body: bytes = STDIN, *, head: bytes = HEAD) -> bytes:
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


async def exchange(socket_path: Path, data: bytes, *, pieces: int = 1) -> tuple[bytes, dict[str, str], bytes]:
    """Sends ``data`` in ``pieces`` writes; the status line, headers (lower-case names) and body of the reply."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    step = max(1, len(data) // pieces)
    for start in range(0, len(data), step):
        writer.write(data[start:start + step])
        await writer.drain()
    reply = await reader.read()
    writer.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return status.encode(), headers, body


@pytest.fixture
async def agent_socket(socket_dir: Path) -> AsyncIterator[Path]:
    socket_path = socket_dir / "agent.sock"
    runner = await start_unix_server(make_cni_app(Idle()), socket_path=socket_path)
    yield socket_path
    await runner.cleanup()


def test_ordinary_heads_are_taken_and_others_left_to_aiohttp() -> None:
    """CFP01: parse_head takes the executable's head (headers looked up in any case, the body length) and leaves
    everything else to aiohttp: another method, path or version, chunked, Expect, Upgrade, no, two or a non-numeric
    Content-Length, a body over the limit, a space before a colon, obs-fold."""
    head = request()[:request().index(b"\r\n\r\n")]
    parsed = parse_head(head, max_body=len(STDIN))
    assert parsed is not None
    headers, length = parsed
    assert (headers["X-CNI-CONTAINERID"], headers["x-cni-command"], length) == ("c1", "VERSION", len(STDIN))
    assert parse_head(head, max_body=len(STDIN) - 1) is None
    others = [head.replace(b"POST /v2/cni", b"GET /v2/cni"), head.replace(b"/v2/cni", b"/v1/ipam/ip"),
              head.replace(b"HTTP/1.1", b"HTTP/2.0"), head + b"\r\nTransfer-Encoding: chunked",
              head + b"\r\nExpect: 100-continue", head + b"\r\nUpgrade: h2c",
              head.replace(b"Content-Length: ", b"Content-Length: 1\r\nContent-Length: "),
              head.replace(b"Content-Length: ", b"X-Length: "), head.replace(b"Content-Length: ", b"Content-Length: +"),
              head.replace(b"X-Cni-Ifname:", b"X-Cni-Ifname :"), head + b"\r\n folded"]
    assert [parse_head(other, max_body=1 << 20) for other in others] == [None] * len(others)


async def test_the_executables_request_is_answered_by_the_fast_path(agent_socket: Path) -> None:
    """CFP02: the executable's request, in one write or byte by byte, is answered on the fast path (no aiohttp
    ``Server`` header) with 200, the exit code and the CNI answer, and ``Connection: close``."""
    for pieces in (1, len(request())):
        status, headers, body = await exchange(agent_socket, request(), pieces=pieces)
        assert status == b"HTTP/1.1 200 OK"
        assert "server" not in headers
        assert headers[HEADER_EXIT_CODE.lower()] == "0"
        assert headers["connection"] == "close"
        assert int(headers["content-length"]) == len(body)
        assert orjson.loads(body)["cniVersion"] == "1.0.0"
        assert "1.0.0" in orjson.loads(body)["supportedVersions"]


async def test_unusual_requests_get_aiohttps_answers(agent_socket: Path) -> None:
    """CFP03: requests the fast path hands off keep aiohttp's answers on the same socket: GET /v2/cni is 405, a
    chunked POST /v2/cni the same CNI answer as the fast path's, a body over the socket's limit 413, an unknown
    path 404."""
    status, headers, _ = await exchange(agent_socket, b"GET /v2/cni HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 405")
    assert "server" in headers
    chunked = HEAD + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(STDIN), STDIN)
    status, headers, body = await exchange(agent_socket, chunked)
    fast = await exchange(agent_socket, request())
    assert (status, headers[HEADER_EXIT_CODE.lower()], body) == (b"HTTP/1.1 200 OK", "0", fast[2])
    assert "server" in headers
    status, _, _ = await exchange(agent_socket, request(b"x" * (_CLIENT_MAX_SIZE + 1)))
    assert status.startswith(b"HTTP/1.1 413")
    status, _, _ = await exchange(agent_socket, b"GET /nothing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 404")


async def test_a_client_that_hangs_up_is_no_error(socket_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """CFP04: a client that hangs up before its answer (half a body, or while the answer is computed) costs no
    error and no stuck connection: the next request is answered; an answer that raises becomes 500 and a logged
    traceback."""
    started, finish = asyncio.Event(), asyncio.Event()

    async def answer(headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
        started.set()
        await finish.wait()
        if body == b"boom":
            raise RuntimeError("boom")
        return 0, body

    def protocol() -> CniFastProtocol:
        return CniFastProtocol(answer, asyncio.Protocol, max_body=1024, exit_code_header=HEADER_EXIT_CODE)

    socket_path = socket_dir / "fast.sock"
    server = await asyncio.get_running_loop().create_unix_server(protocol, str(socket_path))
    try:
        for partial in (request()[:-3], request()):
            _, writer = await asyncio.open_unix_connection(str(socket_path))
            writer.write(partial)
            await writer.drain()
            if partial == request():
                await started.wait()
            writer.close()
            await writer.wait_closed()
        finish.set()
        caplog.set_level(logging.DEBUG, logger="spiderpool.agent.cni")
        assert (await exchange(socket_path, request()))[2] == STDIN
        assert (await exchange(socket_path, request(b"boom")))[0] == b"HTTP/1.1 500 Internal Server Error"
        errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
        assert [record.exc_info[1].args for record in errors if record.exc_info and record.exc_info[1]] == [("boom",)]
    finally:
        server.close()
        await server.wait_closed()
