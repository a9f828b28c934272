"""The agent's end of the CNI executable: ``POST /v2/cni`` on the unix socket, turned into calls on a ``CniBackend``.

Every reply is HTTP 200 with ``X-Cni-Exit-Code`` and the exact bytes the executable prints. Errors the backend
raises as ``CniError`` reach the runtime as they are. Other exceptions are logged with their traceback and never
shown as a Python repr:
- ``TimeoutError`` / ``ConnectionError`` and the API errors that are worth a retry (``Transient``: the API server
  unreachable, answering 429 or 5xx) become code 11 "try again later", which runtimes retry;
- anything else becomes code 999 (internal error) pointing at the agent log;
- on DEL, any exception other than ``CniError`` is logged and DEL succeeds, as upstream does: DEL must not block pod
  deletion, and the controller's garbage collector reclaims what a failed release leaves behind. A backend that
  wants the runtime to retry a DEL raises ``CniError`` 11 itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol, TypeVar, cast

from aiohttp import web

from spiderpool.agent.cni_fastpath import CniFastProtocol
from spiderpool.core.cni import error_version, parse_request
from spiderpool.core.cni_result import format_error, format_result, format_version_reply, verify_prev_result
from spiderpool.core.cni_types import Attachment, CniCode, CniCommand, CniError, CniRequest, IpamResult
from spiderpool.k8s.api_errors import Transient
from spiderpool.wire import CNI_REQUEST_PATH, HEADER_EXIT_CODE, MAX_STDIN_BYTES, CniPassthrough, WireError

logger = logging.getLogger("spiderpool.agent.cni")

# Room for the request line and headers around the largest stdin the executable forwards.
_CLIENT_MAX_SIZE: Final = MAX_STDIN_BYTES + 64 * 1024
# Parallel pod creations on one node all connect at once; keep them in the accept queue, not refused.
_LISTEN_BACKLOG: Final = 1024

T = TypeVar("T")


class CniBackend(Protocol):
    """What the agent's IPAM service implements; each method raises ``CniError`` for failures the runtime sees."""

    async def add(self, request: CniRequest) -> IpamResult:
        """Allocates (or returns the existing allocation of) the pod's addresses for ``request.ifname``."""
        ...

    async def delete(self, request: CniRequest) -> None:
        """Releases the pod's records for ``request.ifname``; succeeds when there is nothing to release."""
        ...

    async def check(self, request: CniRequest) -> IpamResult:
        """Returns what is reserved for this pod and interface (empty ``ips`` when nothing is)."""
        ...

    async def gc(self, request: CniRequest, valid: Sequence[Attachment]) -> None:
        """Releases this network's (``request.network_name``) attachments that are not in ``valid``."""
        ...

    async def status(self, request: CniRequest) -> None:
        """Returns when ready for ADD; raises ``CniError`` 50 (or 51) when not."""
        ...


@dataclass(frozen=True, slots=True)
class CniAnswer:
    """What the executable does: print ``stdout`` verbatim, exit with ``exit_code``."""

    exit_code: int
    stdout: bytes = b""


# The backend of an app made by ``make_cni_app``: ``start_unix_server`` serves its ``POST /v2/cni`` on the fast path.
CNI_BACKEND: Final = web.AppKey[CniBackend]("spiderpool_cni_backend")


def _describe(request: CniRequest) -> str:
    return (
        f"{request.command} container={request.container_id} ifname={request.ifname} "
        f"pod={request.k8s.pod_namespace}/{request.k8s.pod_name} network={request.network_name!r}"
    )


async def _guarded(request: CniRequest, call: Awaitable[T]) -> T:
    """Awaits a backend call, mapping unexpected exceptions to CNI errors (see the module docstring)."""
    try:
        return await call
    except CniError:
        raise
    except (TimeoutError, ConnectionError, Transient) as exc:
        logger.warning("CNI %s: transient failure", _describe(request), exc_info=True)
        raise CniError(
            CniCode.TRY_AGAIN_LATER, "transient failure in spiderpool agent, try again", type(exc).__name__
        ) from exc
    except Exception as exc:
        logger.exception("CNI %s: internal error", _describe(request))
        raise CniError(
            CniCode.INTERNAL,
            "internal error in spiderpool agent",
            f"see the spiderpool-agent log for container {request.container_id} ({type(exc).__name__})",
        ) from exc


async def _release(backend: CniBackend, request: CniRequest) -> None:
    try:
        await backend.delete(request)
    except CniError:
        raise
    except Exception:
        logger.exception("CNI %s failed; reporting success, the garbage collector reclaims", _describe(request))


async def _dispatch(backend: CniBackend, request: CniRequest) -> CniAnswer:
    match request.command:
        case CniCommand.ADD:
            result = await _guarded(request, backend.add(request))
            return CniAnswer(0, format_result(result, cni_version=request.cni_version))
        case CniCommand.DEL:
            await _release(backend, request)
        case CniCommand.CHECK:
            verify_prev_result(request, await _guarded(request, backend.check(request)))
        case CniCommand.GC:
            await _guarded(request, backend.gc(request, request.valid_attachments or ()))
        case CniCommand.STATUS:
            await _guarded(request, backend.status(request))
        case CniCommand.VERSION:
            return CniAnswer(0, format_version_reply(cni_version=request.cni_version))
    return CniAnswer(0)


async def answer_cni(backend: CniBackend, passthrough: CniPassthrough) -> CniAnswer:
    """Validates one invocation and serves it from ``backend``; every failure becomes a CNI error answer."""
    try:
        request = parse_request(
            command=passthrough.command,
            container_id=passthrough.container_id,
            netns=passthrough.netns,
            ifname=passthrough.ifname,
            args=passthrough.args,
            path=passthrough.path,
            stdin=passthrough.stdin,
        )
        answer = await _dispatch(backend, request)
    except CniError as err:
        logger.info("CNI %s refused: code %d: %s", passthrough.command, err.code, err.msg)
        return CniAnswer(1, format_error(err, cni_version=error_version(passthrough.stdin)))
    logger.debug("CNI %s done", _describe(request))
    return answer


async def answer_http(backend: CniBackend, headers: Mapping[str, str], body: bytes) -> CniAnswer:
    """The answer to one ``POST /v2/cni`` of ``headers`` (looked up case-insensitively) and ``body``."""
    try:
        passthrough = CniPassthrough.from_headers(headers, body)
    except WireError as err:
        error = CniError(CniCode.INVALID_ENVIRONMENT, str(err))
        return CniAnswer(1, format_error(error, cni_version=error_version(body)))
    return await answer_cni(backend, passthrough)


def make_cni_handler(backend: CniBackend) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler for ``POST /v2/cni``."""

    async def handle_cni(http_request: web.Request) -> web.Response:
        answer = await answer_http(backend, http_request.headers, await http_request.read())
        return web.Response(
            body=answer.stdout, headers={HEADER_EXIT_CODE: str(answer.exit_code)}, content_type="application/json"
        )

    return handle_cni


def add_cni_route(app: web.Application, backend: CniBackend) -> None:
    """Mounts the CNI endpoint; ``app`` must accept bodies of ``MAX_STDIN_BYTES`` (see ``make_cni_app``)."""
    app.router.add_post(CNI_REQUEST_PATH, make_cni_handler(backend))
    app[CNI_BACKEND] = backend


def client_gone(request: web.BaseRequest) -> bool:
    """Whether the client of ``request`` has closed its connection."""
    transport = request.transport
    return transport is None or transport.is_closing()


@web.middleware
async def _quiet_when_the_client_is_gone(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """A client that hangs up mid-request (a runtime's deadline killed the executable, say) is not our error: a
    debug line, no traceback.  Other connection errors propagate."""
    try:
        return await handler(request)
    except ConnectionError as error:
        if not client_gone(request):
            raise
        logger.debug("%s %s: the client closed the connection first (%s)", request.method, request.path, error)
        return web.Response(status=400)  # written to nobody: aiohttp drops a reply to a closed connection quietly


class _CniFastSite(web.SockSite):
    """The socket's site: ``POST /v2/cni`` served by ``CniFastProtocol``, every other request by the app."""

    def __init__(self, runner: web.AppRunner, sock: socket.socket, backend: CniBackend) -> None:
        super().__init__(runner, sock, backlog=_LISTEN_BACKLOG)
        self._backend = backend

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        fallback = cast(Callable[[], asyncio.Protocol], server)

        async def answer(headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
            found = await answer_http(self._backend, headers, body)
            return found.exit_code, found.stdout

        def protocol() -> CniFastProtocol:
            return CniFastProtocol(answer, fallback, max_body=_CLIENT_MAX_SIZE, exit_code_header=HEADER_EXIT_CODE)

        self._server = await asyncio.get_running_loop().create_server(protocol, sock=self._sock,
                                                                      backlog=_LISTEN_BACKLOG)


def make_cni_app(backend: CniBackend) -> web.Application:
    """The socket's application: ``POST /v2/cni``, bodies up to ``MAX_STDIN_BYTES`` (+ 64 KiB), quiet about clients
    that hang up."""
    app = web.Application(client_max_size=_CLIENT_MAX_SIZE, middlewares=[_quiet_when_the_client_is_gone])
    add_cni_route(app, backend)
    return app


def _claim_socket_path(socket_path: Path) -> None:
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()  # a stale socket of a previous agent


def bind_private_socket(socket_path: Path) -> socket.socket:
    """A listening unix socket at ``socket_path`` whose file is created 0600: Linux gives the new file the socket
    inode's mode (less the umask), so ``fchmod`` before ``bind`` leaves no window before a chmod and never touches the
    process-wide umask (worker threads create files meanwhile)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.fchmod(sock.fileno(), 0o600)
        sock.bind(str(socket_path))
        sock.listen(_LISTEN_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


async def start_unix_server(app: web.Application, *, socket_path: Path) -> web.AppRunner:
    """Serves ``app`` on ``socket_path`` (a stale socket file is replaced), readable and writable by root only."""
    _claim_socket_path(socket_path)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    backend = app.get(CNI_BACKEND)
    if backend is None:
        await web.SockSite(runner, bind_private_socket(socket_path), backlog=_LISTEN_BACKLOG).start()
    else:
        await _CniFastSite(runner, bind_private_socket(socket_path), backend).start()
    os.chmod(socket_path, 0o600)  # exactly 0600 whatever the umask took away
    return runner
