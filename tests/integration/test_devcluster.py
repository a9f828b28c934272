"""The local control plane itself: restarts keep data, tokens, metrics, no orphan processes, the CLI round trip."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio.client.exceptions import ApiException

from spiderpool.devcluster import etcd as etcd_module
from spiderpool.devcluster.binaries import ensure_binaries
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.devcluster.etcd import EtcdServer
from spiderpool.devcluster.ports import free_port
from spiderpool.k8s.api_errors import Forbidden, Unauthorized
from spiderpool.k8s.client import KubeconfigError, close_api_client, make_api_client
from spiderpool.k8s.crd_schema import GROUP, KINDS, VERSION
from spiderpool.k8s.sync_api import SyncApi

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for init to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def own_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane of this module's own: these tests restart and reconfigure it."""
    with ControlPlane(state_dir=tmp_path_factory.mktemp("own-plane")) as plane:
        yield plane


def _config_map(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


def test_restart_apiserver_keeps_data_port_and_credentials(own_plane: ControlPlane) -> None:
    """DC01: Restart API server keeps data port and credentials."""
    api = own_plane.sync_api()
    api.install_crds()
    created = api.request("POST", "/api/v1/namespaces/default/configmaps", body=_config_map("survivor"))
    server, old_pid = own_plane.server, own_plane.pids()["kube-apiserver"]
    own_plane.restart_apiserver()
    assert own_plane.server == server
    assert own_plane.pids()["kube-apiserver"] != old_pid
    assert not alive(old_pid)
    fetched = own_plane.sync_api().get("/api/v1/namespaces/default/configmaps/survivor")
    assert fetched["metadata"]["uid"] == created["metadata"]["uid"]
    assert fetched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    kubeconfig = yaml.safe_load(own_plane.kubeconfig.read_text())
    assert kubeconfig["clusters"][0]["cluster"]["server"] == server
    for kind in KINDS:  # custom resources serve at once: restart waits for their caches, not only for /readyz
        assert own_plane.sync_api().get(f"/apis/{GROUP}/{VERSION}/{kind.plural}")["items"] is not None


def test_a_restart_from_a_short_lived_thread_outlives_the_thread(own_plane: ControlPlane) -> None:
    """DC02: PR_SET_PDEATHSIG fires when the forking *thread* exits: asyncio.to_thread workers end with their loop."""
    worker = threading.Thread(target=own_plane.restart_apiserver)
    worker.start()
    worker.join()
    pid = own_plane.pids()["kube-apiserver"]
    time.sleep(1.0)
    assert alive(pid)
    assert own_plane.sync_api().is_ready()


def test_apiserver_metrics_are_readable_with_the_admin_token(own_plane: ControlPlane) -> None:
    """DC03: API server metrics are readable with the admin token."""
    metrics = own_plane.sync_api().get_text("/metrics")
    assert "apiserver_request_total{" in metrics


def test_added_token_authenticates_its_user_and_rbac_applies(own_plane: ControlPlane) -> None:
    """DC04: Added token authenticates its user and RBAC applies."""
    token = own_plane.add_token(user="alice", groups=["dev-team"])
    alice = SyncApi(server=own_plane.server, token=token, ca_file=own_plane.ca_file)
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    who = alice.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=review)
    assert who["status"]["userInfo"]["username"] == "alice"
    assert "dev-team" in who["status"]["userInfo"]["groups"]
    with pytest.raises(Forbidden):  # authenticated, but RBAC grants alice nothing
        alice.get("/api/v1/namespaces")
    stranger = SyncApi(server=own_plane.server, token="not-a-token", ca_file=own_plane.ca_file)
    with pytest.raises(Unauthorized):
        stranger.get("/api/v1/namespaces")
    assert own_plane.sync_api().get("/api/v1/namespaces")["items"]


def test_controller_manager_runs_the_workload_controllers(own_plane: ControlPlane) -> None:
    """DC05: Controller manager runs the workload controllers."""
    own_plane.start_controller_manager()
    api = own_plane.sync_api()
    labels = {"app": "web"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        },
    }
    assert api.request("POST", "/apis/apps/v1/namespaces/default/deployments", body=deployment)["metadata"]["uid"]

    def pods_created() -> bool:
        pods = api.get("/api/v1/namespaces/default/pods", query={"labelSelector": "app=web"})["items"]
        return len(pods) == 2

    wait_for(pods_created, timeout=60, what="the Deployment's two pods")
    pods = api.get("/api/v1/namespaces/default/pods", query={"labelSelector": "app=web"})["items"]
    owners = {pod["metadata"]["ownerReferences"][0]["kind"] for pod in pods}
    assert owners == {"ReplicaSet"}


def test_stop_leaves_no_process_behind(tmp_path: Path) -> None:
    """DC06: Stop leaves no process behind."""
    plane = ControlPlane(state_dir=tmp_path, with_controller_manager=True)
    plane.start()
    pids = plane.pids()
    assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
    assert all(alive(pid) for pid in pids.values())
    plane.stop()
    assert [name for name, pid in pids.items() if Path(f"/proc/{pid}").exists()] == []
    plane.stop()  # idempotent


_OWNER_SCRIPT = """
import json, sys, time
from pathlib import Path
from spiderpool.devcluster.cluster import ControlPlane
plane = ControlPlane(state_dir=Path(sys.argv[1]), with_controller_manager=True)
plane.start()
print(json.dumps(plane.pids()), flush=True)
time.sleep(600)
"""


def test_children_die_when_their_owner_is_sigkilled(tmp_path: Path) -> None:
    """DC07: Children die when their owner is sigkilled."""
    owner = subprocess.Popen([sys.executable, "-c", _OWNER_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pids = json.loads(owner.stdout.readline())
        assert len(pids) == 3
        assert all(alive(pid) for pid in pids.values())
    finally:
        owner.kill()  # SIGKILL: no handler, no atexit; only PR_SET_PDEATHSIG can stop the children now
        owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()
    wait_for(lambda: not any(alive(pid) for pid in pids.values()), timeout=10, what=f"children {pids} to die")


def test_etcd_retries_on_a_port_taken_before_it_binds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DC08: Etcd retries on a port taken before it binds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        handed: list[int] = []

        def taken_first() -> int:
            port = taken if not handed else free_port()
            handed.append(port)
            return port

        monkeypatch.setattr(etcd_module, "free_port", taken_first)
        binary = ensure_binaries(["etcd"])["etcd"]
        server = EtcdServer(binary=binary, data_dir=tmp_path / "etcd", log_path=tmp_path / "etcd.log")
        try:
            server.start()
            assert server.healthy()
            assert server.client_port != taken
            assert len(handed) == 4  # client + peer port per attempt: the second attempt won
            assert handed[0] == taken
            assert "address already in use" in (tmp_path / "etcd.log").read_text()
        finally:
            server.stop()


def ready_server(state: Path) -> str:
    server: str = json.loads((state / "cluster" / "ready.json").read_text())["server"]
    return server


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "spiderpool.devcluster", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)


async def test_cli_up_status_down_round_trip(tmp_path: Path) -> None:
    """DC09: CLI up status down round trip."""
    state = tmp_path / "dev"
    up = _cli("up", "--state-dir", str(state))
    assert up.returncode == 0, up.stderr
    assert str(state / "kubeconfig") in up.stdout
    try:
        assert _cli("status", "--state-dir", str(state)).returncode == 0
        again = _cli("up", "--state-dir", str(state))  # idempotent: reports the running one
        assert (again.returncode, again.stdout.splitlines()[0]) == (0, f"control plane ready at {ready_server(state)}")
        client = await make_api_client(kubeconfig=state / "kubeconfig")
        try:
            objects: Any = k8s_client.CustomObjectsApi(client)
            for kind in KINDS:  # the CLI installed and established every CRD before returning
                listed = await objects.list_cluster_custom_object(GROUP, VERSION, kind.plural)
                assert listed["items"] == []
        finally:
            await close_api_client(client)
        ready = json.loads((state / "cluster" / "ready.json").read_text())
    finally:
        down = _cli("down", "--state-dir", str(state))
    assert down.returncode == 0, down.stderr
    pids = [ready["supervisorPid"], *ready["pids"].values()]
    wait_for(lambda: not any(alive(pid) for pid in pids), timeout=10, what="supervisor and components to exit")
    assert not state.exists()
    assert _cli("status", "--state-dir", str(state)).returncode == 1


def test_cli_down_after_the_supervisor_was_killed(tmp_path: Path) -> None:
    """DC10: CLI down after the supervisor was killed."""
    state = tmp_path / "dev"
    assert _cli("up", "--state-dir", str(state)).returncode == 0
    ready = json.loads((state / "cluster" / "ready.json").read_text())
    os.kill(ready["supervisorPid"], signal.SIGKILL)
    wait_for(lambda: not any(alive(pid) for pid in ready["pids"].values()), timeout=10, what="orphaned components")
    assert _cli("status", "--state-dir", str(state)).returncode == 1
    down = _cli("down", "--state-dir", str(state))
    assert (down.returncode, down.stdout.strip()) == (0, "not running")
    assert not state.exists()


async def _namespaces_via(client: k8s_client.ApiClient) -> list[str]:
    try:
        core: Any = k8s_client.CoreV1Api(client)
        listed = await core.list_namespace()
        return sorted(namespace.metadata.name for namespace in listed.items)
    finally:
        await close_api_client(client)


async def test_api_client_from_explicit_credentials(own_plane: ControlPlane) -> None:
    """DC11: API client from explicit credentials."""
    client = await make_api_client(server=own_plane.server, token=own_plane.token, ca_file=own_plane.ca_file)
    assert "default" in await _namespaces_via(client)


async def test_api_client_from_embedded_ca_and_token_file(own_plane: ControlPlane, tmp_path: Path) -> None:
    """DC12: The kubeconfig variants other tools write: base64 CA data, a token file relative to the kubeconfig."""
    (tmp_path / "token").write_text(own_plane.token + "\n")
    ca_data = base64.b64encode(own_plane.ca_file.read_bytes()).decode()
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": own_plane.server, "certificate-authority-data": ca_data}}],
        "users": [{"name": "u", "user": {"tokenFile": "token"}}, {"name": "nobody", "user": {"token": "bogus"}}],
        "contexts": [{"name": "good", "context": {"cluster": "c", "user": "u"}},
                     {"name": "bad", "context": {"cluster": "c", "user": "nobody"}}],
        "current-context": "bad",
    }  # fmt: skip
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(kubeconfig))
    assert "kube-system" in await _namespaces_via(await make_api_client(kubeconfig=path, context="good"))
    with pytest.raises(ApiException) as refused:
        await _namespaces_via(await make_api_client(kubeconfig=path))
    assert refused.value.status == 401
    with pytest.raises(KubeconfigError, match=r"name absent in .*contexts"):
        await make_api_client(kubeconfig=path, context="absent")
