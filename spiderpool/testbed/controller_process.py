"""The spiderpool-controller as a child process of the testbed (demo, e2e): ``python -m spiderpool.controller``.

It serves its admission webhooks on an ephemeral port of 127.0.0.1 and, once it holds the Lease, registers them with
the API server pointing at itself; a stop (SIGTERM) removes them again.  Like the agents it dies with its parent
(``ManagedProcess``), so a killed demo or test run leaves no controller behind; but a SIGKILLed controller leaves its
configurations pointing at a dead server (``failurePolicy: Fail``), which is why the testbed always stops it.

Registration is not enforcement: the API server learns of new webhook configurations through its own informer, a
moment later.  ``wait_for_admission`` waits until both webhooks are really called.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from spiderpool.controller.certificates import generate_serving_certificate
from spiderpool.devcluster.processes import ManagedProcess
from spiderpool.k8s.admission_registration import KINDS as WEBHOOK_KINDS
from spiderpool.k8s.admission_registration import WebhookConfigurations
from spiderpool.k8s.api_requests import request_json
from spiderpool.k8s.client import ApiClient, make_api_client
from spiderpool.k8s.store import NotFound, StoreError

POOL_CIDR_LABEL: Final = "ipam.spidernet.io/ippool-cidr"
WEBHOOK_CONFIGURATION: Final = "spiderpool-controller"  # the name a leader registers under (``leader`` mode)
_WEBHOOK_LINE: Final = re.compile(r"WEBHOOK (https://\S+)$", re.MULTILINE)
_LEADER_LINE: Final = "LEADER START"
_DRY_RUN_POOLS: Final = "/apis/spiderpool.spidernet.io/v2beta1/spiderippools?dryRun=All"
# A block no test or demo uses, so the probe never collides with a real pool.
_PROBE_SUBNET: Final = "10.250.255.0/24"


@dataclass(frozen=True, slots=True)
class ControllerOptions:
    kubeconfig: Path
    log_path: Path
    namespace: str = "kube-system"  # of the leader Lease and the admission ledger Leases
    identity: str = "testbed-controller"
    environment: Mapping[str, str] = field(default_factory=dict)  # e.g. SPIDERPOOL_GC_* or leader timings
    # Where a serving certificate is written for it (None: it generates its own, known to the API server only).
    # With one, agents can trust it too: ``ControllerProcess.combiner_args`` points them at its record combiner.
    tls_dir: Path | None = None

    def tls_files(self) -> tuple[Path, Path, Path] | None:
        if self.tls_dir is None:
            return None
        return self.tls_dir / "tls.crt", self.tls_dir / "tls.key", self.tls_dir / "ca.crt"

    def argv(self) -> list[str]:
        tls = self.tls_files()
        files = [] if tls is None else ["--tls-cert-file", str(tls[0]), "--tls-key-file", str(tls[1]),
                                         "--tls-ca-file", str(tls[2])]
        return [
            sys.executable,
            "-m",
            "spiderpool.controller",
            "--kubeconfig",
            str(self.kubeconfig),
            "--webhook-host",
            "127.0.0.1",
            "--webhook-port",
            "0",
            "--health-port",
            "0",
            "--metrics-port",
            "0",
            *files,
        ]

    def env(self) -> dict[str, str]:
        identity = {"SPIDERPOOL_POD_NAMESPACE": self.namespace, "SPIDERPOOL_POD_NAME": self.identity}
        return {**os.environ, **identity, **self.environment}


class ControllerProcess:
    def __init__(self, options: ControllerOptions) -> None:
        self.options = options
        self._process = ManagedProcess(
            f"spiderpool-controller[{options.identity}]", options.argv(), log_path=options.log_path, env=options.env()
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process.running() else None

    def running(self) -> bool:
        return self._process.running()

    def log(self) -> str:
        try:
            return self.options.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def webhook_url(self) -> str | None:
        """Where the latest run serves its webhooks (its ``WEBHOOK https://...`` line), None before it serves."""
        found = _WEBHOOK_LINE.findall(self.log())
        return found[-1] if found else None

    def combiner_args(self) -> list[str]:
        """The agent flags that send pool records through this controller's record combiner (once it serves)."""
        url, tls = self.webhook_url(), self.options.tls_files()
        if url is None or tls is None:
            raise RuntimeError("the controller serves no record combiner agents can trust (no tls_dir, or not started)")
        return ["--combiner-url", url, "--combiner-ca-file", str(tls[2])]

    def start(self, *, timeout: float = 60.0) -> None:
        """Start and wait until it leads (the leader registers the webhooks and runs leak collection);
        ProcessExitedError (with the log tail) if it dies, TimeoutError if slow."""
        tls = self.options.tls_files()
        if tls is not None and not tls[0].exists():
            certificate = generate_serving_certificate(hosts=("127.0.0.1",))
            certificate.write(tls[0].parent)
            tls[2].write_bytes(certificate.ca_pem)
        runs_before = self.log().count(_LEADER_LINE)
        self._process.start()
        try:
            self._process.wait_until(lambda: self.log().count(_LEADER_LINE) > runs_before, timeout=timeout,
                                     interval=0.05)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM: it removes its webhook configurations and releases the Lease; SIGKILL after 15 s."""
        self._process.stop(grace=15.0)

    def log_tail(self, lines: int = 40) -> str:
        return self._process.log_tail(lines)


async def wait_for_admission(kubeconfig: Path, *, within: float = 30.0) -> float:
    """Wait until the API server sends spiderpool pools through both webhooks: a dry-run pool comes back mutated
    (its CIDR label set) and an invalid one is refused.  Returns the seconds waited; TimeoutError if never."""
    started = time.monotonic()
    api = await make_api_client(kubeconfig=kubeconfig)
    try:
        async with asyncio.timeout(within):
            while True:
                if await _mutated(api) and await _refused(api):
                    break
                await asyncio.sleep(0.1)
    finally:
        await api.close()
    return time.monotonic() - started


def _probe_pool(name: str, **spec: object) -> dict[str, object]:
    return {"apiVersion": "spiderpool.spidernet.io/v2beta1", "kind": "SpiderIPPool", "metadata": {"name": name},
            "spec": {"subnet": _PROBE_SUBNET, "ips": ["10.250.255.10"], **spec}}


async def _mutated(api: ApiClient) -> bool:
    answer = await request_json(api, "POST", _DRY_RUN_POOLS, what="dry-run create of the admission probe pool",
                                body=_probe_pool("testbed-admission-probe"))
    return POOL_CIDR_LABEL in answer.get("metadata", {}).get("labels", {})


async def _refused(api: ApiClient) -> bool:
    """A gateway outside its subnet is stored by the API server alone and refused by the validating webhook."""
    try:
        await request_json(api, "POST", _DRY_RUN_POOLS, what="dry-run create of an invalid probe pool",
                           body=_probe_pool("testbed-admission-probe-invalid", gateway="10.250.254.1"))
    except StoreError as refusal:
        return "denied" in str(refusal)
    return False


async def registered_webhooks(kubeconfig: Path, *, name: str = WEBHOOK_CONFIGURATION) -> list[str]:
    """The kinds of webhook configuration called ``name`` that exist now (empty once a controller cleaned up)."""
    api = await make_api_client(kubeconfig=kubeconfig)
    found = []
    try:
        configurations = WebhookConfigurations(api)
        for kind in WEBHOOK_KINDS:
            try:
                await configurations.get(kind, name)
            except NotFound:
                continue
            found.append(kind)
    finally:
        await api.close()
    return found
