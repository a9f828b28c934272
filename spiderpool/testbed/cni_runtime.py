"""The container runtime's side of CNI for simulated pods: ADD, DEL, CHECK, GC, STATUS with the right environment.

A main plugin (``macvlan``) runs inside the pod's node namespace, where its master interface is, and delegates to the
IPAM plugin named in ``ipam.type`` by exec'ing it from CNI_PATH with the same stdin.  ``direct_ipam=True`` skips the
main plugin and execs the IPAM plugin itself, exactly as macvlan would (the bulk path of the scale tests and the
only way to reach GC and STATUS at CNI 1.1.0, which Debian's macvlan does not speak).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from spiderpool.testbed.cni_invocation import CniCall, PluginRun, exec_plugin
from spiderpool.testbed.members import NicAttachment, SimulatedPod


class CniRuntime:
    def __init__(self, *, cni_bin_dir: Path) -> None:
        self.cni_bin_dir = cni_bin_dir

    def plugin(self, name: str) -> Path:
        return self.cni_bin_dir / name

    def _target(self, pod: SimulatedPod, config: Mapping[str, Any], *, direct_ipam: bool) -> tuple[Path, str | None]:
        """The binary to exec and the namespace to exec it in."""
        if direct_ipam:
            return self.plugin(str(config["ipam"]["type"])), None
        return self.plugin(str(config["type"])), pod.node.netns

    async def pod_command(
        self,
        pod: SimulatedPod,
        command: str,
        config: Mapping[str, Any],
        *,
        ifname: str,
        direct_ipam: bool = False,
        extra_env: Mapping[str, str] | None = None,
    ) -> PluginRun:
        """Any command for one pod and interface, with CNI_CONTAINERID/NETNS/IFNAME/ARGS/PATH set as kubelet does
        (plus ``extra_env``, e.g. the executable's SPIDERPOOL_SOCKET to run an unchanged upstream configuration)."""
        binary, host_netns = self._target(pod, config, direct_ipam=direct_ipam)
        call = pod.call(command, config, ifname=ifname, cni_path=self.cni_bin_dir, extra_env=extra_env)
        return await exec_plugin(binary, call, host_netns=host_netns)

    async def add(
        self,
        pod: SimulatedPod,
        config: Mapping[str, Any],
        *,
        ifname: str = "eth0",
        direct_ipam: bool = False,
        extra_env: Mapping[str, str] | None = None,
    ) -> PluginRun:
        """ADD; a success is remembered on the pod so that removing the pod DELs it."""
        run = await self.pod_command(pod, "ADD", config, ifname=ifname, direct_ipam=direct_ipam, extra_env=extra_env)
        if run.ok:
            attachment = NicAttachment(config, ifname, direct_ipam=direct_ipam, extra_env=dict(extra_env or {}))
            pod.attachments.append(attachment)
        return run

    async def delete(
        self,
        pod: SimulatedPod,
        config: Mapping[str, Any],
        *,
        ifname: str = "eth0",
        direct_ipam: bool = False,
        extra_env: Mapping[str, str] | None = None,
    ) -> PluginRun:
        run = await self.pod_command(pod, "DEL", config, ifname=ifname, direct_ipam=direct_ipam, extra_env=extra_env)
        if run.ok:
            pod.attachments[:] = [a for a in pod.attachments if (a.ifname, a.direct_ipam) != (ifname, direct_ipam)]
        return run

    async def delete_all(self, pod: SimulatedPod) -> list[PluginRun]:
        """DEL every remembered attachment, the last added first (a runtime tears a pod down in reverse)."""
        return [
            await self.delete(pod, a.config, ifname=a.ifname, direct_ipam=a.direct_ipam, extra_env=a.extra_env)
            for a in reversed(list(pod.attachments))
        ]

    async def check(
        self,
        pod: SimulatedPod,
        config: Mapping[str, Any],
        *,
        prev_result: Mapping[str, Any],
        ifname: str = "eth0",
        direct_ipam: bool = False,
    ) -> PluginRun:
        """CHECK with ``prevResult`` injected, as a runtime does with the result it cached from ADD."""
        checked = {**config, "prevResult": dict(prev_result)}
        return await self.pod_command(pod, "CHECK", checked, ifname=ifname, direct_ipam=direct_ipam)

    async def gc(self, config: Mapping[str, Any], *, valid: Sequence[SimulatedPod | tuple[str, str]]) -> PluginRun:
        """GC (CNI 1.1.0) of the IPAM plugin: every attachment of ``config``'s network not in ``valid`` is released.

        ``valid`` lists pods (each with its interfaces) or ``(container id, ifname)`` pairs.
        """
        attachments: list[dict[str, str]] = []
        for entry in valid:
            if isinstance(entry, SimulatedPod):
                attachments += [{"containerID": entry.container_id, "ifname": a.ifname} for a in entry.attachments]
            else:
                attachments.append({"containerID": entry[0], "ifname": entry[1]})
        stdin = {**config, "cniVersion": "1.1.0", "cni.dev/valid-attachments": attachments}
        call = CniCall(command="GC", config=stdin, cni_path=str(self.cni_bin_dir))
        return await exec_plugin(self.plugin(str(config["ipam"]["type"])), call)

    async def status(self, config: Mapping[str, Any]) -> PluginRun:
        """STATUS (CNI 1.1.0) of the IPAM plugin: exit 0 when ready for ADD, else an error (code 50 or 51)."""
        call = CniCall(command="STATUS", config={**config, "cniVersion": "1.1.0"}, cni_path=str(self.cni_bin_dir))
        return await exec_plugin(self.plugin(str(config["ipam"]["type"])), call)

    async def version(self, plugin: str, *, cni_version: str = "1.1.0") -> PluginRun:
        call = CniCall(command="VERSION", config={"cniVersion": cni_version})
        return await exec_plugin(self.plugin(plugin), call)
