"""The real compiled CNI executable against a real aiohttp unix-socket server running make_cni_handler.

The backend is an in-memory fake of our own CniBackend interface; everything between the executable's environment
and the backend (C JSON scan, HTTP over the socket, percent-encoding, parsing, formatting) is the real code.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Sequence
from ipaddress import ip_address, ip_interface, ip_network
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from cni_build import require_cni_build
from cni_process import exec_plugin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spiderpool.agent.cni_endpoint import make_cni_app, start_unix_server
from spiderpool.agent.install_cni import cni_executable_path
from spiderpool.core.cni_types import Attachment, CniCode, CniError, CniRequest, IpamResult, IpConfig, Route
from spiderpool.wire import AGENT_TIMEOUT_MS_ENV, SOCKET_PATH_ENV

POD_ARGS = (
    "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod};"
    "K8S_POD_INFRA_CONTAINER_ID={cid};K8S_POD_UID=uid-{pod}"
)


class MemoryBackend:
    """Hands out 10.6.0.10+ / fd00:6::10+ per (pod, ifname); remembers every request it served."""

    def __init__(self) -> None:
        self.held: dict[tuple[str, str], tuple[str, IpamResult]] = {}  # (pod uid, ifname) -> (container id, result)
        self.requests: list[CniRequest] = []
        self.delay = 0.0
        self.ready = True
        self._next_host = 10

    def _key(self, request: CniRequest) -> tuple[str, str]:
        assert request.k8s.pod_uid is not None
        assert request.ifname is not None
        return request.k8s.pod_uid, request.ifname

    async def add(self, request: CniRequest) -> IpamResult:
        self.requests.append(request)
        await asyncio.sleep(self.delay)
        key = self._key(request)
        if key not in self.held:
            host, self._next_host = self._next_host, self._next_host + 1
            result = IpamResult(
                ips=(
                    IpConfig(ip_interface(f"10.6.0.{host}/16"), ip_address("10.6.0.1")),
                    IpConfig(ip_interface(f"fd00:6::{host:x}/64"), ip_address("fd00:6::1")),
                ),
                routes=(Route(ip_network("0.0.0.0/0"), ip_address("10.6.0.1")),),
            )
            self.held[key] = (request.container_id or "", result)
        return self.held[key][1]

    async def delete(self, request: CniRequest) -> None:
        self.requests.append(request)
        self.held.pop(self._key(request), None)

    async def check(self, request: CniRequest) -> IpamResult:
        self.requests.append(request)
        return self.held.get(self._key(request), ("", IpamResult(ips=())))[1]

    async def gc(self, request: CniRequest, valid: Sequence[Attachment]) -> None:
        self.requests.append(request)
        keep = {(attachment.container_id, attachment.ifname) for attachment in valid}
        for key, (container_id, _) in list(self.held.items()):
            if (container_id, key[1]) not in keep:
                del self.held[key]

    async def status(self, request: CniRequest) -> None:
        self.requests.append(request)
        if not self.ready:
            raise CniError(CniCode.NOT_AVAILABLE, "spiderpool agent not ready", "pool cache not synced")


@pytest.fixture(scope="module")
def cni_binary(request: pytest.FixtureRequest) -> Path:
    """The executable the session compiled before the tests ran (``tests/cni_build.py``): a unit test never builds."""
    require_cni_build(request.config)
    return cni_executable_path()


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
async def agent_socket(backend: MemoryBackend, socket_dir: Path) -> AsyncIterator[Path]:
    socket_path = socket_dir / "agent.sock"
    runner = await start_unix_server(make_cni_app(backend), socket_path=socket_path)
    yield socket_path
    await runner.cleanup()


def netconf(version: str = "1.0.0", *, socket: Path | None = None, **fields: Any) -> bytes:
    ipam: dict[str, Any] = {"type": "spiderpool", "default_ipv4_ippool": ["v4"]}
    if socket is not None:
        ipam["ipam_unix_socket_path"] = str(socket)
    return orjson.dumps({"cniVersion": version, "name": "macvlan-ens192", "type": "macvlan", "ipam": ipam, **fields})


def pod_env(command: str, *, pod: str = "web-0", cid: str = "c0ffee01", ifname: str = "eth0") -> dict[str, str]:
    return {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": f"/var/run/netns/{pod}",
        "CNI_IFNAME": ifname,
        "CNI_ARGS": POD_ARGS.format(pod=pod, cid=cid),
        "CNI_PATH": "/opt/cni/bin",
    }


async def test_version_is_answered_without_an_agent(cni_binary: Path, socket_dir: Path) -> None:
    """CNX01: Version is answered without an agent."""
    run = await exec_plugin(cni_binary, {"CNI_COMMAND": "VERSION"}, netconf("0.4.0", socket=socket_dir / "none.sock"))
    assert run.exit_code == 0
    assert run.json() == {"cniVersion": "0.4.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}
    empty = await exec_plugin(cni_binary, {"CNI_COMMAND": "VERSION"}, b"")
    assert empty.json()["cniVersion"] == "1.1.0"


@pytest.mark.parametrize(
    ("version", "first_ip"),
    [
        pytest.param("0.3.0", {"version": "4", "address": "10.6.0.10/16", "gateway": "10.6.0.1"}, id="0.3.0"),
        pytest.param("0.3.1", {"version": "4", "address": "10.6.0.10/16", "gateway": "10.6.0.1"}, id="0.3.1"),
        pytest.param("0.4.0", {"version": "4", "address": "10.6.0.10/16", "gateway": "10.6.0.1"}, id="0.4.0"),
        pytest.param("1.0.0", {"address": "10.6.0.10/16", "gateway": "10.6.0.1"}, id="1.0.0"),
        pytest.param("1.1.0", {"address": "10.6.0.10/16", "gateway": "10.6.0.1"}, id="1.1.0"),
    ],
)
async def test_add_result_in_each_version(
    cni_binary: Path, agent_socket: Path, backend: MemoryBackend, version: str, first_ip: dict[str, str]
) -> None:
    """CNX02: ADD result in each version."""
    run = await exec_plugin(cni_binary, pod_env("ADD"), netconf(version, socket=agent_socket))
    assert run.exit_code == 0, run.stderr
    result = run.json()
    assert result["cniVersion"] == version
    assert result["ips"][0] == first_ip
    assert result["ips"][1]["address"] == "fd00:6::a/64"
    assert result["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.6.0.1"}]
    assert "interfaces" not in result
    served = backend.requests[-1]
    assert (served.container_id, served.netns, served.ifname) == ("c0ffee01", "/var/run/netns/web-0", "eth0")
    assert (served.k8s.pod_namespace, served.k8s.pod_name, served.k8s.pod_uid) == ("default", "web-0", "uid-web-0")
    assert served.ipam.default_ipv4_ippool == ("v4",)
    assert served.cni_path == ("/opt/cni/bin",)


async def test_add_is_idempotent_and_del_releases(cni_binary: Path, agent_socket: Path, backend: MemoryBackend) -> None:
    """CNX03: ADD is idempotent and DEL releases."""
    config = netconf(socket=agent_socket)
    first = await exec_plugin(cni_binary, pod_env("ADD"), config)
    again = await exec_plugin(cni_binary, pod_env("ADD"), config)
    other = await exec_plugin(cni_binary, pod_env("ADD", pod="web-1", cid="c0ffee02"), config)
    assert first.json() == again.json()
    assert other.json()["ips"][0]["address"] == "10.6.0.11/16"
    for _ in range(2):  # DEL twice: both succeed, silently
        deleted = await exec_plugin(cni_binary, pod_env("DEL"), config)
        assert (deleted.exit_code, deleted.stdout) == (0, b"")
    assert list(backend.held) == [("uid-web-1", "eth0")]


async def test_check_against_prev_result(cni_binary: Path, agent_socket: Path) -> None:
    """CNX04: Check against prev result."""
    added = (await exec_plugin(cni_binary, pod_env("ADD"), netconf("0.4.0", socket=agent_socket))).json()
    # What macvlan hands to CHECK: its own interface list, ips pointing at it.
    prev = {**added, "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/web-0"}]}
    prev["ips"] = [{**ip, "interface": 0} for ip in added["ips"]]
    ok = await exec_plugin(cni_binary, pod_env("CHECK"), netconf("0.4.0", socket=agent_socket, prevResult=prev))
    assert (ok.exit_code, ok.stdout) == (0, b"")
    prev["ips"][0]["address"] = "10.6.0.99/16"
    bad = await exec_plugin(cni_binary, pod_env("CHECK"), netconf("0.4.0", socket=agent_socket, prevResult=prev))
    assert bad.exit_code == 1
    assert bad.json()["code"] == CniCode.RESERVATION_MISMATCH
    assert bad.json()["msg"] == "prevResult address 10.6.0.99/16 of eth0 is not reserved for pod default/web-0"


async def test_gc_releases_attachments_not_listed(cni_binary: Path, agent_socket: Path, backend: MemoryBackend) -> None:
    """CNX05: GC releases attachments not listed."""
    config = netconf("1.1.0", socket=agent_socket)
    await exec_plugin(cni_binary, pod_env("ADD", pod="a", cid="ca"), config)
    await exec_plugin(cni_binary, pod_env("ADD", pod="b", cid="cb"), config)
    valid = [{"containerID": "cb", "ifname": "eth0"}]
    gc_config = netconf("1.1.0", socket=agent_socket, **{"cni.dev/valid-attachments": valid})
    run = await exec_plugin(cni_binary, {"CNI_COMMAND": "GC", "CNI_PATH": "/opt/cni/bin"}, gc_config)
    assert (run.exit_code, run.stdout) == (0, b"")
    assert list(backend.held) == [("uid-b", "eth0")]


async def test_status_ready_and_not_ready(cni_binary: Path, agent_socket: Path, backend: MemoryBackend) -> None:
    """CNX06: Status ready and not ready."""
    config = netconf("1.1.0", socket=agent_socket)
    ready = await exec_plugin(cni_binary, {"CNI_COMMAND": "STATUS"}, config)
    assert (ready.exit_code, ready.stdout) == (0, b"")
    backend.ready = False
    not_ready = await exec_plugin(cni_binary, {"CNI_COMMAND": "STATUS"}, config)
    assert not_ready.exit_code == 1
    assert not_ready.json() == {
        "cniVersion": "1.1.0",
        "code": 50,
        "msg": "spiderpool agent not ready",
        "details": "pool cache not synced",
    }


@pytest.mark.parametrize(
    ("command", "code"),
    [pytest.param("ADD", 11, id="add"), pytest.param("CHECK", 11, id="check"), pytest.param("GC", 11, id="gc")],
)
async def test_agent_absent_is_try_again_later(cni_binary: Path, socket_dir: Path, command: str, code: int) -> None:
    """CNX07: Agent absent is try again later."""
    missing = socket_dir / "absent.sock"
    run = await exec_plugin(cni_binary, pod_env(command), netconf("0.4.0", socket=missing))
    assert run.exit_code == 1
    assert run.json() == {
        "cniVersion": "0.4.0",
        "code": code,
        "msg": "spiderpool agent unreachable",
        "details": f"connect {missing}: No such file or directory",
    }
    assert b"spiderpool agent unreachable" in run.stderr


async def test_agent_absent_status_is_50_and_del_is_try_again_later(cni_binary: Path, socket_dir: Path) -> None:
    """CNX08: with the agent unreachable STATUS fails with 50 and DEL fails with 11 ("try again later"), so the
    runtime retries the DEL instead of forgetting an address nobody released."""
    missing = socket_dir / "absent.sock"
    config = netconf("1.1.0", socket=missing)
    status = await exec_plugin(cni_binary, {"CNI_COMMAND": "STATUS"}, config)
    assert (status.exit_code, status.json()["code"]) == (1, CniCode.NOT_AVAILABLE)
    deleted = await exec_plugin(cni_binary, pod_env("DEL"), config)
    assert deleted.exit_code == 1
    assert deleted.json() == {
        "cniVersion": "1.1.0",
        "code": CniCode.TRY_AGAIN_LATER,
        "msg": "spiderpool agent unreachable",
        "details": f"connect {missing}: No such file or directory",
    }


async def test_refused_connection_is_unreachable(cni_binary: Path, socket_dir: Path) -> None:
    """CNX09: Refused connection is unreachable."""
    stale = socket_dir / "stale.sock"
    server = await asyncio.start_unix_server(lambda r, w: None, path=str(stale))
    server.close()  # the socket file stays, nobody listens: ECONNREFUSED
    await server.wait_closed()
    run = await exec_plugin(cni_binary, pod_env("ADD"), netconf(socket=stale))
    assert run.json()["details"] == f"connect {stale}: Connection refused"


async def test_malformed_stdin_is_decode_error(cni_binary: Path, agent_socket: Path, backend: MemoryBackend) -> None:
    """CNX10: Malformed stdin is decode error."""
    env = {**pod_env("ADD"), SOCKET_PATH_ENV: str(agent_socket)}
    run = await exec_plugin(cni_binary, env, b'{"cniVersion": "1.0.0", "ipam": ')
    assert run.exit_code == 1
    assert run.json()["code"] == CniCode.DECODING_FAILURE
    assert backend.requests == []


@pytest.mark.parametrize(
    ("env_change", "message"),
    [
        pytest.param({"CNI_IFNAME": None}, "CNI_IFNAME: required for ADD but not set", id="no-ifname"),
        pytest.param({"CNI_CONTAINERID": "../x"}, "CNI_CONTAINERID: '../x' must start", id="bad-containerid"),
        pytest.param({"CNI_ARGS": "K8S_POD_NAME=p;Foo=1"}, "CNI_ARGS: unknown key 'Foo'", id="unknown-arg"),
    ],
)
async def test_bad_environment_is_code_4(
    cni_binary: Path, agent_socket: Path, env_change: dict[str, str | None], message: str
) -> None:
    """CNX11: Bad environment is code 4."""
    env = {key: value for key, value in {**pod_env("ADD"), **env_change}.items() if value is not None}
    run = await exec_plugin(cni_binary, env, netconf(socket=agent_socket))
    assert run.exit_code == 1
    assert run.json()["code"] == CniCode.INVALID_ENVIRONMENT
    assert str(run.json()["msg"]).startswith(message)


@pytest.mark.parametrize(
    ("command", "msg"),
    [
        pytest.param(None, "CNI_COMMAND is not set", id="missing"),
        pytest.param("RESET", "unknown CNI_COMMAND", id="unknown"),
    ],
)
async def test_bad_command_is_code_4_without_an_agent(cni_binary: Path, command: str | None, msg: str) -> None:
    """CNX12: Bad command is code 4 without an agent."""
    env = {"CNI_COMMAND": command} if command else {}
    run = await exec_plugin(cni_binary, env, netconf("0.3.1"))
    assert run.exit_code == 1
    assert (run.json()["code"], run.json()["msg"], run.json()["cniVersion"]) == (4, msg, "0.3.1")


async def test_values_with_any_bytes_survive_the_trip(
    cni_binary: Path, agent_socket: Path, backend: MemoryBackend
) -> None:
    """CNX13: Values with any bytes survive the trip."""
    env = {**pod_env("ADD"), "CNI_NETNS": "/var/run/netns/pod with spaces%é\t", "CNI_PATH": "/a b:/c"}
    run = await exec_plugin(cni_binary, env, netconf(socket=agent_socket))
    assert run.exit_code == 0, run.stdout
    assert backend.requests[-1].netns == "/var/run/netns/pod with spaces%é\t"
    assert backend.requests[-1].cni_path == ("/a b", "/c")


async def test_socket_path_is_found_among_decoys(cni_binary: Path, agent_socket: Path, socket_dir: Path) -> None:
    """CNX14: Socket path is found among decoys."""
    escaped_path = str(agent_socket).replace("/", "\\/")  # JSON allows "\/"; the C scanner must decode it
    decoy = str(socket_dir / "decoy.sock")
    stdin = (
        f'{{ "plugins": [{{"ipam": {{"ipam_unix_socket_path": "{decoy}"}}}}],\n'
        f'  "note": "\\"ipam\\": {{\\"ipam_unix_socket_path\\": \\"{decoy}\\"}} \\u00e9",\n'
        f'  "cniVersion" : "1.0.0", "name": "n", "nested": {{"ipam": {{"ipam_unix_socket_path": "{decoy}"}}}},\n'
        f'  "ipam" : {{ "type": "spiderpool", "deep": [[{{"ipam_unix_socket_path": "{decoy}"}}]],\n'
        f'             "ipam_unix_socket_path" :\t"{escaped_path}" }} }}'
    )
    assert orjson.loads(stdin)["ipam"]["ipam_unix_socket_path"] == str(agent_socket)
    run = await exec_plugin(cni_binary, pod_env("ADD"), stdin.encode())
    assert run.exit_code == 0, run.stdout
    assert run.json()["ips"][0]["address"] == "10.6.0.10/16"


async def test_socket_env_override(cni_binary: Path, agent_socket: Path, socket_dir: Path) -> None:
    """CNX15: Socket env override."""
    env = {**pod_env("ADD"), SOCKET_PATH_ENV: str(agent_socket)}
    run = await exec_plugin(cni_binary, env, netconf(socket=socket_dir / "not-this.sock"))
    assert run.exit_code == 0, run.stdout


async def test_slow_backend_still_answers(cni_binary: Path, agent_socket: Path, backend: MemoryBackend) -> None:
    """CNX16: Slow backend still answers."""
    backend.delay = 1.5
    run = await exec_plugin(cni_binary, pod_env("ADD"), netconf(socket=agent_socket))
    assert run.exit_code == 0
    assert run.json()["ips"][0]["address"] == "10.6.0.10/16"


async def test_silent_agent_times_out(cni_binary: Path, socket_dir: Path) -> None:
    """CNX17: Silent agent times out."""
    silent = socket_dir / "silent.sock"
    held: list[asyncio.StreamWriter] = []
    server = await asyncio.start_unix_server(lambda reader, writer: held.append(writer), path=str(silent))
    env = {**pod_env("ADD"), AGENT_TIMEOUT_MS_ENV: "300"}
    try:
        run = await exec_plugin(cni_binary, env, netconf(socket=silent))
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
    assert run.json()["code"] == CniCode.TRY_AGAIN_LATER
    assert run.json()["details"] == f"awaiting reply on {silent}: Connection timed out"


async def test_an_agent_without_the_endpoint_is_an_invalid_reply(cni_binary: Path, socket_dir: Path) -> None:
    """CNX18: An agent without the endpoint is an invalid reply."""
    socket_path = socket_dir / "old.sock"
    runner = await start_unix_server(web.Application(), socket_path=socket_path)
    try:
        run = await exec_plugin(cni_binary, pod_env("ADD"), netconf(socket=socket_path))
    finally:
        await runner.cleanup()
    assert run.json()["msg"] == "invalid reply from spiderpool agent"
    assert run.json()["details"] == "reply has HTTP status 404 and X-Cni-Exit-Code -1, expected 200 and 0-255"


async def test_large_configuration(cni_binary: Path, agent_socket: Path, backend: MemoryBackend) -> None:
    """CNX19: Large configuration."""
    padding = {"blob": "x" * (3 << 20), "list": list(range(20000))}
    run = await exec_plugin(cni_binary, pod_env("ADD"), netconf(socket=agent_socket, padding=padding))
    assert run.exit_code == 0
    assert backend.requests[-1].config["padding"] == padding
    too_large = await exec_plugin(cni_binary, pod_env("ADD"), netconf(socket=agent_socket, blob="y" * (4 << 20)))
    assert too_large.json()["code"] == CniCode.INVALID_CONFIG
    assert too_large.json()["msg"] == "network configuration too large"


async def test_parallel_invocations(cni_binary: Path, agent_socket: Path, backend: MemoryBackend) -> None:
    """CNX20: Parallel invocations."""
    config = netconf(socket=agent_socket)
    runs = await asyncio.gather(
        *(exec_plugin(cni_binary, pod_env("ADD", pod=f"p{i}", cid=f"c{i}"), config) for i in range(40))
    )
    addresses = [run.json()["ips"][0]["address"] for run in runs]
    assert len(set(addresses)) == 40
    assert len(backend.held) == 40


async def test_raw_request_with_a_malformed_header_is_code_4(agent_socket: Path) -> None:
    """CNX21: Raw request with a malformed header is code 4."""
    reader, writer = await asyncio.open_unix_connection(str(agent_socket))
    body = netconf()
    writer.write(
        b"POST /v2/cni HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Cni-Command: ADD\r\n"
        b"X-Cni-Ifname: eth%%zz\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    reply = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"X-Cni-Exit-Code: 1" in head
    assert orjson.loads(payload)["msg"] == "CNI_IFNAME (header X-Cni-Ifname): not a percent-encoded value: 'eth%zz'"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    others=st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=5),
    version=st.text(max_size=24),
    position=st.integers(min_value=0, max_value=5),
    ascii_only=st.booleans(),
    indent=st.sampled_from([None, 0, 2]),
    cut=st.integers(min_value=1),
)
def test_c_json_scanner_agrees_with_python(
    cni_binary: Path,
    others: dict[str, Any],
    version: str,
    position: int,
    ascii_only: bool,
    indent: int | None,
    cut: int,
) -> None:
    """CNX22: VERSION echoes the scanned cniVersion: the C scanner must find it wherever Python's parser does."""
    items = [(key, value) for key, value in others.items() if key != "cniVersion"]
    items.insert(min(position, len(items)), ("cniVersion", version))
    text = json.dumps(dict(items), ensure_ascii=ascii_only, indent=indent).encode()
    usable = version and "\x00" not in version and len(version.encode()) < 64
    assert _scanned_version(cni_binary, text) == (version if usable else "1.1.0")
    truncated = text[: cut % len(text)]  # a proper prefix of an object is never valid JSON
    assert _scanned_version(cni_binary, truncated) == "1.1.0"


@pytest.mark.parametrize(("depth", "expected"), [(100, "0.4.0"), (100_000, "1.1.0")])
def test_c_json_scanner_bounds_nesting(cni_binary: Path, depth: int, expected: str) -> None:
    """CNX23: C JSON scanner bounds nesting."""
    stdin = b'{"deep": ' + b"[" * depth + b"]" * depth + b', "cniVersion": "0.4.0"}'
    assert _scanned_version(cni_binary, stdin) == expected  # too deep counts as malformed, never a crash


def _scanned_version(binary: Path, stdin: bytes) -> str:
    run = subprocess.run([binary], env={"CNI_COMMAND": "VERSION"}, input=stdin, capture_output=True, check=True)
    version = orjson.loads(run.stdout)["cniVersion"]
    assert isinstance(version, str)
    return version


async def test_cnx24_coordinator_posts_to_its_own_endpoint(cni_binary: Path, socket_dir: Path) -> None:
    """CNX24: the ``coordinator`` build of the executable posts the invocation (CNI_* headers, stdin with its
    prevResult) to ``/v2/coordinator``, not ``/v2/cni``, prints the agent's answer with its exit code, answers VERSION
    itself, and names itself in its log when the agent is unreachable (code 11)."""
    coordinator = cni_executable_path("coordinator")
    seen: list[tuple[str, dict[str, str], bytes]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.path, dict(request.headers), await request.read()))
        return web.Response(body=b'{"cniVersion":"1.0.0","ips":[]}', headers={"X-Cni-Exit-Code": "0"})

    app = web.Application()
    app.router.add_post("/v2/coordinator", record)
    app.router.add_post("/v2/cni", record)
    socket_path = socket_dir / "agent.sock"
    runner = await start_unix_server(app, socket_path=socket_path)
    try:
        stdin = orjson.dumps({"cniVersion": "1.0.0", "name": "n", "type": "coordinator",
                              "prevResult": {"cniVersion": "1.0.0", "ips": []}})
        env = {**pod_env("ADD"), SOCKET_PATH_ENV: str(socket_path)}
        run = await exec_plugin(coordinator, env, stdin)
        assert (run.exit_code, run.stdout) == (0, b'{"cniVersion":"1.0.0","ips":[]}')
        [(path, headers, body)] = seen
        assert (path, headers["X-Cni-Command"], headers["X-Cni-Ifname"], body) == ("/v2/coordinator", "ADD", "eth0",
                                                                                   stdin)
    finally:
        await runner.cleanup()
    version = await exec_plugin(coordinator, {"CNI_COMMAND": "VERSION"}, b'{"cniVersion":"0.4.0"}')
    assert version.json()["cniVersion"] == "0.4.0"
    gone = await exec_plugin(coordinator, {**pod_env("ADD"), SOCKET_PATH_ENV: str(socket_path)}, stdin)
    assert (gone.exit_code, gone.json()["code"]) == (1, 11)
    assert gone.stderr.decode().startswith("coordinator: error 11:")
