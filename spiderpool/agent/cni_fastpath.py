"""A lean server for the one request the CNI executable makes, ``POST /v2/cni``, in front of the socket's aiohttp app.

The executable opens a connection per call and sends one ordinary request: ``POST /v2/cni HTTP/1.1`` with
``Content-Length``, ``Connection: close``.  aiohttp's request machinery (request and response objects, router,
middlewares, keep-alive timers) costs about as much agent CPU per call as the rest of a CNI ADD's HTTP work, so
such a request is parsed here and answered by ``answer`` directly.  Every other request, and anything unusual about
this one (another method or path, chunked, ``Expect``, a body over the limit, an oversized or malformed head), is
handed with its bytes to aiohttp's handler for the connection, so every other behaviour stays aiohttp's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from multidict import CIMultiDict

log = logging.getLogger("spiderpool.agent.cni")

# What the fast path answers: the request's headers and body to (exit code, stdout).
Answer = Callable[[Mapping[str, str], bytes], Awaitable[tuple[int, bytes]]]

_HEAD_LIMIT: Final = 16 * 1024  # a longer head goes to aiohttp, which refuses it as it always did
_REQUEST_LINES: Final = (b"POST /v2/cni HTTP/1.1", b"POST /v2/cni HTTP/1.0")
_HANDED_OFF_HEADERS: Final = ("transfer-encoding", "expect", "upgrade")


def parse_head(head: bytes, *, max_body: int) -> tuple[CIMultiDict[str], int] | None:
    """The headers and body length of an ordinary ``POST /v2/cni`` head (without its final CRLF CRLF); None for
    anything else (aiohttp serves those)."""
    lines = head.split(b"\r\n")
    if lines[0] not in _REQUEST_LINES:
        return None
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or b"\n" in line or b"\r" in line:
            return None  # obs-fold, a bare CR/LF, a space before the colon: let aiohttp refuse it
        headers.add(name.decode("ascii", "surrogateescape"), value.strip(b" \t").decode("utf-8", "surrogateescape"))
    lengths = headers.getall("Content-Length", [])
    if len(lengths) != 1 or not lengths[0].isdigit() or not lengths[0].isascii() or int(lengths[0]) > max_body:
        return None
    if any(name in headers for name in _HANDED_OFF_HEADERS):
        return None
    return headers, int(lengths[0])


def _reply(exit_code: int, stdout: bytes, *, header: str) -> bytes:
    return b"".join((b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
                     f"{header}: {exit_code}\r\nContent-Length: {len(stdout)}\r\n".encode(),
                     b"Connection: close\r\n\r\n", stdout))


class CniFastProtocol(asyncio.Protocol):
    """One connection: an ordinary ``POST /v2/cni`` answered here, anything else handed to ``fallback()``'s
    protocol (aiohttp's handler of the connection) with the bytes read so far."""

    def __init__(self, answer: Answer, fallback: Callable[[], asyncio.Protocol], *, max_body: int,
                 exit_code_header: str) -> None:
        self._answer = answer
        self._fallback = fallback
        self._max_body = max_body
        self._exit_code_header = exit_code_header
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._request: tuple[CIMultiDict[str], int] | None = None
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._task is not None:
            return  # bytes after the one request: the connection closes after the answer
        self._buffer += data
        if self._request is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _HEAD_LIMIT:
                    self._hand_off()
                return
            self._request = parse_head(bytes(self._buffer[:end]), max_body=self._max_body)
            if self._request is None:
                self._hand_off()
                return
            del self._buffer[:end + 4]
        headers, length = self._request
        if len(self._buffer) >= length:
            body = bytes(self._buffer[:length])
            self._task = asyncio.get_running_loop().create_task(self._serve(headers, body))

    def _hand_off(self) -> None:
        assert self._transport is not None
        handler = self._fallback()
        self._transport.set_protocol(handler)
        handler.connection_made(self._transport)
        handler.data_received(bytes(self._buffer))
        self._buffer.clear()

    async def _serve(self, headers: CIMultiDict[str], body: bytes) -> None:
        transport = self._transport
        assert transport is not None
        try:
            exit_code, stdout = await self._answer(headers, body)
            reply = _reply(exit_code, stdout, header=self._exit_code_header)
        except Exception:
            log.exception("POST /v2/cni: internal error")
            reply = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        if transport.is_closing():
            log.debug("POST /v2/cni: the client closed the connection first")
            return
        transport.write(reply)
        transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        """A client gone before its answer: ``_serve`` sees the closed transport and writes nothing."""
