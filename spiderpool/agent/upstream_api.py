"""Upstream's agent API on the unix socket, so upstream's CNI binary (or spiderflat) can talk to this agent too.

``GET /v1/ipam/healthy``, ``POST``/``DELETE /v1/ipam/ip``, ``POST``/``DELETE /v1/ipam/ips`` and
``GET /v1/workloadendpoint``, with upstream's JSON field names.  Errors are upstream's: the body is a JSON string
(``Error`` in its openapi), 500 for a failed allocation or release, 522 when a batch release of a StatefulSet
pod's conflicting addresses is refused (its addresses are static), 422 for a body that misses a required field
(what go-swagger answers), 400/404 for the workload endpoint query, 413 for a body over ``MAX_BODY_BYTES`` (1 MiB;
upstream's requests are a few hundred bytes).  A client that hangs up mid-request is logged at debug level only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import orjson
from aiohttp import web

from spiderpool.agent.assignment import PodRequest
from spiderpool.agent.cni_endpoint import client_gone
from spiderpool.agent.endpoints import STATEFULSET, endpoint_entries, endpoint_uid, owner_type
from spiderpool.agent.ipam import IpamService
from spiderpool.agent.results import nic_entries
from spiderpool.cluster_config import ClusterSettings
from spiderpool.core.cni_types import CniError
from spiderpool.core.selection_types import CniPoolDefaults
from spiderpool.k8s.store import StoreError

log = logging.getLogger(__name__)

_ADD_REQUIRED: Final = ("containerID", "ifName", "netNamespace", "podNamespace", "podName", "podUID")
_DEL_REQUIRED: Final = ("containerID", "ifName", "podNamespace", "podName", "podUID")
_BATCH_DEL_REQUIRED: Final = ("containerID", "podNamespace", "podName", "podUID")
_INTERFACE_FIELDS: Final = ("interface", "ipv4", "ipv6", "mac", "vlan", "ipv4Pool", "ipv6Pool", "ipv4Gateway",
                            "ipv6Gateway", "routes")
STATUS_FORBID_STATEFUL: Final = 522
MAX_BODY_BYTES: Final = 1 << 20
_TOO_LARGE: Final = f"request body exceeds {MAX_BODY_BYTES} bytes"

Handler = Callable[[web.Request], Awaitable[web.Response]]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(message), content_type="application/json")


def _json(document: object) -> web.Response:
    return web.Response(body=orjson.dumps(document), content_type="application/json")


async def _body(request: web.Request, required: tuple[str, ...]) -> Mapping[str, Any]:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise _BadRequest(413, _TOO_LARGE)  # refused before reading it
    raw = await request.read()  # a chunked body past the socket's own limit raises HTTPRequestEntityTooLarge
    if len(raw) > MAX_BODY_BYTES:
        raise _BadRequest(413, _TOO_LARGE)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise _BadRequest(400, f"request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise _BadRequest(400, "request body must be a JSON object")
    for name in required:
        if not isinstance(body.get(name), str) or not body[name]:
            raise _BadRequest(422, f"{name} in body is required (a non-empty string), got {body.get(name)!r}")
    return body


def _pools(body: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise _BadRequest(422, f"{name} in body must be a list of pool names, got {value!r}")
    return tuple(value)


def _guarded(call: Callable[[web.Request], Awaitable[web.Response]]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        try:
            return await call(request)
        except _BadRequest as error:
            return _error(error.status, str(error))
        except CniError as error:
            return _error(500, f"{error.msg}: {error.details}" if error.details else error.msg)
        except web.HTTPRequestEntityTooLarge:
            return _error(413, _TOO_LARGE)
        except Exception as error:
            if isinstance(error, ConnectionError) and client_gone(request):
                raise  # the socket application's middleware closes quietly
            log.exception("%s %s failed", request.method, request.path)
            return _error(500, f"internal error in spiderpool agent ({type(error).__name__}); see the agent log")

    return handle


def with_detection_flags(document: dict[str, Any], settings: ClusterSettings) -> dict[str, Any]:
    """Upstream's ``IPConfig.enableIPConflictDetection`` / ``enableGatewayDetection`` on each address (omitted when
    false, as upstream's ``omitempty``): upstream's IPAM executable, which calls this API, probes itself when they
    are set (the agent probes only for its own executable's ``/v2/cni``)."""
    flags = {key: True for key, on in (("enableIPConflictDetection", settings.enable_ip_conflict_detection),
                                        ("enableGatewayDetection", settings.enable_gateway_detection)) if on}
    if not flags:
        return document
    ips = document.get("ips")
    return {**document, "ips": [{**ip, **flags} for ip in ips]} if isinstance(ips, list) else document


class UpstreamApi:
    """The handlers, one per endpoint of upstream's openapi."""

    def __init__(self, service: IpamService) -> None:
        self._service = service

    async def healthy(self, _: web.Request) -> web.Response:
        problem = self._service.problem()
        return _json("ok") if problem is None else _error(500, problem)

    async def post_ip(self, request: web.Request) -> web.Response:
        body = await _body(request, _ADD_REQUIRED)
        clean_gateway = body.get("cleanGateway", False)
        if not isinstance(clean_gateway, bool):
            raise _BadRequest(422, f"cleanGateway in body must be a boolean, got {clean_gateway!r}")
        assembled = await self._service.allocate(PodRequest(
            namespace=body["podNamespace"], name=body["podName"], uid=body["podUID"], nic=body["ifName"],
            container_id=body["containerID"],
            cni=CniPoolDefaults(ipv4=_pools(body, "defaultIPv4IPPool"), ipv6=_pools(body, "defaultIPv6IPPool"),
                                clean_gateway=clean_gateway)))
        return _json({**with_detection_flags(assembled.to_dict(), self._service.context.settings), "dns": {}})

    async def delete_ip(self, request: web.Request) -> web.Response:
        body = await _body(request, _DEL_REQUIRED)
        await self._service.release(body["podNamespace"], body["podName"], body["podUID"])
        return _json("ok")

    async def post_ips(self, _: web.Request) -> web.Response:
        return _json("ok")  # upstream's no-op

    async def delete_ips(self, request: web.Request) -> web.Response:
        body = await _body(request, _BATCH_DEL_REQUIRED)
        namespace, name, uid = body["podNamespace"], body["podName"], body["podUID"]
        endpoint = await self._service.context.endpoints.get(namespace, name)
        if body.get("isReleaseConflictIPs") and endpoint is not None and owner_type(endpoint) == STATEFULSET:
            return _error(STATUS_FORBID_STATEFUL, f"pod {namespace}/{name} belongs to a StatefulSet: its addresses "
                                                  "are static and are not released on conflict")
        await self._service.release_all(namespace, name, uid)
        return _json("ok")

    async def workload_endpoint(self, request: web.Request) -> web.Response:
        namespace, name = request.query.get("podNamespace"), request.query.get("podName")
        if not namespace or not name:
            raise _BadRequest(400, "query parameters podNamespace and podName are required")
        try:
            endpoint = await self._service.context.endpoints.get(namespace, name)
        except StoreError as error:
            return _error(500, str(error))
        if endpoint is None:
            return await self._lean_workload_endpoint(namespace, name)
        interfaces = [{key: entry[key] for key in _INTERFACE_FIELDS if key in entry}
                      for entry in endpoint_entries(endpoint)]
        return _json({"podNamespace": namespace, "podName": name, "podUID": endpoint_uid(endpoint),
                      "node": endpoint.get("status", {}).get("current", {}).get("node", ""),
                      "interfaces": interfaces})

    async def _lean_workload_endpoint(self, namespace: str, name: str) -> web.Response:
        """A pod without a SpiderEndpoint (lean endpoints): the same answer, from its pool records."""
        try:
            pod = await self._service.context.pods.for_release(namespace, name)
        except StoreError as error:
            return _error(500, str(error))
        uid = "" if pod is None else str(pod["metadata"].get("uid", ""))
        held = self._service.held_records(uid)
        if not held.ips:
            return _error(404, f"SpiderEndpoint {namespace}/{name} not found, and no pool record of the pod")
        assert pod is not None
        interfaces = [{key: entry[key] for key in _INTERFACE_FIELDS if key in entry}
                      for entry in sorted(nic_entries(held, clean_gateway={}), key=lambda entry: entry["interface"])]
        return _json({"podNamespace": namespace, "podName": name, "podUID": uid,
                      "node": pod.get("spec", {}).get("nodeName", ""), "interfaces": interfaces})


def add_upstream_routes(app: web.Application, service: IpamService) -> None:
    api = UpstreamApi(service)
    app.router.add_get("/v1/ipam/healthy", _guarded(api.healthy))
    app.router.add_post("/v1/ipam/ip", _guarded(api.post_ip))
    app.router.add_delete("/v1/ipam/ip", _guarded(api.delete_ip))
    app.router.add_post("/v1/ipam/ips", _guarded(api.post_ips))
    app.router.add_delete("/v1/ipam/ips", _guarded(api.delete_ips))
    app.router.add_get("/v1/workloadendpoint", _guarded(api.workload_endpoint))
