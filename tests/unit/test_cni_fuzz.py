"""The CNI executable built with AddressSanitizer + UndefinedBehaviorSanitizer (``make cni-sanitize``), fed hostile
input: truncated, huge, deeply nested, non-UTF-8 and wrongly typed configurations on stdin, and arbitrary bytes in
every variable it reads.  Whatever comes in: no sanitizer report (memory errors, undefined behaviour, leaks), exit
status 0 or 1, and stdout empty (a silent success) or one valid UTF-8 JSON document in the CNI format (an error with
its code, a result, a VERSION reply).  Generation is seeded (``derandomize``), so every run feeds the same input.

About half of the runs reach an agent (``make_cni_app`` over a unix socket in a thread, with an in-memory backend of
our ``CniBackend`` interface, and the agent's ``/v2/coordinator`` route over an in-memory ``CoordinatorService``), so
the executable's reply parsing runs under the sanitizers too.  The generated cases (H05, H06) and the nesting bound
(H10) run both executables, ``spiderpool`` and ``coordinator`` (the same C program posting to another path), sharing
one budget of examples.  Case IDs H05-H11 in docs/e2e-cases.md.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from ipaddress import ip_address, ip_interface, ip_network
from pathlib import Path
from typing import Any, Final

import orjson
import pytest
from cni_sanitized import BUILD_ERROR, SANITIZED_BINARY, SANITIZED_COORDINATOR, SANITIZER_ENV
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spiderpool.agent.cni_endpoint import make_cni_app, start_unix_server
from spiderpool.agent.coordinator_service import CoordinatorService, add_coordinator_cni_route
from spiderpool.core.cni_types import Attachment, CniCode, CniRequest, IpamResult, IpConfig, Route
from spiderpool.wire import AGENT_TIMEOUT_MS_ENV, MAX_STDIN_BYTES, SOCKET_PATH_ENV

# Safety nets against a hang, never measures: a healthy run takes milliseconds, 150 of them a few seconds (more on
# a loaded machine, hence more than the unit tests' 30 s).
HANG_TIMEOUT: Final = 60
FUZZ_TIMEOUT: Final = 180
VERSIONS: Final = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
COMMANDS: Final = ("ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION")
CODES: Final = frozenset(int(code) for code in CniCode)
RESULT: Final = IpamResult(ips=(IpConfig(ip_interface("10.7.0.10/16"), ip_address("10.7.0.1")),),
                           routes=(Route(ip_network("0.0.0.0/0"), ip_address("10.7.0.1")),))
PREV_RESULT: Final = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/web-0"}],
                      "ips": [{"address": "10.7.0.10/16", "gateway": "10.7.0.1", "interface": 0}]}
POD_ARGS: Final = b"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=uid-web-0"
# Stand-ins inside JSON strings, replaced by raw bytes after serialisation (invalid UTF-8, quotes, controls...).
VERSION_MARK: Final = "@@version@@"
SOCKET_MARK: Final = "@@socket@@"
# One budget for both executables: each gets half of the 150 examples a generated case had for one.
FUZZ_SETTINGS: Final = settings(max_examples=75, derandomize=True, deadline=None, database=None,
                                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class FixedBackend:
    """An in-memory ``CniBackend``: ADD gets one address, every other command succeeds."""

    async def add(self, request: CniRequest) -> IpamResult:
        return RESULT

    async def delete(self, request: CniRequest) -> None:
        return None

    async def check(self, request: CniRequest) -> IpamResult:
        return RESULT

    async def gc(self, request: CniRequest, valid: Sequence[Attachment]) -> None:
        return None

    async def status(self, request: CniRequest) -> None:
        return None


class FixedCoordinator(CoordinatorService):
    """An in-memory coordinator: no netlink, every command succeeds (ADD then prints the ``prevResult``)."""

    def __init__(self) -> None:  # no SpiderCoordinator source, no namespaces
        pass

    async def add(self, request: CniRequest) -> None:
        return None

    async def delete(self, request: CniRequest) -> None:
        return None

    async def check(self, request: CniRequest) -> None:
        return None


def _built(request: pytest.FixtureRequest, binary: Path) -> Path:
    """Built right after collection by tests/conftest.py (unit tests never build)."""
    error = request.config.stash.get(BUILD_ERROR, None)
    if error is not None:
        pytest.fail(f"the sanitized CNI executables could not be built: {error}", pytrace=False)
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: `make cni-sanitize` builds it", pytrace=False)
    return binary


@pytest.fixture(scope="module")
def sanitized_cni(request: pytest.FixtureRequest) -> Path:
    return _built(request, SANITIZED_BINARY)


@pytest.fixture(scope="module", params=[SANITIZED_BINARY, SANITIZED_COORDINATOR], ids=["spiderpool", "coordinator"])
def sanitized_executable(request: pytest.FixtureRequest) -> Path:
    """Each executable in turn: the IPAM one and the chained ``coordinator``."""
    binary: Path = request.param
    return _built(request, binary)


@pytest.fixture(scope="module")
def agent_socket() -> Iterator[Path]:
    """A unix socket served by ``make_cni_app`` on an event loop of its own thread (the tests themselves are sync)."""
    directory = Path(tempfile.mkdtemp(prefix="spfz", dir="/tmp"))
    socket_path = directory / "agent.sock"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzz-agent", daemon=True)
    thread.start()
    try:
        app = make_cni_app(FixedBackend())
        add_coordinator_cni_route(app, FixedCoordinator())
        runner = asyncio.run_coroutine_threadsafe(
            start_unix_server(app, socket_path=socket_path), loop).result(timeout=30)
        try:
            yield socket_path
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
        shutil.rmtree(directory, ignore_errors=True)


def run_cni(binary: Path, env: Mapping[bytes, bytes], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    """One run with exactly ``env`` (plus the sanitizer options); a hang past HANG_TIMEOUT fails the test."""
    full = {key.encode(): value.encode() for key, value in SANITIZER_ENV.items()} | dict(env)
    try:
        return subprocess.run([str(binary)], env=full, input=stdin, capture_output=True, timeout=HANG_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the CNI executable hung: env={dict(env)!r} stdin={stdin[:200]!r}...")


def assert_cni_outcome(run: subprocess.CompletedProcess[bytes]) -> dict[str, Any] | None:
    """No sanitizer finding, exit 0 or 1, and stdout empty or one CNI JSON document (returned)."""
    report = run.stderr.decode("utf-8", "replace")
    assert b"Sanitizer" not in run.stderr, report
    assert b"runtime error:" not in run.stderr, report
    assert run.returncode in (0, 1), f"exit status {run.returncode}: {report}"
    if run.returncode == 0 and run.stdout == b"":
        return None  # DEL, CHECK, GC and STATUS succeed silently
    try:
        document = orjson.loads(run.stdout)  # strict: invalid UTF-8 or a second document fails
    except orjson.JSONDecodeError as error:
        pytest.fail(f"stdout is not one valid UTF-8 JSON document ({error}): {run.stdout[:300]!r}")
    assert isinstance(document, dict), document
    assert isinstance(document.get("cniVersion"), str), document
    if run.returncode == 1:
        assert document.get("code") in CODES, document
        assert isinstance(document.get("msg"), str), document
        assert isinstance(document.get("details", ""), str), document
    else:
        assert "ips" in document or "supportedVersions" in document, document
    return document


def _no_nul(data: bytes) -> bytes:
    return data.replace(b"\0", b"")


def env_bytes(max_size: int) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes an environment variable can hold (anything but NUL)."""
    return st.binary(max_size=max_size).map(_no_nul)


def raw_string_bytes() -> st.SearchStrategy[bytes]:
    """What a hostile configuration puts between the quotes of a string: invalid UTF-8 above all."""
    invalid = st.sampled_from([b"\xff", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80",
                               b"\x80", b"\xf0\x9f\x98"])
    return st.lists(invalid | st.binary(min_size=1, max_size=4), max_size=4).map(b"".join)


JSON_VALUES: Final = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=16),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


def _nest(draw: st.DrawFn, text: bytes) -> bytes:
    depth = draw(st.integers(min_value=1, max_value=5000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"k":', b"}"), (b'{"ipam":', b"}")]))
    deep = opener * depth + b"0" + (closer * depth if draw(st.booleans()) else b"")
    if text.startswith(b"{") and text.endswith(b"}") and len(text) > 2:
        return text[:-1] + b',"deep":' + deep + b"}"
    return b'{"deep":' + deep + b"}"


@st.composite
def netconfs(draw: st.DrawFn, socket: Path) -> bytes:
    """A network configuration, then maybe wrongly typed, given raw bytes in its strings, truncated or nested deep."""
    # Raw bytes where an echoed value sits are the likeliest harm: two chances in five.
    version = draw(st.one_of(st.just(VERSION_MARK), st.just(VERSION_MARK), st.sampled_from(VERSIONS),
                             st.text(max_size=70), JSON_VALUES))
    socket_value = draw(st.one_of(st.just(SOCKET_MARK), st.just(SOCKET_MARK), st.just(str(socket)),
                                  st.text(max_size=40), JSON_VALUES))
    ipam = draw(st.just({"type": "spiderpool", "ipam_unix_socket_path": socket_value}) | JSON_VALUES)
    extra = draw(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3))
    document: Any = {**extra, "cniVersion": version, "name": "fuzz", "type": "macvlan", "ipam": ipam}
    if draw(st.booleans()):  # what a chained plugin gets; the coordinator's ADD prints it back
        document["prevResult"] = draw(st.just(PREV_RESULT) | JSON_VALUES)
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        document = draw(JSON_VALUES)  # not an object at all
    text = json.dumps(document, ensure_ascii=draw(st.booleans())).encode()
    text = text.replace(VERSION_MARK.encode(), draw(raw_string_bytes()))
    text = text.replace(SOCKET_MARK.encode(), draw(raw_string_bytes()))
    match draw(st.sampled_from(["as is", "as is", "truncated", "nested", "garbage"])):
        case "truncated":
            return text[: draw(st.integers(min_value=0, max_value=max(len(text) - 1, 0)))]
        case "nested":
            return _nest(draw, text)
        case "garbage":
            cut = draw(st.integers(min_value=0, max_value=len(text)))
            return text[:cut] + draw(st.binary(min_size=1, max_size=16)) + text[cut:]
    return text


def pod_env(command: str, socket: Path | None) -> dict[bytes, bytes]:
    env = {b"CNI_COMMAND": command.encode(), b"CNI_CONTAINERID": b"c0ffee01", b"CNI_NETNS": b"/var/run/netns/web-0",
           b"CNI_IFNAME": b"eth0", b"CNI_ARGS": POD_ARGS, b"CNI_PATH": b"/opt/cni/bin"}
    if socket is not None:
        env[SOCKET_PATH_ENV.encode()] = str(socket).encode()
    return env


@pytest.mark.timeout(FUZZ_TIMEOUT)
@FUZZ_SETTINGS
@given(data=st.data())
def test_h05_hostile_configuration_on_stdin(
    sanitized_executable: Path, agent_socket: Path, data: st.DataObject
) -> None:
    """H05: truncated, deeply nested, non-UTF-8, wrongly typed configurations for every command, with the agent
    named by the configuration, by the environment, or by neither: a CNI outcome, no sanitizer finding."""
    command = data.draw(st.sampled_from(COMMANDS), label="command")
    via_env = data.draw(st.booleans(), label="socket in the environment")
    stdin = data.draw(netconfs(agent_socket), label="stdin")
    env = pod_env(command, agent_socket if via_env else None)
    document = assert_cni_outcome(run_cni(sanitized_executable, env, stdin))
    if command == "VERSION":
        assert document is not None
        assert document["supportedVersions"] == list(VERSIONS)


def hostile_env(socket: Path) -> st.SearchStrategy[dict[bytes, bytes]]:
    """Each variable: the value a runtime sets (half of the time), arbitrary bytes, or absent."""

    def variable(typical: bytes, hostile: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes | None]:
        return st.one_of(st.just(typical), st.just(typical), hostile, st.none())

    timeouts = st.sampled_from([b"1", b"0", b"-5", b"abc", b"", b"99999999999999999999999", b"9223372036854775807"])
    fields = {
        b"CNI_COMMAND": variable(b"ADD", st.sampled_from([c.encode() for c in COMMANDS]) | env_bytes(24)),
        b"CNI_CONTAINERID": variable(b"c0ffee01", env_bytes(80)),
        b"CNI_NETNS": variable(b"/var/run/netns/web-0", env_bytes(80)),
        b"CNI_IFNAME": variable(b"eth0", env_bytes(24)),
        b"CNI_ARGS": variable(POD_ARGS, env_bytes(120)),
        b"CNI_PATH": variable(b"/opt/cni/bin", env_bytes(80)),
        SOCKET_PATH_ENV.encode(): variable(str(socket).encode(), env_bytes(160)),
        AGENT_TIMEOUT_MS_ENV.encode(): variable(b"10000", timeouts),
    }
    return st.fixed_dictionaries(fields).map(lambda env: {k: v for k, v in env.items() if v is not None})


@pytest.mark.timeout(FUZZ_TIMEOUT)
@FUZZ_SETTINGS
@given(data=st.data())
def test_h06_hostile_environment(sanitized_executable: Path, agent_socket: Path, data: st.DataObject) -> None:
    """H06: arbitrary bytes (non-UTF-8 included) in CNI_COMMAND, every other CNI_* variable, the socket path and the
    agent timeout: a CNI outcome, no sanitizer finding; an unknown or missing command is error 4 that names it."""
    env = data.draw(hostile_env(agent_socket), label="env")
    stdin = data.draw(st.just(b'{"cniVersion":"1.0.0","name":"n","type":"macvlan","ipam":{"type":"spiderpool"}}')
                      | netconfs(agent_socket), label="stdin")
    document = assert_cni_outcome(run_cni(sanitized_executable, env, stdin))
    command = env.get(b"CNI_COMMAND", b"")
    if command.decode("latin-1") not in COMMANDS:
        assert document is not None
        assert document["code"] == CniCode.INVALID_ENVIRONMENT, document
        if command:
            assert document["details"] == command.decode("utf-8", "replace")  # each bad sequence as U+FFFD


@pytest.mark.parametrize(
    ("name", "env_change", "check"),
    [
        pytest.param("command", {b"CNI_COMMAND": b"AD\xfe"}, ("details", "AD\ufffd"), id="command"),
        pytest.param("socket", {SOCKET_PATH_ENV.encode(): b"/nonexistent/\xc3\x28.sock"},
                     ("details", "connect /nonexistent/\ufffd(.sock: No such file or directory"), id="socket-env"),
        pytest.param("long command", {b"CNI_COMMAND": b"\xe2\x82" * 40_000}, ("code", 4), id="long-command"),
    ],
)
def test_h07_non_utf8_environment_is_escaped(
    sanitized_cni: Path, name: str, env_change: dict[bytes, bytes], check: tuple[str, object]
) -> None:
    """H07: non-UTF-8 bytes of CNI_COMMAND or the socket path reach the JSON error as U+FFFD, never raw."""
    env = pod_env("ADD", None) | env_change
    document = assert_cni_outcome(run_cni(sanitized_cni, env, b'{"cniVersion":"0.4.0"}'))
    assert document is not None, name
    assert (document["cniVersion"], document[check[0]]) == ("0.4.0", check[1])


@pytest.mark.parametrize("timeout", ["9223372036854775807", "99999999999999999999999", "0", "-1", "abc", ""])
def test_h11_agent_timeout_at_its_extremes(sanitized_cni: Path, agent_socket: Path, timeout: str) -> None:
    """H11: SPIDERPOOL_CNI_TIMEOUT_MS past the range of a long, or not a positive number, falls back to the default
    deadline: no signed overflow computing it (UBSan found one), and ADD succeeds."""
    env = pod_env("ADD", agent_socket) | {AGENT_TIMEOUT_MS_ENV.encode(): timeout.encode()}
    document = assert_cni_outcome(run_cni(sanitized_cni, env, b'{"cniVersion":"1.0.0","name":"n","type":"macvlan"}'))
    assert document is not None
    assert document["ips"] == [{"address": "10.7.0.10/16", "gateway": "10.7.0.1"}]


@pytest.mark.parametrize(
    "stdin",
    [
        pytest.param(b'{"cniVersion":"1.0.\xff"}', id="version-ff"),
        pytest.param(b'{"cniVersion":"\xed\xa0\x80"}', id="version-surrogate"),
        pytest.param(b'{"cniVersion":"\xc0\xaf"}', id="version-overlong"),
        pytest.param(b'{"cniVersion":"1.0.0","ipam":{"ipam_unix_socket_path":"/x/\xff"}}', id="socket-ff"),
    ],
)
@pytest.mark.parametrize("command", ["VERSION", "ADD", "BOGUS"])
def test_h08_non_utf8_configuration_is_refused(sanitized_cni: Path, stdin: bytes, command: str) -> None:
    """H08: a configuration with non-UTF-8 strings is not JSON (RFC 8259 requires UTF-8): its cniVersion and socket
    path are not used, so nothing of it is echoed; the reply stays valid UTF-8 JSON."""
    env = pod_env(command, None) | {SOCKET_PATH_ENV.encode(): b"/nonexistent/agent.sock"}
    document = assert_cni_outcome(run_cni(sanitized_cni, env, stdin))
    assert document is not None
    assert document["cniVersion"] == "1.1.0"  # the newest, as for any configuration that cannot be read
    assert "/x/" not in document.get("details", "")


@pytest.mark.parametrize(
    ("size", "code"),
    [pytest.param(MAX_STDIN_BYTES + 1, CniCode.INVALID_CONFIG, id="over-the-cap"),
     pytest.param(MAX_STDIN_BYTES, None, id="at-the-cap")],
)
def test_h09_huge_configuration(sanitized_cni: Path, agent_socket: Path, size: int, code: int | None) -> None:
    """H09: stdin over the 4 MiB cap is error 7 without reaching the agent; exactly at the cap it is forwarded and
    ADD succeeds (the padding is JSON whitespace)."""
    head = b'{"cniVersion":"1.0.0","name":"n","type":"macvlan","ipam":{"type":"spiderpool"}}'
    stdin = head + b" " * (size - len(head))
    document = assert_cni_outcome(run_cni(sanitized_cni, pod_env("ADD", agent_socket), stdin))
    assert document is not None
    if code is None:
        assert document["ips"] == [{"address": "10.7.0.10/16", "gateway": "10.7.0.1"}]
    else:
        assert document["code"] == code


@pytest.mark.parametrize("opener", [b"[", b'{"a":', b'{"ipam":'])
def test_h10_nesting_past_the_bound(sanitized_executable: Path, agent_socket: Path, opener: bytes) -> None:
    """H10: 200 000 levels of nesting (closed) are refused as malformed by the bounded scanner, never a stack
    overflow; the agent answers the decode error (6)."""
    closer = b"]" if opener == b"[" else b"}"
    stdin = b'{"cniVersion":"0.4.0","x":' + opener * 200_000 + b"1" + closer * 200_000 + b"}"
    document = assert_cni_outcome(run_cni(sanitized_executable, pod_env("ADD", agent_socket), stdin))
    assert document is not None
    assert document["code"] == CniCode.DECODING_FAILURE
