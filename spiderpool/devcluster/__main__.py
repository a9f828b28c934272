"""``python -m spiderpool.devcluster up|down|status [--state-dir .dev] [--with-controller-manager]``.

``up`` builds or locates the Kubernetes binaries, detaches a supervisor that owns etcd, kube-apiserver (and
optionally kube-controller-manager), and returns once ``/readyz`` answers 200 and the CRDs are Established; the
kubeconfig is then at ``<state-dir>/kubeconfig``.  ``down`` stops the supervisor and removes the state.  ``status``
exits 0 only when the control plane is up and ready.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import yaml

from spiderpool.devcluster.binaries import BINARIES, BuildError, ensure_binaries
from spiderpool.devcluster.cluster import StateLayout
from spiderpool.devcluster.supervisor import SupervisorFiles, is_supervisor_alive, supervise
from spiderpool.k8s.sync_api import SyncApi

_UP_TIMEOUT = 180.0
_DOWN_TIMEOUT = 60.0


def _files(args: argparse.Namespace) -> SupervisorFiles:
    return SupervisorFiles(StateLayout(Path(args.state_dir).resolve()))


def cmd_up(args: argparse.Namespace) -> int:
    files = _files(args)
    running = files.running_pid()
    if running is not None:
        if files.ready_info() is None:
            print(f"a supervisor (pid {running}) is starting already; waiting for it")
        return _wait_ready(files, alive=partial(is_supervisor_alive, running), pid=running)
    files.layout.remove()  # leftovers of a dead run: start clean
    names = BINARIES if args.with_controller_manager else ("etcd", "kube-apiserver")
    try:
        ensure_binaries(names)
    except BuildError as exc:
        print(f"error: cannot build the Kubernetes binaries: {exc}", file=sys.stderr)
        return 1
    supervisor = _spawn_supervisor(files, with_controller_manager=args.with_controller_manager)
    return _wait_ready(files, alive=lambda: supervisor.poll() is None, pid=supervisor.pid)


def _spawn_supervisor(files: SupervisorFiles, *, with_controller_manager: bool) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "spiderpool.devcluster", "supervise", "--state-dir", str(files.layout.root)]
    if with_controller_manager:
        argv.append("--with-controller-manager")
    files.layout.cluster_dir.mkdir(parents=True, exist_ok=True)
    with open(files.log_file, "ab") as log:
        # A new session: the supervisor outlives this command and ignores the terminal's Ctrl-C and hangup.
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_ready(files: SupervisorFiles, *, alive: Callable[[], bool], pid: int) -> int:
    deadline = time.monotonic() + _UP_TIMEOUT
    while time.monotonic() < deadline:
        info = files.ready_info()
        if info is not None:
            print(f"control plane ready at {info['server']}")
            print(f"kubeconfig: {info['kubeconfig']}   (export KUBECONFIG={info['kubeconfig']})")
            return 0
        if not alive():
            print(f"error: the supervisor (pid {pid}) exited; {files.log_file}:", file=sys.stderr)
            print(_tail(files.log_file), file=sys.stderr)
            return 1
        time.sleep(0.2)
    print(f"error: not ready after {_UP_TIMEOUT:.0f}s; stopping it. Log: {files.log_file}", file=sys.stderr)
    _stop_supervisor(pid)
    return 1


def cmd_down(args: argparse.Namespace) -> int:
    files = _files(args)
    pid = files.running_pid()
    if pid is None:
        print("not running")
    else:
        _stop_supervisor(pid)
        print(f"stopped (supervisor pid {pid})")
    files.layout.remove()
    if files.layout.root.is_dir() and not any(files.layout.root.iterdir()):
        files.layout.root.rmdir()
    return 0


def _stop_supervisor(pid: int) -> None:
    """SIGTERM, then SIGKILL after a grace period (its children die with it either way)."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _DOWN_TIMEOUT
    while is_supervisor_alive(pid):
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.1)


def cmd_status(args: argparse.Namespace) -> int:
    files = _files(args)
    pid, info = files.running_pid(), files.ready_info()
    if pid is None or info is None:
        print("stopped" if pid is None else f"starting (supervisor pid {pid})")
        return 1
    token = _kubeconfig_token(Path(info["kubeconfig"]))
    ready = SyncApi(server=info["server"], token=token, ca_file=Path(info["caFile"])).is_ready()
    print(f"{'ready' if ready else 'NOT READY'}: {info['server']}  supervisor pid {pid}  components {info['pids']}")
    print(f"kubeconfig: {info['kubeconfig']}")
    return 0 if ready else 1


def _kubeconfig_token(path: Path) -> str:
    document = yaml.safe_load(path.read_text())
    return str(document["users"][0]["user"]["token"])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spiderpool-devcluster", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, handler, summary in (
        ("up", cmd_up, "start in the background; returns once ready"),
        ("down", cmd_down, "stop and remove the state"),
        ("status", cmd_status, "exit 0 when up and ready"),
        ("supervise", None, argparse.SUPPRESS),
    ):
        command = commands.add_parser(name, help=summary)
        command.add_argument("--state-dir", default=".dev", help="where the kubeconfig and cluster data live")
        command.add_argument("--with-controller-manager", action="store_true")
        command.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "supervise":
        return supervise(state_dir=Path(args.state_dir), with_controller_manager=args.with_controller_manager)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
