"""One plain-JSON request to the API server for the kinds without a typed store here (Leases, webhook configurations).

Bodies go out and come back as the JSON dicts the API server speaks; failures raise the store's typed errors
(``NotFound``, ``Conflict``, ``AlreadyExists``...), so callers handle a lost compare-and-swap as they do elsewhere.
"""

from __future__ import annotations

from typing import Any, cast

import orjson
from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.store import StoreError, error_for_status


async def request_json(
    api: ApiClient, method: str, path: str, *, what: str, body: object = None, request_timeout: float = 10.0,
    resource_version: str = "",
) -> dict[str, Any]:
    """``method path`` with ``body``; the decoded answer, or the typed StoreError naming ``what``."""
    response = await api.call_api(
        path, method,
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        body=body, auth_settings=["BearerToken"], _preload_content=False, _request_timeout=request_timeout,
    )
    raw: bytes = await response.read()
    if not 200 <= response.status < 300:
        raise _error(response.status, raw, what=what, resource_version=resource_version)
    return cast(dict[str, Any], orjson.loads(raw)) if raw else {}


def _error(status: int, raw: bytes, *, what: str, resource_version: str) -> StoreError:
    try:
        decoded = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        decoded = {}
    document = decoded if isinstance(decoded, dict) else {}
    message = str(document.get("message", raw[:300].decode(errors="replace")))
    return error_for_status(status, reason=str(document.get("reason", "")), message=message, what=what,
                            resource_version=resource_version)
