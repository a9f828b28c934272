"""Reads of the cluster objects the SpiderCoordinator status is computed from (kubeadm-config, static control-plane
pods, ServiceCIDRs, Calico IPPools, Cilium's ConfigMap and CiliumPodIPPools). A kind the API server does not serve
comes back as None."""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.api_errors import NotFound
from spiderpool.k8s.api_requests import request_json


class ClusterObjects:
    def __init__(self, api: ApiClient, *, request_timeout: float = 10.0) -> None:
        self._api = api
        self._timeout = request_timeout

    async def _get(self, path: str, what: str) -> dict[str, Any] | None:
        try:
            return await request_json(self._api, "GET", path, what=what, timeout=self._timeout)
        except NotFound:
            return None

    async def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        path = f"/api/v1/namespaces/{namespace}/configmaps/{name}"
        found = await self._get(path, f"get ConfigMap {namespace}/{name}")
        return None if found is None else dict(found.get("data") or {})

    async def pods_labelled(self, selector: str) -> list[dict[str, Any]]:
        found = await self._get(f"/api/v1/pods?labelSelector={selector}", f"list pods {selector}")
        return list((found or {}).get("items") or [])

    async def _items(self, path: str, what: str) -> list[dict[str, Any]] | None:
        found = await self._get(path, what)
        return None if found is None else list(found.get("items") or [])

    async def service_cidrs(self) -> list[dict[str, Any]] | None:
        return await self._items("/apis/networking.k8s.io/v1/servicecidrs", "list ServiceCIDRs")

    async def calico_ippools(self) -> list[dict[str, Any]] | None:
        return await self._items("/apis/crd.projectcalico.org/v1/ippools", "list Calico IPPools")

    async def cilium_pod_ippools(self) -> list[dict[str, Any]] | None:
        return await self._items("/apis/cilium.io/v2alpha1/ciliumpodippools", "list CiliumPodIPPools")
