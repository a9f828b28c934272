"""The testbed's simulated nodes and pods, and how a pod looks to a CNI plugin (container id, netns, CNI_ARGS)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spiderpool.k8s.bodies import Pod
from spiderpool.testbed.agent_process import AgentProcess
from spiderpool.testbed.cni_invocation import CniCall

# The sandbox image is never pulled (no kubelet); the pod only needs a valid spec.
SANDBOX_IMAGE = "registry.k8s.io/pause:3.10"


@dataclass(slots=True)
class SimulatedNode:
    name: str
    netns: str
    socket_path: Path
    masters: tuple[str, ...]
    agent: AgentProcess | None = None


@dataclass(frozen=True, slots=True)
class NicAttachment:
    """One interface a plugin added to a pod: what to hand to DEL when the pod goes away."""

    config: Mapping[str, Any]
    ifname: str
    direct_ipam: bool  # added by exec'ing the IPAM plugin itself rather than the main plugin
    extra_env: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SimulatedPod:
    name: str
    namespace: str
    uid: str
    node: SimulatedNode
    netns: str
    container_id: str = field(default_factory=lambda: secrets.token_hex(32))
    attachments: list[NicAttachment] = field(default_factory=list)

    @property
    def key(self) -> str:
        """``namespace/name``, the form of a pool record's ``pod`` field."""
        return f"{self.namespace}/{self.name}"

    def cni_args(self) -> str:
        """CNI_ARGS as kubelet/CRI send them."""
        return (
            f"IgnoreUnknown=1;K8S_POD_NAMESPACE={self.namespace};K8S_POD_NAME={self.name};"
            f"K8S_POD_INFRA_CONTAINER_ID={self.container_id};K8S_POD_UID={self.uid}"
        )

    def call(
        self,
        command: str,
        config: Mapping[str, Any],
        *,
        ifname: str,
        cni_path: Path,
        extra_env: Mapping[str, str] | None = None,
    ) -> CniCall:
        return CniCall(
            command=command,
            config=config,
            container_id=self.container_id,
            netns=self.netns,
            ifname=ifname,
            args=self.cni_args(),
            cni_path=str(cni_path),
            extra_env=dict(extra_env or {}),
        )


def pod_body(
    *,
    name: str,
    namespace: str,
    node_name: str,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    owner_references: list[dict[str, Any]] | None = None,
) -> Pod:
    """A minimal pod bound to ``node_name`` at creation."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    if owner_references:
        metadata["ownerReferences"] = owner_references
    spec = {"nodeName": node_name, "containers": [{"name": "sandbox", "image": SANDBOX_IMAGE}]}
    return {"metadata": metadata, "spec": spec}  # type: ignore[typeddict-item]  # containers: beyond the typed subset
