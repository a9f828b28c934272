"""The chart rendered with default and non-default values, applied to the real API server: CRDs and RBAC for real
(server-side apply), everything else as a server-side dry run; then the RBAC is checked to grant each component
what its code calls and nothing beyond it (SubjectAccessReview).

The Prometheus operator's and cert-manager's kinds get minimal CRDs (any field accepted) so the API server can
dry-run them: that checks the objects' kind, scope and metadata, not those projects' schemas.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kubernetes_asyncio.client import ApiClient

from spiderpool.devcluster.binaries import BuildError
from spiderpool.devcluster.helm import ensure_helm, render_chart
from spiderpool.k8s.api_requests import request_json

pytestmark = pytest.mark.integration

CHART = Path(__file__).resolve().parents[2] / "charts" / "spiderpool"
APPLIED_FOR_REAL = frozenset({"CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                              "Role", "RoleBinding"})
THIRD_PARTY_KINDS = (("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
                     ("monitoring.coreos.com", "PrometheusRule", "prometheusrules"),
                     ("cert-manager.io", "Certificate", "certificates"),
                     ("cert-manager.io", "Issuer", "issuers"))
CUSTOM_VALUES = {
    "clusterDefaultPool": {"installIPv4IPPool": True, "installIPv6IPPool": True, "ipv4Subnet": "172.30.0.0/16",
                           "ipv4IPRanges": ["172.30.40.10-172.30.40.200"], "ipv4Gateway": "172.30.0.1",
                           "ipv4IPPoolName": "chart-v4-pool", "ipv4SubnetName": "chart-v4-subnet",
                           "ipv6Subnet": "fd00:30::/64", "ipv6IPRanges": ["fd00:30::10-fd00:30::ff"],
                           "ipv6IPPoolName": "chart-v6-pool", "ipv6SubnetName": "chart-v6-subnet"},
    "spiderpoolController": {"replicas": 2, "tls": {"method": "certmanager"},
                             "prometheus": {"serviceMonitor": {"install": True}}},
    "spiderpoolAgent": {"prometheus": {"serviceMonitor": {"install": True}}},
    "prometheusRule": {"install": True},
    "grafanaDashboard": {"install": True},
}


def _third_party_crd(group: str, kind: str, plural: str) -> dict[str, Any]:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"kind": kind, "plural": plural, "listKind": f"{kind}List"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema}}]}}


class Applier:
    """Server-side apply of any manifest, its path found through the API server's discovery."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self._resources: dict[str, dict[str, tuple[str, bool]]] = {}

    async def _resource(self, api_version: str, kind: str) -> tuple[str, str, bool]:
        """(group-version prefix, plural, namespaced) of ``kind``."""
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if api_version not in self._resources:
            found = await request_json(self.api, "GET", prefix, what=f"discover {api_version}")
            self._resources[api_version] = {r["kind"]: (r["name"], r["namespaced"])
                                            for r in found["resources"] if "/" not in r["name"]}
        plural, namespaced = self._resources[api_version][kind]
        return prefix, plural, namespaced

    async def path(self, body: dict[str, Any], namespace: str) -> str:
        prefix, plural, namespaced = await self._resource(body["apiVersion"], body["kind"])
        scope = f"/namespaces/{body['metadata'].get('namespace', namespace)}" if namespaced else ""
        return f"{prefix}{scope}/{plural}/{body['metadata']['name']}"

    async def apply(self, body: dict[str, Any], *, namespace: str, dry_run: bool) -> dict[str, Any]:
        query = [("fieldManager", "spiderpool-chart-test"), ("force", "true")]
        query += [("dryRun", "All")] if dry_run else []
        response = await self.api.call_api(
            await self.path(body, namespace), "PATCH", query_params=query,
            header_params={"Accept": "application/json", "Content-Type": "application/apply-patch+yaml"},
            body=body, auth_settings=["BearerToken"], _preload_content=False,
            _request_timeout=30)
        raw = await response.read()
        assert 200 <= response.status < 300, f"{body['kind']} {body['metadata']['name']}: {raw.decode()[:600]}"
        return dict(orjson.loads(raw))

    async def delete(self, body: dict[str, Any], *, namespace: str) -> None:
        response = await self.api.call_api(await self.path(body, namespace), "DELETE", auth_settings=["BearerToken"],
                                           _preload_content=False, _request_timeout=30)
        await response.read()


async def _wait_established(api: ApiClient, name: str) -> None:
    for _ in range(100):
        crd = await request_json(api, "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
                                 what=f"get CRD {name}")
        conditions = crd.get("status", {}).get("conditions", [])
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"CRD {name} not Established after 10 s")


@pytest.fixture
async def applier(api: ApiClient) -> Applier:
    applier = Applier(api)
    crds = [_third_party_crd(*kind) for kind in THIRD_PARTY_KINDS]
    for crd in crds:
        await applier.apply(crd, namespace="", dry_run=False)
    for crd in crds:
        await _wait_established(api, crd["metadata"]["name"])
    # The minimal CRDs stay for the session: deleting one is asynchronous, and the next test would re-apply it
    # while it is still terminating. No other test uses these kinds.
    return applier


@pytest.fixture(scope="module")
def helm() -> Path:
    try:
        return ensure_helm()
    except BuildError as error:
        pytest.fail(f"helm could not be found or built: {error}", pytrace=False)


async def _install(applier: Applier, objects: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    await applier.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
                        namespace="", dry_run=False)
    applied = []
    # CRDs and RBAC first, for real; then the rest as a dry run, which needs the CRDs in place.
    for body in sorted(objects, key=lambda o: o["kind"] not in APPLIED_FOR_REAL):
        applied.append(await applier.apply(body, namespace=namespace, dry_run=body["kind"] not in APPLIED_FOR_REAL))
    return applied


async def _uninstall(applier: Applier, objects: list[dict[str, Any]], namespace: str) -> None:
    for body in objects:
        if body["kind"] in APPLIED_FOR_REAL - {"CustomResourceDefinition"}:
            await applier.delete(body, namespace=namespace)
    await applier.delete({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, namespace="")


async def _allowed(api: ApiClient, account: str, *, verb: str, resource: str, group: str = "",
                   subresource: str = "", namespace: str = "") -> bool:
    namespace_of_account, name = account.split("/")
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": f"system:serviceaccount:{namespace_of_account}:{name}",
                       "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace_of_account}"],
                       "resourceAttributes": {"verb": verb, "group": group, "resource": resource,
                                              "subresource": subresource, "namespace": namespace}}}
    answer = await request_json(api, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                                what="SubjectAccessReview", body=review)
    return bool(answer["status"].get("allowed", False))


@pytest.mark.parametrize("values", [None, CUSTOM_VALUES], ids=["default-values", "custom-values"])
async def test_chart_applies_to_the_api_server(applier: Applier, helm: Path, tmp_path: Path,
                                               values: dict[str, Any] | None) -> None:
    """CA01: Chart applies to the API server."""
    namespace = "chart-default" if values is None else "chart-custom"
    files = []
    if values is not None:
        files.append(tmp_path / "values.yaml")
        files[0].write_text(yaml.safe_dump(values))
    objects = render_chart(CHART, release="spiderpool", namespace=namespace, values=files, helm=helm)
    try:
        applied = await _install(applier, objects, namespace)
        assert sorted((o["kind"], o["metadata"]["name"]) for o in applied) == \
            sorted((o["kind"], o["metadata"]["name"]) for o in objects)
        for kind in {o["kind"] for o in objects} - APPLIED_FOR_REAL:
            assert any(o["kind"] == kind for o in applied), kind
    finally:
        await _uninstall(applier, objects, namespace)


async def test_rbac_grants_each_component_only_what_it_calls(applier: Applier, helm: Path) -> None:
    """CA02: Rbac grants each component only what it calls."""
    namespace = "chart-rbac"
    objects = render_chart(CHART, release="spiderpool", namespace=namespace, helm=helm)
    api = applier.api
    agent, controller = f"{namespace}/spiderpool-agent", f"{namespace}/spiderpool-controller"
    spider = "spiderpool.spidernet.io"
    try:
        await _install(applier, [o for o in objects if o["kind"] in APPLIED_FOR_REAL - {"CustomResourceDefinition"}],
                       namespace)
        assert await _allowed(api, agent, verb="update", group=spider, resource="spiderippools", subresource="status")
        assert await _allowed(api, agent, verb="create", group=spider, resource="spiderendpoints", namespace="ns1")
        assert await _allowed(api, agent, verb="watch", group="batch", resource="jobs")
        assert await _allowed(api, agent, verb="create", resource="events", namespace="default")  # pool overlaps
        assert not await _allowed(api, agent, verb="delete", resource="events", namespace="default")
        assert not await _allowed(api, agent, verb="update", group=spider, resource="spiderippools")
        assert not await _allowed(api, agent, verb="delete", resource="pods", namespace="ns1")
        assert not await _allowed(api, agent, verb="get", resource="secrets", namespace=namespace)
        assert await _allowed(api, controller, verb="create", group=spider, resource="spiderippools")
        assert await _allowed(api, controller, verb="update", group=spider, resource="spidersubnets",
                              subresource="status")
        assert await _allowed(api, controller, verb="update", group="coordination.k8s.io", resource="leases",
                              namespace=namespace)
        assert not await _allowed(api, controller, verb="update", group="coordination.k8s.io", resource="leases",
                                  namespace="kube-node-lease")
        assert not await _allowed(api, controller, verb="create", group="admissionregistration.k8s.io",
                                  resource="mutatingwebhookconfigurations")
        assert not await _allowed(api, controller, verb="create", resource="pods", namespace="ns1")
        # the defaults the controller creates from the chart's values once it leads (the real node found it missing)
        assert await _allowed(api, controller, verb="create", group=spider, resource="spidercoordinators")
        assert await _allowed(api, controller, verb="create", group=spider, resource="spidermultusconfigs",
                              namespace=namespace)
        assert not await _allowed(api, controller, verb="delete", group=spider, resource="spidercoordinators")
    finally:
        await _uninstall(applier, objects, namespace)
