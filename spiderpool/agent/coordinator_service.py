"""``POST /v2/coordinator``: the agent's end of the ``coordinator`` executable (same wire format as ``/v2/cni``).

ADD completes the netconf from the SpiderCoordinator (``CoordinatorApi.lookup``, the same answer upstream's plugin
fetches over ``GET /v1/coordinator/config``), reads the pod's and the node's namespaces, plans (pure,
``core.coordinator_plan``), applies the pod's steps from a thread inside the pod's namespace and the node's steps in
the node's, and prints the ``prevResult`` unchanged in the configuration's version, as upstream's plugin does. DEL
removes what ADD made on the node (``core.coordinator_teardown``) and tolerates a gone namespace; CHECK verifies.
ADDs run at once; a DEL has the node alone (``NodeGate``: it removes the host rule only when the host table is
empty, which a concurrent ADD could change).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from ipaddress import ip_interface
from typing import Final, TypeVar

import orjson
from aiohttp import web
from pyroute2.netlink.exceptions import NetlinkError

from spiderpool.agent.cni_endpoint import CniAnswer
from spiderpool.agent.coordinator_api import CoordinatorApi
from spiderpool.agent.coordinator_netlink import apply_steps, read_node, read_node_table, read_pod
from spiderpool.agent.netns import NetnsGone, run_in_netns
from spiderpool.agent.node_gate import NodeGate
from spiderpool.core.cni import error_version, parse_request
from spiderpool.core.cni_result import format_error
from spiderpool.core.cni_types import CniCode, CniCommand, CniError, CniRequest, IpAddress
from spiderpool.core.coordinator_config import CoordinatorNotReady
from spiderpool.core.coordinator_facts import NODE, POD, CreateVeth, NamespaceFacts, Step
from spiderpool.core.coordinator_netconf import DISABLED, OVERLAY, UNDERLAY, CoordinatorConf, parse_coordinator_conf
from spiderpool.core.coordinator_plan import (
    OVERLAY_NIC,
    UNDERLAY_VETH,
    AddInputs,
    host_veth_name,
    plan_add,
    pod_addresses,
    resolve_mode,
)
from spiderpool.core.coordinator_teardown import check_underlay, plan_del
from spiderpool.k8s.store import StoreError
from spiderpool.wire import COORDINATOR_REQUEST_PATH, HEADER_EXIT_CODE, CniPassthrough, WireError

logger = logging.getLogger("spiderpool.agent.coordinator")
T = TypeVar("T")
_PRIVILEGES_HINT: Final = (" (the agent needs CAP_NET_ADMIN and CAP_SYS_ADMIN for the coordinator: chart value "
                           "coordinator.agentPrivileges)")


def random_mac() -> str:
    """A random locally administered unicast MAC (what upstream's veth ends get, so systemd leaves them alone)."""
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02
    return ":".join(f"{byte:02x}" for byte in raw)


def _prev_addresses(config: Mapping[str, object]) -> list[IpAddress]:
    prev = config.get("prevResult")
    ips = prev.get("ips") if isinstance(prev, Mapping) else None
    found = []
    for entry in ips if isinstance(ips, list) else []:
        try:
            found.append(ip_interface(str(entry.get("address"))).ip)
        except (ValueError, AttributeError):
            continue
    return found


class CoordinatorService:
    def __init__(self, api: CoordinatorApi, *, host_netns: str | None) -> None:
        self._api = api
        self._host_netns = host_netns
        self._node = NodeGate()

    async def _in_host(self, work: Callable[[], T]) -> T:
        if self._host_netns is None:
            return await asyncio.to_thread(work)
        return await asyncio.to_thread(run_in_netns, self._host_netns, work)

    async def _conf(self, request: CniRequest, *, for_del: bool) -> CoordinatorConf:
        try:
            api = await self._api.lookup(request.k8s.pod_namespace or "", request.k8s.pod_name or "",
                                         with_pod=not for_del)
        except (CoordinatorNotReady, StoreError) as error:
            if not for_del:
                raise CniError(CniCode.TRY_AGAIN_LATER, f"failed to GetCoordinatorConfig: {error}") from None
            api = {"mode": "auto"}  # DEL must not block pod deletion: the netconf alone says enough to clean up
        return parse_coordinator_conf(request.config, api)

    async def add(self, request: CniRequest) -> None:
        netns, ifname, container_id = request.netns or "", request.ifname or "", request.container_id or ""
        # the SpiderCoordinator and the pod's namespace are read at once (a disabled mode wastes one read)
        conf, pod = await asyncio.gather(self._conf(request, for_del=False),
                                         asyncio.to_thread(run_in_netns, netns, read_pod), return_exceptions=True)
        if isinstance(conf, BaseException):
            raise conf
        if conf.mode == DISABLED:
            return  # as upstream, before the namespace matters
        if isinstance(pod, BaseException):
            raise pod
        async with self._node.shared():
            targets = pod_addresses(pod, ifname)
            node, sources, _ = await self._in_host(lambda: read_node(targets, conf.host_rule_table))
            plan = plan_add(AddInputs(conf, ifname, container_id, pod, node, sources, random_mac(), random_mac()))
            logger.debug("coordinator ADD %s %s: %s mode, table %d", container_id, ifname, plan.mode, plan.table)
            await self._apply(netns, plan.steps)

    async def _apply(self, netns: str, steps: Sequence[Step]) -> None:
        """The pod's and the node's steps at once; the pod's wait for the node's veth pair when there is one."""
        pod_steps = [step for step in steps if step.side == POD]
        node_steps = [step for step in steps if step.side == NODE]
        made = threading.Event()
        waits = any(isinstance(step, CreateVeth) for step in node_steps)
        pod_fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            outcomes = await asyncio.gather(
                self._in_host(lambda: apply_steps(node_steps, peer_netns_fd=pod_fd, veth_made=made)),
                asyncio.to_thread(run_in_netns, netns, lambda: apply_steps(pod_steps, veth_made=made,
                                                                              wait_for_veth=waits)),
                return_exceptions=True)
        finally:
            os.close(pod_fd)
        for outcome in outcomes:  # the node's failure first: it explains the pod's
            if isinstance(outcome, BaseException):
                raise outcome

    async def _alive_pod(self, request: CniRequest) -> NamespaceFacts | None:
        if not request.netns or not await asyncio.to_thread(os.path.exists, request.netns):
            return None
        try:
            return await asyncio.to_thread(run_in_netns, request.netns, read_pod)
        except NetnsGone:
            return None

    async def delete(self, request: CniRequest) -> None:
        conf = await self._conf(request, for_del=True)
        if conf.mode == DISABLED:
            return
        # Without the namespace there is nothing of this pod's left on other devices (its veth pairs and their routes
        # went with it), and a route to one of its old addresses is that of the pod holding the address now. With
        # it, prevResult (CNI >= 0.4.0) or the NIC names the addresses, and only routes on the host peer of the
        # pod's eth0 are this pod's (overlay mode): the same address on another device is another pod's.
        pod = await self._alive_pod(request)
        addresses: list[IpAddress] = []
        host_peer = None
        if pod is not None:
            link = pod.link(request.ifname or "")
            addresses = _prev_addresses(request.config) or ([a.ip for a in link.addresses] if link else [])
            overlay_nic = pod.link(OVERLAY_NIC)
            # with veth0 (underlay) eth0 is the main plugin's (macvlan: its IFLA_LINK is the master, not a peer)
            if overlay_nic is not None and pod.link(UNDERLAY_VETH) is None:
                host_peer = overlay_nic.peer_index
        container_id = request.container_id or ""
        async with self._node.exclusive():
            node, table = await self._in_host(lambda: read_node_table(host_veth_name(container_id),
                                                                      conf.host_rule_table))
            steps = plan_del(container_id, addresses, node, table, host_peer=host_peer)
            await self._in_host(lambda: apply_steps(steps))

    async def check(self, request: CniRequest) -> None:
        conf = await self._conf(request, for_del=False)
        if conf.mode == DISABLED:
            return
        ifname = request.ifname or ""
        pod = await asyncio.to_thread(run_in_netns, request.netns or "", read_pod)
        mode, _, _ = resolve_mode(conf, ifname, pod)
        link = pod.link(ifname)
        addresses = [address.ip for address in link.addresses] if link else []
        node, _, table = await self._in_host(lambda: read_node((), conf.host_rule_table))
        problems = check_underlay(request.container_id or "", addresses, pod, node, table) if mode == UNDERLAY \
            else [f"the node has no route to {a} in table {table.table}" for a in addresses if mode == OVERLAY
                  and not any(r.dst is not None and r.dst.network_address == a for r in table.routes)]
        if problems:
            raise CniError(CniCode.INVALID_CONFIG, f"coordinator CHECK of {ifname}: " + "; ".join(problems))


def _prev_result_reply(request: CniRequest) -> bytes:
    prev = request.config.get("prevResult")
    if not isinstance(prev, Mapping):
        raise CniError(CniCode.INVALID_CONFIG, "prevResult: required for ADD (coordinator is a chained plugin)")
    return orjson.dumps({**prev, "cniVersion": request.cni_version})


async def _dispatch(service: CoordinatorService, request: CniRequest) -> CniAnswer:
    try:
        match request.command:
            case CniCommand.ADD:
                reply = _prev_result_reply(request)
                await service.add(request)
                return CniAnswer(0, reply)
            case CniCommand.DEL:
                await service.delete(request)
            case CniCommand.CHECK:
                await service.check(request)
    except NetnsGone as error:
        raise CniError(CniCode.INVALID_NETNS, f"failed to GetNS {error}") from None
    except NetlinkError as error:
        logger.warning("coordinator %s %s: %s", request.command, request.container_id, error)
        hint = _PRIVILEGES_HINT if error.code == errno.EPERM else ""
        raise CniError(CniCode.INTERNAL, f"coordinator: {error.args[-1]}{hint}") from None
    except PermissionError as error:
        raise CniError(CniCode.INTERNAL, f"coordinator: {error}{_PRIVILEGES_HINT}") from None
    return CniAnswer(0)


async def answer_coordinator(service: CoordinatorService, passthrough: CniPassthrough) -> CniAnswer:
    try:
        request = parse_request(command=passthrough.command, container_id=passthrough.container_id,
                                netns=passthrough.netns, ifname=passthrough.ifname, args=passthrough.args,
                                path=passthrough.path, stdin=passthrough.stdin)
        return await _dispatch(service, request)
    except CniError as error:
        logger.info("coordinator %s refused: code %d: %s", passthrough.command, error.code, error.msg)
        return CniAnswer(1, format_error(error, cni_version=error_version(passthrough.stdin)))
    except Exception as error:
        logger.exception("coordinator %s: internal error", passthrough.command)
        failure = CniError(CniCode.INTERNAL, "internal error in spiderpool agent (coordinator)", type(error).__name__)
        return CniAnswer(1, format_error(failure, cni_version=error_version(passthrough.stdin)))


def add_coordinator_cni_route(app: web.Application, service: CoordinatorService) -> None:
    async def handle(http_request: web.Request) -> web.Response:
        body = await http_request.read()
        try:
            answer = await answer_coordinator(service, CniPassthrough.from_headers(http_request.headers, body))
        except WireError as error:
            failure = CniError(CniCode.INVALID_ENVIRONMENT, str(error))
            answer = CniAnswer(1, format_error(failure, cni_version=error_version(body)))
        return web.Response(body=answer.stdout, headers={HEADER_EXIT_CODE: str(answer.exit_code)},
                            content_type="application/json")

    app.router.add_post(COORDINATOR_REQUEST_PATH, handle)


