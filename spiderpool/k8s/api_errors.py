"""The one place where an API server answer (or the lack of one) becomes a typed error.

Every request of this package goes through :func:`spiderpool.k8s.api_requests.request`, which calls
:func:`error_for_status` for an HTTP status outside 2xx and :func:`error_for_exception` for a request that got no
answer at all, so the same failure raises the same type whichever kind or call it came from:

==========================  =========================================================================================
HTTP 401 / 403              :class:`Unauthorized` / :class:`Forbidden` (both :class:`AccessDenied`)
HTTP 404                    :class:`NotFound`
HTTP 409                    :class:`AlreadyExists` (Status reason ``AlreadyExists``), else :class:`Conflict`
HTTP 410                    :class:`Gone` (a watch or list from a resourceVersion the server no longer has)
HTTP 400 / 422              :class:`Invalid`
HTTP 429 / 5xx              :class:`TooManyRequests` / :class:`ServerError` (both :class:`Transient`)
no answer                   :class:`Unavailable` (connection refused or reset, TLS failure, timeout; ``status`` 0)
==========================  =========================================================================================

:class:`Unavailable` is also a :class:`ConnectionError`, so code that treats an unreachable service as "try again"
(the agent's CNI endpoint answers code 11) keeps doing so.  Only the Status ``reason`` and ``message`` of an error
body are kept, never the rest of it (a body that is not a Status may hold anything).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Final

import aiohttp
import orjson

__all__ = [
    "AccessDenied",
    "AlreadyExists",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "NotFound",
    "ServerError",
    "StoreError",
    "TooManyRequests",
    "Transient",
    "Unauthorized",
    "Unavailable",
    "error_for_exception",
    "error_for_status",
    "is_transient",
]

_TEXT_LIMIT: Final = 300


class StoreError(Exception):
    """An API request failed; ``status`` is the HTTP code (0 when no answer came back)."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class Conflict(StoreError):
    """A compare-and-swap lost: the object changed after ``stale_resource_version`` was read."""

    def __init__(self, message: str, *, stale_resource_version: str, reason: str = "Conflict") -> None:
        super().__init__(message, status=409, reason=reason)
        self.stale_resource_version = stale_resource_version


class Gone(StoreError):
    """HTTP 410: the resourceVersion asked for is no longer in the server's history (list again)."""


class Invalid(StoreError):
    """The API server rejected the request body or parameters (HTTP 422 or 400) with its field errors."""


class AccessDenied(StoreError):
    """The credentials were refused (401) or do not allow the request (403)."""


class Unauthorized(AccessDenied):
    pass


class Forbidden(AccessDenied):
    pass


class Transient(StoreError):
    """The request may succeed when tried again later: the server is overloaded, failing, or unreachable."""


class TooManyRequests(Transient):
    pass


class ServerError(Transient):
    pass


class Unavailable(Transient, ConnectionError):
    """No answer: connection refused or reset, TLS handshake failure, or no reply in time."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=0)


_BY_STATUS: Final[dict[int, type[StoreError]]] = {
    400: Invalid, 401: Unauthorized, 403: Forbidden, 404: NotFound, 410: Gone, 422: Invalid, 429: TooManyRequests,
}

# What a request that got no answer raises inside aiohttp and the ssl/socket layers below it.
NO_ANSWER: Final = (aiohttp.ClientError, OSError, ssl.SSLError, asyncio.TimeoutError, TimeoutError)


def status_text(body: bytes) -> tuple[str, str]:
    """The ``reason`` and ``message`` of a Status error body; for anything else, no reason and a cut text."""
    try:
        document = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        return "", body[:_TEXT_LIMIT].decode(errors="replace").strip()
    if not isinstance(document, dict) or document.get("kind", "Status") != "Status":
        return "", ""
    return str(document.get("reason") or ""), str(document.get("message") or "")


def error_for_status(
    status: int, *, reason: str, message: str, what: str, resource_version: str = ""
) -> StoreError:
    """The typed error for HTTP ``status`` with a Status ``reason`` and ``message``.

    ``what`` names the request; ``resource_version`` is the one a lost compare-and-swap was based on.
    """
    detail = f"{what}: HTTP {status} {reason}: {message}".replace("  ", " ")
    if status == 409:
        if reason == "AlreadyExists":
            return AlreadyExists(detail, status=status, reason=reason)
        return Conflict(detail, stale_resource_version=resource_version, reason=reason)
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else StoreError)
    return kind(detail, status=status, reason=reason)


def error_for_body(status: int, body: bytes, *, what: str, resource_version: str = "") -> StoreError:
    """:func:`error_for_status` for a raw error body."""
    reason, message = status_text(body)
    return error_for_status(status, reason=reason, message=message, what=what, resource_version=resource_version)


def error_for_exception(error: BaseException, *, what: str) -> Unavailable:
    """The :class:`Unavailable` for a request that got no answer (one of :data:`NO_ANSWER`)."""
    text = str(error) or type(error).__name__  # aiohttp's timeouts carry no message
    return Unavailable(f"{what}: API server unavailable: {text}")


def is_transient(error: BaseException) -> bool:
    """Worth trying again later: overloaded, failing, or unreachable (not a refusal of the request itself)."""
    return isinstance(error, Transient)
