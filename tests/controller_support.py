"""Running spiderpool-controller replicas as real subprocesses for the integration tests."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.devcluster.processes import ManagedProcess
from spiderpool.k8s.admission_registration import WebhookConfigurations
from spiderpool.k8s.client import ApiClient
from spiderpool.k8s.store import NotFound

LEASE = "spiderpool-controller-leases"
_LEADER_LINE = re.compile(r"LEADER (START|STOP) ([0-9.]+) (\S+)$", re.MULTILINE)
_WEBHOOK_LINE = re.compile(r"WEBHOOK (https://\S+)$", re.MULTILINE)


class ControllerProcess:
    """``python -m spiderpool.controller`` with short lease timings, in its own namespace."""

    def __init__(self, control_plane: ControlPlane, *, identity: str, namespace: str, log_dir: Path,
                 register: str = "leader", extra_args: Sequence[str] = ()) -> None:
        env = {**os.environ, "SPIDERPOOL_POD_NAMESPACE": namespace, "SPIDERPOOL_POD_NAME": identity,
               "SPIDERPOOL_LEADER_DURATION": "4", "SPIDERPOOL_LEADER_RENEW_DEADLINE": "3",
               "SPIDERPOOL_LEADER_RETRY_PERIOD": "0.5"}
        argv = [sys.executable, "-m", "spiderpool.controller", "--kubeconfig", str(control_plane.kubeconfig),
                "--webhook-host", "127.0.0.1", "--webhook-port", "0", "--health-port", "0", "--metrics-port", "0",
                "--register-webhooks", register, *extra_args]
        self.identity = identity
        self.process = ManagedProcess(f"controller[{identity}]", argv, log_path=log_dir / f"{identity}.log", env=env)

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace")

    def start(self, *, wait_for: str = "WEBHOOK https://") -> None:
        self.process.start()
        self.process.wait_until(lambda: wait_for in self.log(), timeout=30.0, interval=0.05)

    def webhook_url(self) -> str:
        """Where this replica serves its webhooks (its ``WEBHOOK https://...`` log line)."""
        found = _WEBHOOK_LINE.findall(self.log())
        if not found:
            raise AssertionError(f"controller {self.identity} has not logged its webhook URL yet")
        return str(found[-1])

    def leader_intervals(self, *, killed_at: float | None = None) -> list[tuple[float, float]]:
        intervals, start = [], None
        for kind, stamp, _ in _LEADER_LINE.findall(self.log()):
            if kind == "START":
                start = float(stamp)
            elif start is not None:
                intervals.append((start, float(stamp)))
                start = None
        if start is not None:
            intervals.append((start, killed_at or time.time()))
        return intervals


async def wait_for_registration(api: ApiClient, *, url_prefix: str = "https://127.0.0.1:",
                                wait_seconds: float = 20.0) -> dict[str, object]:
    configurations = WebhookConfigurations(api)
    async with asyncio.timeout(wait_seconds):
        while True:
            try:
                found = await configurations.get("ValidatingWebhookConfiguration", "spiderpool-controller")
                if str(found["webhooks"][0]["clientConfig"]["url"]).startswith(url_prefix):
                    return found
            except NotFound:
                pass
            await asyncio.sleep(0.1)
