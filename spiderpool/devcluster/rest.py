"""A minimal synchronous JSON client for the few calls the control-plane tooling makes itself.

Readiness probes, CRD installation by ``spiderpool-devcluster up`` and ``status`` run before (or without) an event
loop, and this package must not import the Kubernetes client (import-linter: only ``spiderpool.k8s`` talks to
Kubernetes), so they go through ``http.client`` directly.  Connections go straight to 127.0.0.1: no proxy environment
applies.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def http_get(url: str, *, timeout: float = 2.0) -> Response:
    """Plain-HTTP GET (etcd's /health); connection errors propagate as OSError."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/")
        reply = connection.getresponse()
        return Response(reply.status, reply.read())
    finally:
        connection.close()


class ApiServerRest:
    """HTTPS requests to one kube-apiserver with a bearer token, verifying its certificate against ``ca_file``."""

    def __init__(self, *, server: str, token: str, ca_file: Path, timeout: float = 10.0) -> None:
        parts = urlsplit(server)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 443
        self._token = token
        self._ca_file = ca_file
        self._timeout = timeout
        self._context: ssl.SSLContext | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        # Built lazily: the apiserver writes its certificate only once it has started.
        if self._context is None:
            self._context = ssl.create_default_context(cafile=str(self._ca_file))
        return self._context

    def request(self, method: str, path: str, body: Any = None, *, accept: str = "application/json") -> Response:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": accept}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection = http.client.HTTPSConnection(
            self._host, self._port, timeout=self._timeout, context=self._ssl_context()
        )
        try:
            connection.request(method, path, body=payload, headers=headers)
            reply = connection.getresponse()
            return Response(reply.status, reply.read())
        finally:
            connection.close()

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def is_ready(self) -> bool:
        """``GET /readyz`` answers 200; any connection or TLS error counts as not ready yet."""
        try:
            return self.get("/readyz").status == 200
        except (OSError, ssl.SSLError, http.client.HTTPException):
            return False
