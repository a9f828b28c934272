"""Synchronous calls for the control-plane tooling (readiness probes, CRD installation, ``status``, raw test requests).

The devcluster is synchronous code (it starts processes and waits on them) and may run before any event loop exists,
or inside one (a test calling it from a coroutine).  Rather than a second client, each call runs the one request
function (:mod:`spiderpool.k8s.api_requests`) on an API client of its own, in a private event loop: on this thread
when no loop runs here, else on a short-lived worker thread.  So a sync caller sees exactly the typed errors of
:mod:`spiderpool.k8s.api_errors` (a refused connection is ``Unavailable``, a missing object ``NotFound``...).
A call costs a TLS handshake, which the tooling's few requests can afford; group several requests into one
:meth:`SyncApi.run` where it matters.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from spiderpool.k8s.api_errors import StoreError
from spiderpool.k8s.api_requests import JSON, request_bytes, request_json
from spiderpool.k8s.client import ApiClient, KubeconfigError, close_api_client, make_api_client
from spiderpool.k8s.crds import every_crd_served, install_crds

__all__ = ["SyncApi"]

T = TypeVar("T")


class SyncApi:
    """Synchronous requests to one API server as ``token``, verifying its certificate against ``ca_file``."""

    def __init__(self, *, server: str, token: str, ca_file: Path, timeout: float = 10.0) -> None:
        self.server = server
        self._token = token
        self._ca_file = ca_file
        self._timeout = timeout

    def run(self, work: Callable[[ApiClient], Awaitable[T]]) -> T:
        """``work(api)`` to completion on a fresh client, closed afterwards; its result or its error."""

        async def session() -> T:
            api = await make_api_client(server=self.server, token=self._token, ca_file=self._ca_file)
            try:
                return await work(api)
            finally:
                await close_api_client(api)

        return _run_coroutine(session)

    def request(
        self, method: str, path: str, *, body: object = None, query: Mapping[str, object] | None = None,
        accept: str = JSON,
    ) -> dict[str, Any]:
        """The decoded answer; the typed StoreError for any other outcome."""
        what = f"{method} {path}"
        return self.run(lambda api: request_json(api, method, path, what=what, body=body, query=query,
                                                 accept=accept, timeout=self._timeout))

    def get(self, path: str, *, query: Mapping[str, object] | None = None) -> dict[str, Any]:
        return self.request("GET", path, query=query)

    def get_text(self, path: str) -> str:
        """A non-JSON answer as text (``/metrics``, ``/readyz``)."""
        what = f"GET {path}"
        raw = self.run(lambda api: request_bytes(api, "GET", path, what=what, accept="*/*", timeout=self._timeout))
        return raw.decode(errors="replace")

    def is_ready(self) -> bool:
        """``GET /readyz`` answers 200; no answer yet (or its certificate not written yet) counts as not ready."""
        try:
            self.get_text("/readyz")
        except (StoreError, KubeconfigError):
            return False
        return True

    def fully_serving(self) -> bool:
        """Ready, and every Established CRD lists (see :func:`spiderpool.k8s.crds.every_crd_served`)."""

        async def check(api: ApiClient) -> bool:
            await request_bytes(api, "GET", "/readyz", what="GET /readyz", accept="*/*", timeout=self._timeout)
            return await every_crd_served(api)

        try:
            return self.run(check)
        except (StoreError, KubeconfigError):
            return False

    def install_crds(self, *, timeout: float = 60.0, crds: Sequence[Mapping[str, Any]] | None = None) -> list[str]:
        """:func:`spiderpool.k8s.crds.install_crds`, the one installer; returns the CRDs' names."""
        return self.run(lambda api: install_crds(api, timeout=timeout, crds=crds))


def _run_coroutine(make: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run`` here when no loop runs on this thread, else on a worker thread (a loop cannot nest)."""

    async def main() -> T:
        return await make()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    outcome: dict[str, Any] = {}

    def worker() -> None:
        try:
            outcome["result"] = asyncio.run(main())
        except BaseException as error:  # handed to the caller's thread below
            outcome["error"] = error

    thread = threading.Thread(target=worker, name="spiderpool-sync-api", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    result: T = outcome["result"]
    return result
