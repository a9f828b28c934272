"""answer_cni: dispatch to the backend and the mapping of backend failures to CNI answers (no sockets)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from ipaddress import ip_interface

import orjson
import pytest

from spiderpool.agent.cni_endpoint import CniAnswer, answer_cni
from spiderpool.core.cni_types import Attachment, CniCode, CniError, CniRequest, IpamResult, IpConfig
from spiderpool.k8s.api_errors import Unavailable, error_for_status
from spiderpool.wire import CniPassthrough

CONFIG = orjson.dumps({"cniVersion": "0.4.0", "name": "net", "ipam": {"type": "spiderpool"}})
GC_CONFIG = orjson.dumps(
    {"cniVersion": "1.1.0", "name": "net", "cni.dev/valid-attachments": [{"containerID": "c9", "ifname": "eth0"}]}
)


def invocation(command: str, stdin: bytes = CONFIG) -> CniPassthrough:
    return CniPassthrough(
        command=command,
        container_id="c1",
        netns="/var/run/netns/p",
        ifname="eth0",
        args="K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p",
        path=None,
        stdin=stdin,
    )


class ScriptedBackend:
    """Fails every call with ``failure`` when set; records what it was asked."""

    def __init__(self, failure: BaseException | None = None) -> None:
        self.failure = failure
        self.calls: list[str] = []
        self.gc_valid: Sequence[Attachment] = ()

    def _record(self, name: str) -> None:
        self.calls.append(name)
        if self.failure is not None:
            raise self.failure

    async def add(self, request: CniRequest) -> IpamResult:
        self._record("add")
        return IpamResult(ips=(IpConfig(ip_interface("10.0.0.7/24")),))

    async def delete(self, request: CniRequest) -> None:
        self._record("delete")

    async def check(self, request: CniRequest) -> IpamResult:
        self._record("check")
        return IpamResult(ips=())

    async def gc(self, request: CniRequest, valid: Sequence[Attachment]) -> None:
        self.gc_valid = valid
        self._record("gc")

    async def status(self, request: CniRequest) -> None:
        self._record("status")


def error_of(answer: CniAnswer) -> dict[str, object]:
    assert answer.exit_code == 1
    parsed = orjson.loads(answer.stdout)
    assert isinstance(parsed, dict)
    return parsed


async def test_add_renders_the_backend_result_in_the_config_version() -> None:
    """CNE01: ADD renders the backend result in the config version."""
    backend = ScriptedBackend()
    answer = await answer_cni(backend, invocation("ADD"))
    assert answer.exit_code == 0
    assert orjson.loads(answer.stdout) == {"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.0.0.7/24"}]}
    assert backend.calls == ["add"]


async def test_gc_passes_the_valid_attachments() -> None:
    """CNE02: GC passes the valid attachments."""
    backend = ScriptedBackend()
    gc = CniPassthrough(command="GC", container_id=None, netns=None, ifname=None, args=None, path=None, stdin=GC_CONFIG)
    assert await answer_cni(backend, gc) == CniAnswer(0, b"")
    assert backend.gc_valid == (Attachment("c9", "eth0"),)


async def test_version_through_the_agent() -> None:
    """CNE03: Version through the agent."""
    answer = await answer_cni(ScriptedBackend(), invocation("VERSION"))
    assert orjson.loads(answer.stdout)["supportedVersions"] == ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


async def test_validation_errors_never_reach_the_backend() -> None:
    """CNE04: Validation errors never reach the backend."""
    backend = ScriptedBackend()
    error = error_of(await answer_cni(backend, invocation("ADD", stdin=b"{oops")))
    assert error["code"] == CniCode.DECODING_FAILURE
    assert error["cniVersion"] == "1.1.0"
    assert backend.calls == []


@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK", "STATUS"])
async def test_backend_cni_errors_reach_the_runtime_unchanged(command: str) -> None:
    """CNE05: Backend CNI errors reach the runtime unchanged."""
    stdin = orjson.dumps(
        {"cniVersion": "1.1.0", "name": "n", "prevResult": {"ips": [{"address": "10.0.0.7/24"}]}, "ipam": {}}
    )
    backend = ScriptedBackend(CniError(CniCode.NOT_AVAILABLE, "pool p1 exhausted", "224 of 224 used"))
    error = error_of(await answer_cni(backend, invocation(command, stdin=stdin)))
    assert error == {"cniVersion": "1.1.0", "code": 50, "msg": "pool p1 exhausted", "details": "224 of 224 used"}


async def test_transient_backend_failures_are_code_11(caplog: pytest.LogCaptureFixture) -> None:
    """CNE06: Transient backend failures are code 11."""
    backend = ScriptedBackend(TimeoutError("apiserver slow"))
    error = error_of(await answer_cni(backend, invocation("ADD")))
    assert (error["code"], error["details"]) == (CniCode.TRY_AGAIN_LATER, "TimeoutError")
    assert any(record.exc_info for record in caplog.records)


@pytest.mark.parametrize(
    "failure",
    [Unavailable("get Pod a/b: API server unavailable: Connection refused"),
     error_for_status(503, reason="ServiceUnavailable", message="etcd leader changed", what="update status of x"),
     error_for_status(429, reason="TooManyRequests", message="storage is (re)initializing", what="list pools")],
    ids=["unavailable", "503", "429"],
)
async def test_cne10_api_errors_worth_a_retry_are_code_11(failure: Exception) -> None:
    """CNE10: an API server that cannot be reached or answers 429/5xx (the mapping's Transient errors) makes the
    runtime try again (code 11), whichever request of the backend met it; a refusal like 403 stays an internal
    error."""
    error = error_of(await answer_cni(ScriptedBackend(failure), invocation("ADD")))
    assert (error["code"], error["details"]) == (CniCode.TRY_AGAIN_LATER, type(failure).__name__)
    refused = error_for_status(403, reason="Forbidden", message="rbac", what="get Pod a/b")
    assert error_of(await answer_cni(ScriptedBackend(refused), invocation("ADD")))["code"] == CniCode.INTERNAL


async def test_unexpected_backend_failures_are_code_999_without_leaking(caplog: pytest.LogCaptureFixture) -> None:
    """CNE07: Unexpected backend failures are code 999 without leaking."""
    backend = ScriptedBackend(KeyError("secret-internal-state"))
    with caplog.at_level(logging.ERROR, logger="spiderpool.agent.cni"):
        error = error_of(
            await answer_cni(backend, invocation("CHECK", stdin=b'{"cniVersion":"1.0.0","prevResult":{}}'))
        )
    assert error["code"] == CniCode.INTERNAL
    assert error["msg"] == "internal error in spiderpool agent"
    assert error["details"] == "see the spiderpool-agent log for container c1 (KeyError)"
    assert b"secret-internal-state" not in orjson.dumps(error)
    assert "secret-internal-state" in caplog.text  # the traceback is in the agent's log instead


async def test_del_succeeds_when_the_backend_breaks(caplog: pytest.LogCaptureFixture) -> None:
    """CNE08: DEL succeeds when the backend breaks."""
    backend = ScriptedBackend(RuntimeError("lost connection mid-release"))
    assert await answer_cni(backend, invocation("DEL")) == CniAnswer(0, b"")
    assert "garbage collector reclaims" in caplog.text


async def test_check_compares_with_what_the_backend_holds() -> None:
    """CNE09: Check compares with what the backend holds."""
    stdin = orjson.dumps({"cniVersion": "1.0.0", "prevResult": {"ips": [{"address": "10.0.0.7/24"}]}})
    error = error_of(await answer_cni(ScriptedBackend(), invocation("CHECK", stdin=stdin)))
    assert error["code"] == CniCode.RESERVATION_MISMATCH
    assert error["msg"] == "prevResult address 10.0.0.7/24 of eth0 is not reserved for pod ns/p"
