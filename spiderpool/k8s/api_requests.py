"""The one way this package sends a request to the API server: :func:`request`, and readers built on it.

It goes through the client library's own transport (``ApiClient.call_api``: the configured host, TLS, proxy and the
bearer token with its refresh hook, e.g. an exec plugin's or a projected service-account token), asks for the raw
answer and hands it to :mod:`spiderpool.k8s.api_errors`, the single mapping from answers to typed errors.  Bodies go
out and come back as the JSON the API server speaks: the wire formats (upstream's status strings above all) stay
exactly as written, with no model classes in between.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any, Final, cast

import aiohttp
import orjson
from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.api_errors import NO_ANSWER, StoreError, error_for_body, error_for_exception

__all__ = ["JSON", "RequestTimeout", "request", "request_bytes", "request_json", "stream_lines"]

JSON: Final = "application/json"
# Seconds for the whole request, or (connect, read) for a long-lived stream.
RequestTimeout = float | tuple[float, float]


def _client_timeout(timeout: RequestTimeout) -> aiohttp.ClientTimeout:
    if isinstance(timeout, tuple):
        connect, read = timeout
        return aiohttp.ClientTimeout(connect=connect, sock_connect=connect, sock_read=read)
    return aiohttp.ClientTimeout(total=timeout)


def _query_pairs(query: Mapping[str, object] | None) -> list[tuple[str, str]]:
    pairs = []
    for key, value in (query or {}).items():
        if value is None:
            continue
        pairs.append((key, ("true" if value else "false") if isinstance(value, bool) else str(value)))
    return pairs


async def request(
    api: ApiClient,
    method: str,
    path: str,
    *,
    what: str,
    query: Mapping[str, object] | None = None,
    body: object = None,
    accept: str = JSON,
    content_type: str = JSON,
    timeout: RequestTimeout = 30.0,  # noqa: ASYNC109 - the transport's own: (connect, read) for a stream
    resource_version: str = "",
) -> aiohttp.ClientResponse:
    """``method path``: the open response of a 2xx answer (the caller reads and closes it), else the typed error.

    ``what`` names the request in error messages; ``resource_version`` is the one a compare-and-swap write is based
    on (carried by a :class:`~spiderpool.k8s.api_errors.Conflict`).  ``None`` query values are left out.
    """
    try:
        response = cast(aiohttp.ClientResponse, await api.call_api(
            path, method.upper(), query_params=_query_pairs(query),
            header_params={"Accept": accept, "Content-Type": content_type}, body=body,
            auth_settings=["BearerToken"], _preload_content=False, _request_timeout=_client_timeout(timeout),
        ))
    except StoreError:
        raise
    except NO_ANSWER as error:
        raise error_for_exception(error, what=what) from error
    if 200 <= response.status < 300:
        return response
    raw = await _read(response, what=what)
    raise error_for_body(response.status, raw, what=what, resource_version=resource_version)


async def _read(response: aiohttp.ClientResponse, *, what: str) -> bytes:
    """The whole body; a connection lost while reading is :class:`~spiderpool.k8s.api_errors.Unavailable` too."""
    try:
        return await response.read()
    except NO_ANSWER as error:
        raise error_for_exception(error, what=what) from error
    finally:
        response.close()


async def request_bytes(api: ApiClient, method: str, path: str, *, what: str, **options: Any) -> bytes:
    """:func:`request`, read to the end."""
    return await _read(await request(api, method, path, what=what, **options), what=what)


async def request_json(api: ApiClient, method: str, path: str, *, what: str, **options: Any) -> dict[str, Any]:
    """:func:`request`, decoded (``{}`` for an empty body)."""
    raw = await request_bytes(api, method, path, what=what, **options)
    return cast(dict[str, Any], orjson.loads(raw)) if raw else {}


async def stream_lines(api: ApiClient, path: str, *, what: str, **options: Any) -> AsyncGenerator[bytes, None]:
    """The non-empty lines of a streamed ``GET`` (a watch), until the server ends it; closed on exit."""
    response = await request(api, "GET", path, what=what, **options)
    try:
        async for line in response.content:
            if line.strip():
                yield line
    except NO_ANSWER as error:
        raise error_for_exception(error, what=what) from error
    finally:
        response.close()
