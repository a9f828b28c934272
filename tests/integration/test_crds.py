"""The project's CRDs on a real kube-apiserver: CRUD of every kind, schema validation, upstream manifests."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio.client.exceptions import ApiException
from upstream_examples import corpora

from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.crd_schema import GROUP, KINDS, VERSION, CrdKind

pytestmark = pytest.mark.integration

Body = dict[str, Any]
KIND_BY_NAME = {kind.kind: kind for kind in KINDS}
NAMESPACE = "default"


class Objects:
    """CustomObjectsApi for one kind, with plain dict bodies (the generated client is untyped, hence Any)."""

    def __init__(self, api: k8s_client.ApiClient, kind: CrdKind) -> None:
        self._api: Any = k8s_client.CustomObjectsApi(api)
        self.kind = kind

    def _where(self) -> tuple[Any, ...]:
        if self.kind.namespaced:
            return (GROUP, VERSION, NAMESPACE, self.kind.plural)
        return (GROUP, VERSION, self.kind.plural)

    def _call(self, verb: str) -> Any:
        scope = "namespaced" if self.kind.namespaced else "cluster"
        return getattr(self._api, verb.replace("*", scope))

    async def create(self, body: Body) -> Body:
        full = {"apiVersion": f"{GROUP}/{VERSION}", "kind": self.kind.kind, **body}
        created: Body = await self._call("create_*_custom_object")(*self._where(), full)
        return created

    async def get(self, name: str) -> Body:
        found: Body = await self._call("get_*_custom_object")(*self._where(), name)
        return found

    async def names(self) -> list[str]:
        listed = await self._call("list_*_custom_object")(*self._where())
        return [item["metadata"]["name"] for item in listed["items"]]

    async def replace(self, body: Body) -> Body:
        replaced: Body = await self._call("replace_*_custom_object")(*self._where(), body["metadata"]["name"], body)
        return replaced

    async def replace_status(self, body: Body) -> Body:
        name = body["metadata"]["name"]
        replaced: Body = await self._call("replace_*_custom_object_status")(*self._where(), name, body)
        return replaced

    async def delete(self, name: str) -> None:
        await self._call("delete_*_custom_object")(*self._where(), name)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# A valid object of every kind, with the field the update step changes: (body, path to change, new value).
VALID: dict[str, tuple[Body, tuple[str, ...], Any]] = {
    "SpiderIPPool": (
        {
            "spec": {
                "ipVersion": 4,
                "subnet": "10.10.0.0/24",
                "ips": ["10.10.0.10-10.10.0.20"],
                "excludeIPs": ["10.10.0.15"],
                "gateway": "10.10.0.1",
                "routes": [{"dst": "10.20.0.0/16", "gw": "10.10.0.1"}],
                "podAffinity": {"matchLabels": {"app": "demo"}},
                "nodeName": ["node-1"],
            }
        },
        ("spec", "ips"),
        ["10.10.0.10-10.10.0.30"],
    ),
    "SpiderSubnet": (
        {"spec": {"ipVersion": 6, "subnet": "fd00:10::/64", "ips": ["fd00:10::10-fd00:10::20"]}},
        ("spec", "gateway"),
        "fd00:10::1",
    ),
    "SpiderReservedIP": ({"spec": {"ipVersion": 4, "ips": ["10.10.0.15"]}}, ("spec", "ips"), ["10.10.0.16"]),
    "SpiderEndpoint": (
        {
            "status": {
                "current": {
                    "uid": "0b8c6a1e-0000-4000-8000-000000000001",
                    "node": "node-1",
                    "ips": [{"interface": "eth0", "ipv4": "10.10.0.10/24", "ipv4Pool": "pool-a"}],
                },
                "ownerControllerType": "Pod",
                "ownerControllerName": "demo",
            }
        },
        ("status", "ownerControllerType"),
        "StatefulSet",
    ),
    "SpiderMultusConfig": (
        {"spec": {"cniType": "macvlan", "macvlan": {"master": ["eth0"], "vlanID": 100, "ippools": {"ipv4": ["a"]}}}},
        ("spec", "macvlan", "vlanID"),
        200,
    ),
    "SpiderCoordinator": ({"spec": {"mode": "underlay", "podCIDRType": "none"}}, ("spec", "hostRuleTable"), 600),
}

# What the schema fills in when a field is absent (upstream's defaults).
DEFAULTS: dict[str, list[tuple[tuple[Any, ...], Any]]] = {
    "SpiderIPPool": [(("spec", "default"), False), (("spec", "disable"), False)],
    "SpiderEndpoint": [(("status", "current", "ips", 0, "vlan"), 0)],
    "SpiderMultusConfig": [
        (("spec", "enableCoordinator"), True),
        (("spec", "disableIPAM"), False),
        (("spec", "macvlan", "ippools", "matchMasterSubnet"), False),
    ],
    "SpiderCoordinator": [(("spec", "tunePodRoutes"), True), (("spec", "hostRuleTable"), 500)],
}


def dig(body: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        body = body[step]
    return body


def put(body: Body, path: tuple[str, ...], value: Any) -> None:
    dig(body, path[:-1])[path[-1]] = value


@pytest.mark.parametrize("kind_name", sorted(VALID))
async def test_crud_of_every_kind(api: k8s_client.ApiClient, kind_name: str) -> None:
    """CR01: CRUD of every kind."""
    objects = Objects(api, KIND_BY_NAME[kind_name])
    template, change_path, new_value = VALID[kind_name]
    name = unique(objects.kind.short_name)
    created = await objects.create({"metadata": {"name": name}, **copy.deepcopy(template)})
    for path, expected in DEFAULTS.get(kind_name, []):
        assert dig(created, path) == expected, f"default of {'.'.join(map(str, path))}"
    fetched = await objects.get(name)
    assert fetched["metadata"]["uid"] == created["metadata"]["uid"]
    assert name in await objects.names()
    put(fetched, change_path, new_value)
    replaced = await objects.replace(fetched)
    assert dig(replaced, change_path) == new_value
    assert dig(await objects.get(name), change_path) == new_value
    await objects.delete(name)
    with pytest.raises(ApiException) as gone:
        await objects.get(name)
    assert gone.value.status == 404


async def test_ippool_status_subresource_holds_the_upstream_format(api: k8s_client.ApiClient) -> None:
    """CR02: IPPool status subresource holds the upstream format."""
    pools = Objects(api, KIND_BY_NAME["SpiderIPPool"])
    name = unique("status")
    created = await pools.create({"metadata": {"name": name}, "spec": {"subnet": "10.30.0.0/24", "ips": ["10.30.0.5"]}})
    allocated = json.dumps({"10.30.0.5": {"pod": "default/demo", "podUid": "u-1"}}, sort_keys=True)
    status = {"allocatedIPs": allocated, "allocatedIPCount": 1, "totalIPCount": 1}
    written = await pools.replace_status({**created, "status": status})
    assert written["status"] == status
    assert written["metadata"]["generation"] == created["metadata"]["generation"], "a status write is not a spec change"

    # The main resource ignores status, and the status endpoint ignores spec: each writer owns its half.
    await pools.replace(
        {**written, "status": {"allocatedIPCount": 0}, "spec": {**written["spec"], "gateway": "10.30.0.1"}}
    )
    after = await pools.get(name)
    assert after["status"] == status
    assert after["spec"]["gateway"] == "10.30.0.1"
    await pools.replace_status({**after, "spec": {**after["spec"], "gateway": "10.30.0.2"}})
    assert (await pools.get(name))["spec"]["gateway"] == "10.30.0.1"

    stale = {**created, "status": status}  # carries the first resourceVersion: compare-and-swap must refuse it
    with pytest.raises(ApiException) as conflict:
        await pools.replace_status(stale)
    assert conflict.value.status == 409
    await pools.delete(name)


def _without(path: tuple[Any, ...]) -> Callable[[Body], None]:
    return lambda body: dig(body, path[:-1]).pop(path[-1])


def _setting(path: tuple[Any, ...], value: Any) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        dig(body, path[:-1])[path[-1]] = value

    return change


# (kind, how to break the valid object, what the apiserver's message must name: the field and the offending value)
INVALID = [
    ("SpiderIPPool", _setting(("spec", "ipVersion"), 5), ["spec.ipVersion", "Unsupported value: 5"]),
    ("SpiderIPPool", _without(("spec", "subnet")), ["spec.subnet", "Required value"]),
    ("SpiderIPPool", _without(("spec", "routes", 0, "gw")), ["spec.routes[0].gw", "Required value"]),
    ("SpiderIPPool", _setting(("spec", "ips"), "10.10.0.10"), ["spec.ips", "must be of type array"]),
    ("SpiderIPPool", _setting(("spec", "default"), "yes"), ["spec.default", "must be of type boolean"]),
    ("SpiderIPPool", _setting(("spec", "subnet"), 24), ["spec.subnet", "must be of type string"]),
    ("SpiderIPPool", _setting(("spec", "podAffinity"), {"matchExpressions": [{"key": "a"}]}),
     ["spec.podAffinity.matchExpressions[0].operator", "Required value"]),
    ("SpiderSubnet", _setting(("spec", "ipVersion"), 46), ["spec.ipVersion", "Unsupported value: 46"]),
    ("SpiderSubnet", _without(("spec", "subnet")), ["spec.subnet", "Required value"]),
    ("SpiderReservedIP", _setting(("spec", "ipVersion"), "4"), ["spec.ipVersion", "must be of type integer"]),
    ("SpiderEndpoint", _setting(("status", "current", "ips", 0, "vlan"), 5000), ["status.current.ips[0].vlan", "5000"]),
    ("SpiderEndpoint", _without(("status", "current", "uid")), ["status.current.uid", "Required value"]),
    ("SpiderMultusConfig", _setting(("spec", "cniType"), "bridge"), ["spec.cniType", 'Unsupported value: "bridge"']),
    ("SpiderMultusConfig", _without(("spec", "macvlan", "master")), ["spec.macvlan.master", "Required value"]),
    ("SpiderMultusConfig", _setting(("spec", "macvlan", "vlanID"), 4095), ["spec.macvlan.vlanID", "4095"]),
    ("SpiderMultusConfig", _setting(("spec", "macvlan", "bond"), {"name": "bond0", "mode": 7}),
     ["spec.macvlan.bond.mode", "7"]),
    ("SpiderCoordinator", _setting(("spec", "mode"), "fast"), ["spec.mode", 'Unsupported value: "fast"']),
    ("SpiderCoordinator", _setting(("spec", "hostRuleTable"), "500"),
     ["spec.hostRuleTable", "must be of type integer"]),
]  # fmt: skip


@pytest.mark.parametrize(("kind_name", "break_it", "named"), INVALID, ids=[f"{k}-{n[0]}" for k, _, n in INVALID])
async def test_invalid_objects_are_rejected_naming_the_field(
    api: k8s_client.ApiClient, kind_name: str, break_it: Callable[[Body], None], named: list[str]
) -> None:
    """CR03: Invalid objects are rejected naming the field."""
    body = {"metadata": {"name": unique("invalid")}, **copy.deepcopy(VALID[kind_name][0])}
    break_it(body)
    with pytest.raises(ApiException) as rejected:
        await Objects(api, KIND_BY_NAME[kind_name]).create(body)
    assert rejected.value.status == 422
    message = json.loads(rejected.value.body or b"{}")["message"]
    for fragment in named:
        assert fragment in message


def test_discovery_serves_upstream_names(control_plane: ControlPlane) -> None:
    """CR04: Discovery serves upstream names."""
    listed = control_plane.sync_api().get(f"/apis/{GROUP}/{VERSION}")["resources"]
    by_name = {resource["name"]: resource for resource in listed}
    for kind in KINDS:
        resource = by_name[kind.plural]
        assert (resource["kind"], resource["namespaced"]) == (kind.kind, kind.namespaced)
        assert resource["shortNames"] == [kind.short_name]
        assert resource["categories"] == ["spiderpool"]
        assert (f"{kind.plural}/status" in by_name) is kind.status_subresource


async def test_printer_columns_render_in_table_output(control_plane: ControlPlane, api: k8s_client.ApiClient) -> None:
    """CR05: Printer columns render in table output."""
    name = unique("table")
    pools = Objects(api, KIND_BY_NAME["SpiderIPPool"])
    await pools.create({"metadata": {"name": name}, "spec": {"ipVersion": 4, "subnet": "10.40.0.0/24"}})
    table = control_plane.sync_api().request(
        "GET", f"/apis/{GROUP}/{VERSION}/spiderippools/{name}", accept="application/json;as=Table;v=v1;g=meta.k8s.io"
    )
    columns = [column["name"] for column in table["columnDefinitions"]]
    assert columns[:7] == ["Name", "VERSION", "SUBNET", "ALLOCATED-IP-COUNT", "TOTAL-IP-COUNT", "DEFAULT", "DISABLE"]
    cells = dict(zip(columns, table["rows"][0]["cells"], strict=True))
    assert (cells["Name"], cells["VERSION"], cells["SUBNET"], cells["DEFAULT"]) == (name, "4", "10.40.0.0/24", False)
    await pools.delete(name)


# --- manifests in upstream's formats: the project's own, and upstream's examples when present ---------------------

_ADDRESS_KINDS = ("SpiderIPPool", "SpiderSubnet", "SpiderReservedIP")
# Fields upstream v1.2.1 removed from its CRDs but its older example manifests still carry: pruned, never rejected.
_REMOVED_UPSTREAM = {("SpiderSubnet", "vlan"), ("SpiderIPPool", "vlan")}


def _address_manifests() -> list[Any]:
    """Every pool, subnet and reserved-IP object of both corpora (an absent upstream corpus: one skipped case)."""
    params: list[Any] = []
    for corpus in corpora():
        if corpus.directory is None:
            params.append(pytest.param("", {}, id=corpus.name, marks=pytest.mark.skip(reason=corpus.absent)))
            continue
        for path in corpus.files():
            for index, document in enumerate(corpus.documents(path.name)):
                if document.get("kind") in _ADDRESS_KINDS:
                    source = f"{corpus.name}:{path.stem}#{index}"
                    params.append(pytest.param(source, document, id=source))
    return params


ADDRESS_MANIFESTS = _address_manifests()


@pytest.mark.parametrize(("source", "manifest"), ADDRESS_MANIFESTS)
async def test_upstream_format_manifest_applies_unchanged(
    api: k8s_client.ApiClient, source: str, manifest: Body
) -> None:
    """CR06: Upstream format manifest applies unchanged."""
    objects = Objects(api, KIND_BY_NAME[manifest["kind"]])
    name = manifest["metadata"]["name"]
    created = await objects.create(copy.deepcopy(manifest))
    try:
        for field, value in manifest["spec"].items():
            if (manifest["kind"], field) in _REMOVED_UPSTREAM:
                assert field not in created["spec"], f"{source}: removed field {field} must be pruned"
            else:
                assert created["spec"][field] == value, f"{source}: spec.{field} changed on the way in"
        assert created["metadata"].get("labels", {}) == manifest["metadata"].get("labels", {})
    finally:
        await objects.delete(name)
