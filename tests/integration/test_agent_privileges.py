"""The agent with the privileges the chart leaves it: root, but no capability in any set and ``no_new_privs``, what
``capabilities: {drop: [ALL]}`` and ``allowPrivilegeEscalation: false`` give a container (``setpriv`` of util-linux
does the same to a process).  Case ID H14 in docs/e2e-cases.md.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

import orjson
import pytest
from agent_support import NAMESPACE, Cluster, span
from cni_process import exec_plugin

from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.devcluster.processes import ManagedProcess
from spiderpool.testbed.agent_process import HEALTH_PATH, AgentOptions, unix_http_status

pytestmark = pytest.mark.integration

NO_CAPABILITIES: Final = ("--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all", "--no-new-privs")


def setpriv() -> list[str]:
    path = shutil.which("setpriv")
    if path is None:
        pytest.fail("setpriv (util-linux) is needed to drop every capability", pytrace=False)
    return [path, *NO_CAPABILITIES, "--"]


def privileges(pid: int) -> dict[str, int]:
    """The capability sets and the no_new_privs flag of a process, from /proc."""
    fields = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    parsed = {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}
    return {key: int(parsed[key], 16 if key.startswith("Cap") else 10) for key in fields}


async def test_h14_agent_installs_and_serves_without_any_capability(
    control_plane: ControlPlane, cluster: Cluster, socket_dir: Path, tmp_path: Path
) -> None:
    """H14: as UID 0 with every capability set empty and no_new_privs, ``install-cni`` writes the executable into a
    root-owned 0755 directory and the agent creates its socket, becomes healthy and serves an ADD through the
    installed executable: the chart's locked-down agent keeps working."""
    if os.geteuid() != 0:
        pytest.fail("H14 runs the agent as root, as the chart does: run the suite as root", pytrace=False)
    bin_dir = tmp_path / "cni-bin"
    bin_dir.mkdir(mode=0o755)
    installer = await asyncio.create_subprocess_exec(
        *setpriv(), sys.executable, "-m", "spiderpool.agent", "install-cni", str(bin_dir),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = await asyncio.wait_for(installer.communicate(), timeout=60)
    assert installer.returncode == 0, output
    assert os.access(bin_dir / "spiderpool", os.X_OK)

    node = await cluster.node()
    pool = await cluster.pool(subnet="10.183.0.0/24", ips=[span("10.183.0.2", 2)], gateway="10.183.0.1")
    pod = await cluster.pod(node)
    options = AgentOptions(node_name=node, kubeconfig=control_plane.kubeconfig, socket_path=socket_dir / "agent.sock",
                           log_path=tmp_path / "agent.log")
    agent = ManagedProcess("agent without capabilities", [*setpriv(), *options.argv()], log_path=options.log_path)
    agent.start()
    try:
        await asyncio.to_thread(agent.wait_until, lambda: unix_http_status(options.socket_path, HEALTH_PATH) == 200,
                                timeout=60)
        assert agent.pid is not None
        assert privileges(agent.pid) == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0,
                                         "NoNewPrivs": 1}
        name, uid = pod.metadata.name, pod.metadata.uid
        env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": f"c-{uid}", "CNI_NETNS": f"/var/run/netns/{name}",
               "CNI_IFNAME": "eth0", "CNI_PATH": str(bin_dir),
               "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE={NAMESPACE};K8S_POD_NAME={name};K8S_POD_UID={uid}"}
        config = {"cniVersion": "1.0.0", "name": "macvlan-test", "type": "macvlan",
                  "ipam": {"type": "spiderpool", "ipam_unix_socket_path": str(options.socket_path),
                           "default_ipv4_ippool": [pool]}}
        added = await exec_plugin(bin_dir / "spiderpool", env, orjson.dumps(config))
        assert added.exit_code == 0, added.stdout + added.stderr + agent.log_tail().encode()
        assert added.json()["ips"] == [{"address": "10.183.0.2/24", "gateway": "10.183.0.1"}]
    finally:
        await asyncio.to_thread(agent.stop, grace=10.0)
        await cluster.force_delete(pod.metadata.name)
