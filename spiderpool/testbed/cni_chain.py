"""A chained network configuration (a ``.conflist``) run as a container runtime runs it, with libcni's (v1.x) list
semantics.

- ADD runs the plugins in list order; each gets its own configuration with the list's ``name`` and ``cniVersion``
  and, from the second on, ``prevResult`` = the result of the plugin before it.  The first failure stops the chain
  (the runtime then DELs the whole list).  The last result is the list's result, which the runtime caches.
- DEL runs the plugins in reverse order and stops at the first failure (libcni's ``DelNetworkList`` returns it; the
  runtime retries the whole DEL later).  Each gets ``prevResult`` = the cached result of the list's ADD only when the
  list's ``cniVersion`` is 0.4.0 or later (cached results on DEL came with CNI 0.4.0) and there is a cached result.
- CHECK runs them in list order with the cached result as ``prevResult`` and stops at the first failure (libcni
  refuses CHECK below 0.4.0; this runner does not check the version).

Each plugin is exec'd from ``CNI_PATH`` by its ``type`` (in the node's namespace, as a runtime on that node would),
with the pod's CNI environment (:meth:`spiderpool.testbed.members.SimulatedPod.call`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spiderpool.testbed.cni_invocation import PluginRun, exec_plugin
from spiderpool.testbed.members import SimulatedPod


@dataclass(frozen=True, slots=True)
class ChainRun:
    """What one list operation did: every plugin's run (in execution order) and the list's result on success."""

    runs: tuple[tuple[str, PluginRun], ...]  # (plugin type, run)
    result: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return all(run.ok for _, run in self.runs)

    @property
    def seconds(self) -> float:
        """Wall time of the whole list: the sum of its plugins' execs (they run one after another)."""
        return sum(run.seconds for _, run in self.runs)

    def describe(self) -> str:
        return "; ".join(f"{kind}: {run.describe()}" for kind, run in self.runs if not run.ok) or "ok"


def plugin_configs(config_list: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each plugin's configuration as the runtime hands it over: the list's ``name`` and ``cniVersion`` injected."""
    plugins = config_list.get("plugins")
    if not isinstance(plugins, Sequence) or not plugins:
        raise ValueError(f"network {config_list.get('name')!r}: a conflist needs a non-empty 'plugins' list")
    common = {"cniVersion": config_list["cniVersion"], "name": config_list["name"]}
    return [{**plugin, **common} for plugin in plugins]


def _version(text: object) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        raise ValueError(f"cniVersion {text!r} is not a version (libcni refuses it too)") from None


def del_configs(configs: Sequence[Mapping[str, Any]], cached: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """What each DEL reads on stdin, in execution order (reversed): ``prevResult`` only from CNI 0.4.0 on."""
    with_result = cached is not None and all(_version(config["cniVersion"]) >= (0, 4, 0) for config in configs)
    return [{**config, "prevResult": dict(cached)} if with_result and cached is not None else dict(config)
            for config in reversed(configs)]


class CniChain:
    """Run ``config_list`` for pods of one runtime whose plugins live in ``cni_bin_dir`` (CNI_PATH)."""

    def __init__(self, config_list: Mapping[str, Any], *, cni_bin_dir: Path, extra_env: Mapping[str, str] | None = None
                 ) -> None:
        self.configs = plugin_configs(config_list)
        self.cni_bin_dir = cni_bin_dir
        self._extra_env = dict(extra_env or {})

    async def _exec(self, pod: SimulatedPod, command: str, config: Mapping[str, Any], ifname: str) -> PluginRun:
        call = pod.call(command, config, ifname=ifname, cni_path=self.cni_bin_dir, extra_env=self._extra_env)
        return await exec_plugin(self.cni_bin_dir / str(config["type"]), call, host_netns=pod.node.netns)

    async def add(self, pod: SimulatedPod, *, ifname: str = "eth0") -> ChainRun:
        runs: list[tuple[str, PluginRun]] = []
        previous: dict[str, Any] | None = None
        for config in self.configs:
            stdin = config if previous is None else {**config, "prevResult": previous}
            run = await self._exec(pod, "ADD", stdin, ifname)
            runs.append((str(config["type"]), run))
            if not run.ok:
                return ChainRun(tuple(runs), None)
            previous = run.json()
        return ChainRun(tuple(runs), previous)

    async def delete(self, pod: SimulatedPod, *, cached: Mapping[str, Any] | None, ifname: str = "eth0") -> ChainRun:
        """DEL in reverse order with the cached ADD result (``None``: the runtime has none, e.g. ADD failed), stopping
        at the first failure."""
        runs: list[tuple[str, PluginRun]] = []
        for stdin in del_configs(self.configs, cached):
            run = await self._exec(pod, "DEL", stdin, ifname)
            runs.append((str(stdin["type"]), run))
            if not run.ok:
                break  # libcni returns the first DEL error; the runtime retries the whole list
        return ChainRun(tuple(runs), None)

    async def check(self, pod: SimulatedPod, *, cached: Mapping[str, Any], ifname: str = "eth0") -> ChainRun:
        runs: list[tuple[str, PluginRun]] = []
        for config in self.configs:
            run = await self._exec(pod, "CHECK", {**config, "prevResult": dict(cached)}, ifname)
            runs.append((str(config["type"]), run))
            if not run.ok:
                break
        return ChainRun(tuple(runs), None)
