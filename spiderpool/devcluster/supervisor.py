"""The background process behind ``python -m spiderpool.devcluster up``: owns the control plane until told to stop.

It writes ``cluster/supervisor.pid`` at once and ``cluster/ready.json`` once the apiserver is ready and the CRDs are
Established; ``down`` sends it SIGTERM.  Its children die with it even if it is SIGKILLed (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spiderpool.devcluster.cluster import ControlPlane, StateLayout
from spiderpool.devcluster.processes import raise_on_termination

_MODULE = "spiderpool.devcluster"


@dataclass(frozen=True)
class SupervisorFiles:
    layout: StateLayout

    @property
    def pid_file(self) -> Path:
        return self.layout.cluster_dir / "supervisor.pid"

    @property
    def ready_file(self) -> Path:
        return self.layout.cluster_dir / "ready.json"

    @property
    def log_file(self) -> Path:
        return self.layout.cluster_dir / "supervisor.log"

    def running_pid(self) -> int | None:
        """The supervisor's pid if one is alive for this state dir (a recycled pid or a zombie does not count)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if is_supervisor_alive(pid) else None

    def ready_info(self) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = json.loads(self.ready_file.read_text())
        except (OSError, ValueError):
            return None
        return info


def is_supervisor_alive(pid: int) -> bool:
    proc = Path(f"/proc/{pid}")
    try:
        cmdline = (proc / "cmdline").read_bytes()
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return _MODULE.encode() in cmdline and state not in ("Z", "X")


def supervise(*, state_dir: Path, with_controller_manager: bool) -> int:
    """Run the control plane until SIGTERM/SIGINT/SIGHUP or until a component dies; returns the exit code."""
    raise_on_termination()
    files = SupervisorFiles(StateLayout(state_dir.resolve()))
    files.layout.cluster_dir.mkdir(parents=True, exist_ok=True)
    files.pid_file.write_text(f"{os.getpid()}\n")
    plane = ControlPlane(state_dir=state_dir, with_controller_manager=with_controller_manager)
    try:
        plane.start()
        crds = plane.sync_api().install_crds()
        _write_ready(files, plane, crds)
        _log(f"ready: {plane.server}, kubeconfig {plane.kubeconfig}, components {plane.pids()}")
        return _watch(plane)
    except (SystemExit, KeyboardInterrupt):
        _log("stopping on signal")
        return 0
    finally:
        plane.stop()
        files.ready_file.unlink(missing_ok=True)
        files.pid_file.unlink(missing_ok=True)
        _log("stopped")


def _write_ready(files: SupervisorFiles, plane: ControlPlane, crds: list[str]) -> None:
    info = {
        "server": plane.server,
        "kubeconfig": str(plane.kubeconfig),
        "caFile": str(plane.ca_file),
        "supervisorPid": os.getpid(),
        "pids": plane.pids(),
        "crds": crds,
    }
    partial = files.ready_file.with_suffix(".partial")
    partial.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(partial, files.ready_file)  # readers never see half a file


def _watch(plane: ControlPlane) -> int:
    while True:
        exited = plane.exited_components()
        if exited:
            _log(f"component(s) exited unexpectedly: {', '.join(exited)}; stopping the rest (logs in the state dir)")
            return 1
        time.sleep(1.0)


def _log(message: str) -> None:
    with contextlib.suppress(OSError):
        print(f"[devcluster supervisor {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
