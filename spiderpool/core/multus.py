"""Which Multus network (NetworkAttachmentDefinition ``namespace/name``) a pod NIC is attached to.

A pool's ``spec.multusName`` only admits a NIC attached to one of the listed networks. As upstream: the first NIC
(``eth0``, or ``"0"`` for unnamed multi-NIC pods) uses ``v1.multus-cni.io/default-network``, else the cluster network
(Multus ``clusterNetwork``), whose namespace defaults to Spiderpool's own; NIC ``netN`` (or ``"N"``) is the item of
``k8s.v1.cni.cncf.io/networks`` that requests it by name or, when unnamed, the N-th item, with the pod's namespace
as the default. Both annotation formats of Multus are read: a JSON list and ``ns/name@ifname`` comma lists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import orjson

from spiderpool.core.errors import AnnotationError

DEFAULT_NETWORK: Final = "v1.multus-cni.io/default-network"
NETWORKS: Final = "k8s.v1.cni.cncf.io/networks"
FIRST_NICS: Final = ("eth0", "0")

_ITEM: Final = re.compile(r"[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?")


@dataclass(frozen=True, slots=True)
class NetworkSelection:
    namespace: str
    name: str
    interface: str = ""

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}/{self.name}"


def parse_network_object_name(text: str, *, annotation: str) -> NetworkSelection:
    """Multus ``parsePodNetworkObjectName``: ``[namespace/]name[@interface]`` (namespace may be empty)."""
    slash_items = text.split("/")
    if len(slash_items) > 2:
        raise AnnotationError(annotation=annotation, value=text, reason="invalid network object (failed at '/')")
    namespace = slash_items[0].strip() if len(slash_items) == 2 else ""
    at_items = slash_items[-1].split("@")
    if len(at_items) > 2:
        raise AnnotationError(annotation=annotation, value=text, reason="invalid network object (failed at '@')")
    name = at_items[0].strip()
    interface = at_items[1].strip() if len(at_items) == 2 else ""
    for item in (namespace, name, interface):
        if item and not _ITEM.fullmatch(item):
            raise AnnotationError(annotation=annotation, value=text,
                                  reason=f"{item!r} must be alphanumeric or '-', starting and ending alphanumeric")
    if not name:
        raise AnnotationError(annotation=annotation, value=text, reason="the network name is empty")
    return NetworkSelection(namespace=namespace, name=name, interface=interface)


def parse_network_selections(value: str, *, pod_namespace: str) -> list[NetworkSelection]:
    """Multus ``ParsePodNetworkAnnotation`` of ``k8s.v1.cni.cncf.io/networks``, namespaces defaulted."""
    if any(char in value for char in '[{"'):
        selections = _json_selections(value)
    else:
        selections = [parse_network_object_name(item.strip(), annotation=NETWORKS) for item in value.split(",")]
    return [
        NetworkSelection(namespace=item.namespace or pod_namespace, name=item.name, interface=item.interface)
        for item in selections
    ]


def _json_selections(value: str) -> list[NetworkSelection]:
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise AnnotationError(annotation=NETWORKS, value=value, reason=f"not valid JSON: {error}") from None
    if not isinstance(raw, list):
        raise AnnotationError(annotation=NETWORKS, value=value, reason="must be a JSON list of network selections")
    selections = []
    for index, item in enumerate(raw):
        fields = {key.lower(): field for key, field in item.items()} if isinstance(item, dict) else None
        if fields is None or not isinstance(fields.get("name"), str) or not fields["name"]:
            raise AnnotationError(annotation=NETWORKS, value=value, reason=f"item {index} needs a string name")
        namespace, interface = fields.get("namespace") or "", fields.get("interface") or ""
        if not isinstance(namespace, str) or not isinstance(interface, str):
            raise AnnotationError(annotation=NETWORKS, value=value,
                                  reason=f"item {index}: namespace and interface must be strings")
        selections.append(NetworkSelection(namespace=namespace, name=fields["name"], interface=interface))
    return selections


def multus_network_for_nic(
    *,
    nic: str,
    pod_namespace: str,
    annotations: Mapping[str, str],
    cluster_network: str | None,
    agent_namespace: str,
) -> str:
    """``namespace/name`` of the network attached to ``nic``; AnnotationError (or ValueError) when none is."""
    if nic in FIRST_NICS:
        text = annotations.get(DEFAULT_NETWORK) or cluster_network
        if not text:
            raise ValueError(f"no {DEFAULT_NETWORK} annotation and no Multus cluster network is configured")
        selection = parse_network_object_name(text, annotation=DEFAULT_NETWORK)
        # Multus looks the default network up in its own namespace when none is written.
        return f"{selection.namespace or agent_namespace}/{selection.name}"
    selections = parse_network_selections(annotations.get(NETWORKS, ""), pod_namespace=pod_namespace) \
        if annotations.get(NETWORKS) else []
    for index, selection in enumerate(selections):
        requested = selection.interface or f"net{index + 1}"
        if nic in (requested, str(index + 1)):
            return selection.qualified_name
    raise ValueError(f"no Multus network in the {NETWORKS} annotation is attached to interface {nic}")


def qualify_multus_name(name: str, *, agent_namespace: str) -> str:
    """A pool's ``spec.multusName`` item as ``namespace/name`` (no namespace = Spiderpool's own)."""
    return name if "/" in name else f"{agent_namespace}/{name}"
