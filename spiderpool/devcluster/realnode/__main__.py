"""``python -m spiderpool.devcluster.realnode up|down|status [--state-dir .dev-real]``: a real node to play with.

``up`` builds or locates everything (cached under ~/.cache/spiderpool), detaches a supervisor that owns the control
plane, containerd, kubelet and kube-scheduler, installs the chart from the working tree and returns once the agent
and the controller are ready; ``kubectl`` (v1.36.3, built with the rest) is then at ``<state-dir>/bin/kubectl`` and
the kubeconfig at ``<state-dir>/cp/kubeconfig``.  ``down`` stops it all (pods deleted first, kernel settings restored)
and removes the state.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from spiderpool.devcluster.binaries import BINARIES, NODE_BINARIES, BuildError, ensure_binaries
from spiderpool.devcluster.processes import raise_on_termination
from spiderpool.devcluster.realnode import chart
from spiderpool.devcluster.realnode.cleanup import remove_state
from spiderpool.devcluster.realnode.images import pause_image
from spiderpool.devcluster.realnode.layout import RealNodeError
from spiderpool.devcluster.realnode.multus import ensure_multus
from spiderpool.devcluster.realnode.node import RealNode
from spiderpool.devcluster.realnode.project_image import project_image

_UP_TIMEOUT = 3600.0  # a cold machine builds kubelet, Multus and the images first
_PROJECT = Path(__file__).resolve().parents[3]


def _files(state_dir: Path) -> tuple[Path, Path, Path]:
    return state_dir / "supervisor.pid", state_dir / "ready.json", state_dir / "supervisor.log"


def _alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"spiderpool.devcluster.realnode" in cmdline else None


def _is_node_state(state_dir: Path) -> bool:
    """Empty, absent, or made by a real node: only then may it be removed."""
    if not state_dir.exists():
        return True
    entries = {p.name for p in state_dir.iterdir()}
    return not entries or "supervisor.log" in entries


def cmd_up(state_dir: Path) -> int:
    pid_file, ready, log = _files(state_dir)
    if not _is_node_state(state_dir):
        print(f"error: {state_dir} holds files of something else; choose another --state-dir", file=sys.stderr)
        return 1
    if _alive(pid_file) is None:
        remove_state(state_dir)
        state_dir.mkdir(parents=True)
        with open(log, "ab") as out:
            subprocess.Popen([sys.executable, "-m", "spiderpool.devcluster.realnode", "supervise", "--state-dir",
                              str(state_dir)], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
    print(f"starting (log: {log}; a cold machine builds kubelet, Multus and the images first)", flush=True)
    started = time.monotonic()
    while time.monotonic() < started + _UP_TIMEOUT:
        if ready.exists():
            info = json.loads(ready.read_text())
            print(f"real node {info['node']} ready; chart installed\n"
                  f"  export KUBECONFIG={info['kubeconfig']} PATH={state_dir / 'bin'}:$PATH\n"
                  f"  kubectl get pods -A -o wide\ntimings: {json.dumps(info['timings'])}")
            return 0
        if not pid_file.exists() and time.monotonic() > started + 10:
            print(f"error: the supervisor exited; {log}:\n" + "\n".join(log.read_text().splitlines()[-40:]),
                  file=sys.stderr)
            return 1
        time.sleep(0.5)
    print(f"error: not ready after {_UP_TIMEOUT:.0f}s (log {log})", file=sys.stderr)
    return 1


def cmd_down(state_dir: Path) -> int:
    pid_file, _, _ = _files(state_dir)
    pid = _alive(pid_file)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        while _alive(pid_file) == pid and Path(f"/proc/{pid}").exists():
            time.sleep(0.2)
        print(f"stopped (supervisor pid {pid})")
    else:
        print("not running")
    if _is_node_state(state_dir):
        remove_state(state_dir)
    return 0


def supervise(state_dir: Path) -> int:
    raise_on_termination()
    pid_file, ready, _ = _files(state_dir)
    pid_file.write_text(f"{os.getpid()}\n")
    node = RealNode(state_dir=state_dir, project=_PROJECT)
    try:
        node.start()
        chart.install(node)
        (state_dir / "bin").mkdir(exist_ok=True)
        (state_dir / "bin" / "kubectl").symlink_to(node.binaries["kubectl"])
        info = {"node": node.node_name, "kubeconfig": str(node.kubeconfig), "timings": node.timings.steps}
        ready.write_text(json.dumps(info, indent=2) + "\n")
        while node.kubelet is not None and node.kubelet.running() and not node.running_plane().exited_components():
            time.sleep(1.0)
        print("a component exited; stopping the node", file=sys.stderr, flush=True)
        return 1
    except (SystemExit, KeyboardInterrupt):
        return 0
    finally:
        node.stop()
        ready.unlink(missing_ok=True)
        pid_file.unlink(missing_ok=True)


def prepare(_state_dir: Path) -> int:
    """Build or locate every part (what `make setup` runs, so tests and `up` start from the cache)."""
    try:
        ensure_binaries([*BINARIES, *NODE_BINARIES])
        ensure_multus()
        for image in (pause_image(), project_image(_PROJECT)):
            print(f"{image.name}\t{image.archive}")
    except (BuildError, RealNodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spiderpool.devcluster.realnode", description=__doc__)
    parser.add_argument("command", choices=("prepare", "up", "down", "supervise"))
    parser.add_argument("--state-dir", default=".dev-real")
    args = parser.parse_args(argv)
    state_dir = Path(args.state_dir).resolve()
    handlers = {"prepare": prepare, "up": cmd_up, "down": cmd_down, "supervise": supervise}
    return handlers[args.command](state_dir)


if __name__ == "__main__":
    sys.exit(main())
