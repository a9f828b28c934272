"""The one module of the CLI that reads the API server: the kubeconfig to use, and a snapshot of the objects.

Failures become :class:`CliError` with the documented exit code: an unusable kubeconfig is a usage error (2), an API
server that cannot be reached or fails a request is 4.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from spiderpool.cli.consistency import PodKey, pod_key
from spiderpool.cli.exit_codes import CliError, ExitCode
from spiderpool.cli.gc_preview import Snapshot
from spiderpool.k8s.client import ApiClient, KubeconfigError, close_api_client, make_api_client
from spiderpool.k8s.core_objects import ROUTES, CoreObjects
from spiderpool.k8s.store import SpiderStores, StoreError, Unavailable

_T = TypeVar("_T")


def kubeconfig_path(given: str | None, *, environ: Mapping[str, str] | None = None) -> str:
    """``--kubeconfig``, else ``$KUBECONFIG`` (a list of files, merged as kubectl merges them), else
    ``~/.kube/config``; at least one of the files must exist."""
    environ = os.environ if environ is None else environ
    if given:
        paths, origin = given, "--kubeconfig"
    elif environ.get("KUBECONFIG"):
        paths, origin = environ["KUBECONFIG"], "$KUBECONFIG"
    else:
        paths = str(Path(environ.get("HOME", "~")).expanduser() / ".kube" / "config")
        origin = "the default kubeconfig"
    if not any(Path(path).is_file() for path in paths.split(os.pathsep) if path):
        raise CliError(f"{origin}: no kubeconfig file at {paths}", code=ExitCode.USAGE)
    return paths


@asynccontextmanager
async def connected(kubeconfig: str, *, context: str | None) -> AsyncIterator[ApiClient]:
    try:
        api = await make_api_client(kubeconfig=kubeconfig, context=context)
    except (KubeconfigError, OSError) as error:
        raise CliError(f"kubeconfig {kubeconfig}: cannot be used: {_describe(error)}",
                       code=ExitCode.USAGE) from None
    try:
        yield api
    finally:
        await close_api_client(api)


async def answered(request: Awaitable[_T], *, what: str) -> _T:
    """The request's result; a CliError with exit code 4 when the API server cannot be reached or fails it."""
    try:
        return await request
    except Unavailable as error:
        raise CliError(f"{what}: API server unreachable: {_describe(error)}",
                       code=ExitCode.API_UNREACHABLE) from None
    except StoreError as error:
        raise CliError(f"{what}: {error}", code=ExitCode.API_UNREACHABLE) from None


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__  # aiohttp's timeouts carry no message


@dataclass(frozen=True, slots=True)
class ClusterState:
    """Everything the read commands look at, listed once."""

    pools: list[dict[str, Any]]
    subnets: list[dict[str, Any]]
    reserved_ips: list[dict[str, Any]]
    endpoints: dict[PodKey, dict[str, Any]]
    pods: dict[PodKey, dict[str, Any]]
    nodes: dict[str, dict[str, Any]]
    statefulsets: dict[PodKey, dict[str, Any]]

    def snapshot(self) -> Snapshot:
        return Snapshot(pools=self.pools, endpoints=self.endpoints, pods=self.pods, nodes=self.nodes,
                        statefulsets=self.statefulsets)


async def read_cluster_state(
    api: ApiClient, *, request_timeout: float, workloads: bool = True
) -> ClusterState:
    """Pools, subnets, reserved IPs and endpoints; with ``workloads`` also pods, nodes and StatefulSets."""
    stores = SpiderStores(api, request_timeout=request_timeout)
    core = CoreObjects(api, request_timeout=request_timeout)

    async def custom(kind: str, listing: Awaitable[Any]) -> list[dict[str, Any]]:
        return list((await answered(listing, what=f"list {kind}")).items)

    async def builtin(kind: str) -> list[dict[str, Any]]:
        if not workloads:
            return []
        route = next(route for (_, name), route in ROUTES.items() if name == kind)
        return await answered(core.list_objects(route), what=f"list {route.plural}")

    # One list after the other: a failure then leaves no request behind, and a CLI can afford the round trips.
    pools = await custom("SpiderIPPools", stores.ippools.list())
    subnets = await custom("SpiderSubnets", stores.subnets.list())
    reserved = await custom("SpiderReservedIPs", stores.reserved_ips.list())
    endpoints = await custom("SpiderEndpoints", stores.endpoints.list())
    pods, nodes, statefulsets = await builtin("Pod"), await builtin("Node"), await builtin("StatefulSet")
    return ClusterState(
        pools=pools, subnets=subnets, reserved_ips=reserved,
        endpoints={pod_key(item): item for item in endpoints},
        pods={pod_key(item): item for item in pods},
        nodes={str(item["metadata"]["name"]): item for item in nodes},
        statefulsets={pod_key(item): item for item in statefulsets},
    )
