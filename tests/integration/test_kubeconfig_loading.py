"""Credentials are loaded by the client library's own loader: kubeconfig data never goes through a predictable file,
exec credential plugins work, ``KUBECONFIG`` lists merge, and no key material stays on disk.

Every case talks to the real kube-apiserver of the session.  ``tempfile.tempdir`` is pointed at a directory of the
test's own, so "what is left in the temp directory" is exactly what the client left there.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.api_requests import request_json
from spiderpool.k8s.client import ApiClient, close_api_client, make_api_client

from .api_support import new_service_account_token, self_signed_pair

pytestmark = pytest.mark.integration

_REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The process's temp directory for this test (what ``tempfile.gettempdir()`` answers)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


def _old_predictable_path(temp: Path, content: bytes) -> Path:
    """Where spiderpool up to this change wrote (and trusted) the decoded ``*-data`` of a kubeconfig."""
    return temp / f"spiderpool-kubeconfig-{hashlib.sha256(content).hexdigest()[:24]}.pem"


def _kubeconfig(plane: ControlPlane, *, user: dict[str, Any]) -> dict[str, Any]:
    ca_data = base64.b64encode(plane.ca_file.read_bytes()).decode()
    return {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "dev", "cluster": {"server": plane.server, "certificate-authority-data": ca_data}}],
        "users": [{"name": "me", "user": user}],
        "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "me"}}],
        "current-context": "dev",
    }  # fmt: skip


async def _whoami(api: ApiClient) -> str:
    path = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    try:
        review = await request_json(api, "POST", path, what="self subject review", body=_REVIEW)
    finally:
        await close_api_client(api)
    return str(review["status"]["userInfo"]["username"])


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


async def test_kc01_a_planted_ca_file_is_neither_trusted_nor_touched(
    control_plane: ControlPlane, private_tmp: Path, tmp_path: Path
) -> None:
    """KC01: another user pre-created the file the old code wrote the CA data to, holding a CA of their own: the
    client still verifies the API server against the kubeconfig's CA and connects; the planted file is unchanged."""
    foreign_ca, _ = self_signed_pair(tmp_path / "foreign")
    planted = _old_predictable_path(private_tmp, control_plane.ca_file.read_bytes())
    planted.write_bytes(foreign_ca.read_bytes())
    before = (planted.read_bytes(), planted.stat().st_mtime_ns, planted.stat().st_mode)
    path = _write(tmp_path / "config", _kubeconfig(control_plane, user={"token": control_plane.token}))

    assert await _whoami(await make_api_client(kubeconfig=path)) == "spiderpool-admin"
    assert (planted.read_bytes(), planted.stat().st_mtime_ns, planted.stat().st_mode) == before


async def test_kc02_a_planted_symlink_is_not_followed(
    control_plane: ControlPlane, private_tmp: Path, tmp_path: Path
) -> None:
    """KC02: a symlink planted at the old predictable name, pointing where its planter wants the CA (or a key)
    written: nothing is created through it, the link stays as it was, and the client connects."""
    victim = tmp_path / "victim" / "authorized_keys"
    victim.parent.mkdir()
    link = _old_predictable_path(private_tmp, control_plane.ca_file.read_bytes())
    link.symlink_to(victim)
    path = _write(tmp_path / "config", _kubeconfig(control_plane, user={"token": control_plane.token}))

    assert await _whoami(await make_api_client(kubeconfig=path)) == "spiderpool-admin"
    assert not victim.exists()
    assert link.is_symlink()
    assert os.readlink(link) == str(victim)


async def test_kc03_no_key_material_left_after_close(
    control_plane: ControlPlane, private_tmp: Path, tmp_path: Path
) -> None:
    """KC03: a kubeconfig with CA, client certificate and client key as ``*-data``: the client connects with them,
    and once it is closed the temp directory holds nothing (no CA, certificate or key file)."""
    certificate, key = self_signed_pair(tmp_path / "client")
    user = {"token": control_plane.token,
            "client-certificate-data": base64.b64encode(certificate.read_bytes()).decode(),
            "client-key-data": base64.b64encode(key.read_bytes()).decode()}  # fmt: skip
    path = _write(tmp_path / "config", _kubeconfig(control_plane, user=user))

    assert await _whoami(await make_api_client(kubeconfig=path)) == "spiderpool-admin"
    assert await _whoami(await make_api_client(kubeconfig=path)) == "spiderpool-admin"  # again: nothing stale reused
    assert await asyncio.to_thread(lambda: sorted(private_tmp.rglob("*"))) == []


_PLUGIN = """\
import json, sys
from pathlib import Path
state = Path(sys.argv[1])
runs = int((state / "runs").read_text()) + 1 if (state / "runs").exists() else 1
(state / "runs").write_text(str(runs))
status = {"token": (state / "token").read_text().strip()}
expiry = (state / "expiry").read_text().strip()
if expiry:
    status["expirationTimestamp"] = expiry
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status}))
"""


def _exec_user(state: Path) -> dict[str, Any]:
    plugin = state / "plugin.py"
    plugin.write_text(_PLUGIN)
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
                     "args": [str(plugin), str(state)], "interactiveMode": "Never"}}  # fmt: skip


async def test_kc04_exec_credential_plugin_reaches_the_api_server(
    control_plane: ControlPlane, api: ApiClient, tmp_path: Path
) -> None:
    """KC04: a kubeconfig whose user is an ``exec`` plugin (as EKS, GKE and AKS write them) printing an
    ExecCredential with a ServiceAccount token from TokenRequest: the API server authenticates that ServiceAccount."""
    account, token = await new_service_account_token(api, "kc04")
    state = tmp_path / "plugin"
    state.mkdir()
    (state / "token").write_text(token)
    (state / "expiry").write_text("")
    path = _write(tmp_path / "config", _kubeconfig(control_plane, user=_exec_user(state)))

    assert await _whoami(await make_api_client(kubeconfig=path)) == account
    assert (state / "runs").read_text() == "1"


async def test_kc05_an_expiring_exec_token_is_renewed_by_the_plugin(
    control_plane: ControlPlane, api: ApiClient, tmp_path: Path
) -> None:
    """KC05: the plugin's token says it expires (within the client's safety margin): the next request runs the
    plugin again and carries the token it prints now."""
    first_account, first_token = await new_service_account_token(api, "kc05a")
    second_account, second_token = await new_service_account_token(api, "kc05b")
    state = tmp_path / "plugin"
    state.mkdir()
    (state / "token").write_text(first_token)
    (state / "expiry").write_text((datetime.now(UTC) + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    path = _write(tmp_path / "config", _kubeconfig(control_plane, user=_exec_user(state)))
    client = await make_api_client(kubeconfig=path)
    try:
        (state / "token").write_text(second_token)  # what the plugin hands out from now on
        path_review = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
        review = await request_json(client, "POST", path_review, what="self subject review", body=_REVIEW)
    finally:
        await close_api_client(client)
    assert first_account != second_account
    assert review["status"]["userInfo"]["username"] == second_account
    assert int((state / "runs").read_text()) >= 2


async def test_kc06_a_kubeconfig_list_is_merged(control_plane: ControlPlane, tmp_path: Path) -> None:
    """KC06: ``KUBECONFIG=a:b`` where ``a`` names the cluster and context and ``b`` the user's token (kubectl's
    merge): the client and ``spiderpoolctl`` both reach the API server as that user."""
    whole = _kubeconfig(control_plane, user={"token": control_plane.token})
    first = _write(tmp_path / "a", {**whole, "users": []})
    second = _write(tmp_path / "b", {"apiVersion": "v1", "kind": "Config", "users": whole["users"]})
    merged = f"{first}{os.pathsep}{second}"

    assert await _whoami(await make_api_client(kubeconfig=merged)) == "spiderpool-admin"
    environment = {**os.environ, "KUBECONFIG": merged}
    command = [sys.executable, "-m", "spiderpool.cli", "get", "pools", "-o", "json"]
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, env=environment,
                                   timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), list | dict)



class ConnectProxy:
    """A minimal HTTPS proxy (``CONNECT host:port``, then bytes both ways) that counts the tunnels it opened."""

    def __init__(self) -> None:
        self.tunnels = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        host, _, port = head.split(b" ")[1].decode().rpartition(":")
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        self.tunnels += 1
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        except ConnectionError:
            pass
        finally:
            sink.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
                 "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


async def test_kc07_the_environment_is_read_once_when_it_names_no_proxy(
    control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KC07: no proxy variable and no netrc entry for the API server (or a proxy that NO_PROXY bypasses): the session
    stops re-reading the environment in a worker thread on every request, and requests still reach the server; a
    netrc entry naming the host keeps the per-request look-up (aiohttp would send its credentials)."""
    _no_proxy_environment(monkeypatch, tmp_path)
    kubeconfig = _write(tmp_path / "kubeconfig", _kubeconfig(control_plane, user={"token": control_plane.token}))
    plain = await make_api_client(kubeconfig=kubeconfig)
    assert plain.rest_client.pool_manager.trust_env is False
    assert await _whoami(plain) == "spiderpool-admin"

    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    bypassed = await make_api_client(kubeconfig=kubeconfig)
    assert bypassed.rest_client.pool_manager.trust_env is False
    assert await _whoami(bypassed) == "spiderpool-admin"

    monkeypatch.delenv("HTTPS_PROXY")
    host = control_plane.server.split("//", 1)[1].rsplit(":", 1)[0]
    (tmp_path / "netrc").write_text(f"machine {host} login someone password secret\n")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    with_netrc = await make_api_client(kubeconfig=kubeconfig)
    assert with_netrc.rest_client.pool_manager.trust_env is True
    await close_api_client(with_netrc)


async def test_kc08_a_proxy_named_by_the_environment_is_still_used(
    control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KC08: ``HTTPS_PROXY`` names a proxy the API server's address does not bypass: every request goes through it
    (a real CONNECT proxy counts the tunnels), as before the environment was read once."""
    _no_proxy_environment(monkeypatch, tmp_path)
    proxy = ConnectProxy()
    monkeypatch.setenv("HTTPS_PROXY", await proxy.start())
    try:
        kubeconfig = _write(tmp_path / "kubeconfig", _kubeconfig(control_plane, user={"token": control_plane.token}))
        assert await _whoami(await make_api_client(kubeconfig=kubeconfig)) == "spiderpool-admin"
        assert proxy.tunnels >= 1
    finally:
        await proxy.stop()
