"""The demo: a real control plane, spiderpool-controller (admission webhooks, leak collection), spiderpool agents on
simulated nodes, a dual-stack pool, pods getting addresses through Debian's macvlan with
``"ipam": {"type": "spiderpool"}``; then a table of what each pod really has, and a lost CNI DEL made good.

    python -m spiderpool.testbed.demo            # run, print the tables, clean everything up
    python -m spiderpool.testbed.demo --keep     # leave it running in the background; prints how to look and stop
    python -m spiderpool.testbed.demo --stop     # stop a demo left running with --keep

Needs root (network namespaces) and what ``make setup`` installs (Debian's CNI plugins, the built package, the
Kubernetes binaries).  ``--keep`` runs the demo in a background process of its own (the control plane, the controller
and the agents are its children and die with it); ``--stop`` asks that process to clean up and waits for it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from spiderpool.devcluster.binaries import find_binary
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.devcluster.processes import raise_on_termination
from spiderpool.testbed.demo_controller import CONTROLLER_LOG
from spiderpool.testbed.demo_scenario import STEPS, DemoScenario, run_scenario
from spiderpool.testbed.prerequisites import missing_prerequisites

DEFAULT_STATE_DIR: Final = Path(".dev/demo")
READY_LINE: Final = "demo ready"
_PID_FILE: Final = "demo.pid"
_LOG_FILE: Final = "demo.log"


def say(message: str) -> None:
    print(message, flush=True)


def _running_pid(state_dir: Path) -> int | None:
    try:
        pid = int((state_dir / _PID_FILE).read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def _run(state_dir: Path, scenario: DemoScenario, *, keep: bool) -> int:
    """Everything in this process: control plane, testbed, pods, tables; with ``keep``, then wait for SIGTERM."""
    raise_on_termination(SystemExit)  # SIGTERM (--stop) unwinds through the cleanup below
    state_dir.mkdir(parents=True, exist_ok=True)
    say("spiderpool demo: pods on simulated nodes get addresses from SpiderIPPools through the real macvlan plugin")
    cold = any(find_binary(name) is None for name in ("etcd", "kube-apiserver"))
    note = " (building the Kubernetes binaries first: 20-30 min, once)" if cold else ""
    say(f"[1/{STEPS}] control plane: etcd + kube-apiserver on 127.0.0.1{note}")
    started = time.monotonic()
    plane = ControlPlane(state_dir=state_dir)
    plane.layout.remove()  # a fresh cluster each run: leftovers of an earlier, killed demo would collide
    try:
        plane.start()
        say(f"      ready at {plane.server} in {time.monotonic() - started:.1f} s; kubeconfig {plane.kubeconfig}")
        asyncio.run(
            run_scenario(plane, scenario, say=say, keep_until_signal=keep, ready_line=READY_LINE, log_dir=state_dir)
        )
    finally:
        plane.stop()
        plane.layout.remove()
    say("      control plane stopped and its state removed; nothing is left running")
    return 0


def _start_background(state_dir: Path, argv: Sequence[str]) -> int:
    """``--keep``: run the demo in a detached process, relay its progress until it is ready, then return."""
    pid = _running_pid(state_dir)
    if pid is not None:
        say(f"a demo is already running (pid {pid}); stop it with: python -m spiderpool.testbed.demo --stop")
        return 1
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / _LOG_FILE
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "spiderpool.testbed.demo", "--serve", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in this terminal must not reach it
        )
    (state_dir / _PID_FILE).write_text(str(child.pid))
    if not _relay_until_ready(log_path, child):
        say(f"the demo failed (exit {child.poll()}); its log: {log_path}")
        return 1
    say(f"\nThe demo keeps running in the background (pid {child.pid}, log {log_path}):")
    say(f"  export KUBECONFIG={(state_dir / 'kubeconfig').resolve()}")
    say("  ip netns list                        # the simulated nodes' and pods' network namespaces")
    say(f"  tail -f {state_dir / CONTROLLER_LOG}".ljust(39) + "# the controller (admission webhooks, leak collection)")
    say("Stop it (pods deleted, agents and control plane stopped, namespaces removed) with:")
    say(f"  python -m spiderpool.testbed.demo --stop --state-dir {state_dir}")
    return 0


def _relay_until_ready(log_path: Path, child: subprocess.Popen[bytes]) -> bool:
    with open(log_path, errors="replace") as log:
        while True:
            line = log.readline()
            if line:
                if line.strip() == READY_LINE:
                    return True
                print(line, end="", flush=True)
            elif child.poll() is not None:
                print(log.read(), end="", flush=True)
                return False
            else:
                time.sleep(0.05)


def _stop_background(state_dir: Path, *, wait: float = 120.0) -> int:
    pid = _running_pid(state_dir)
    if pid is None:
        say(f"no demo is running (no live process in {state_dir / _PID_FILE})")
        return 0
    say(f"stopping the demo (pid {pid}): deleting pods, stopping agents, the controller and the control plane ...")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while _running_pid(state_dir) == pid and time.monotonic() < deadline:
        time.sleep(0.2)
    if _running_pid(state_dir) == pid:
        say(f"still running after {wait:.0f} s; killing it (the next testbed sweeps what it leaves)")
        os.kill(pid, signal.SIGKILL)
    (state_dir / _PID_FILE).unlink(missing_ok=True)
    say("stopped")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m spiderpool.testbed.demo", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--keep", action="store_true", help="leave the demo running in the background")
    mode.add_argument("--stop", action="store_true", help="stop a demo left running with --keep")
    mode.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the background process of --keep
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="control plane state and logs")
    parser.add_argument("--nodes", type=int, default=2, choices=range(1, 9), metavar="1..8", help="simulated nodes")
    parser.add_argument("--pods", type=int, default=4, choices=range(1, 41), metavar="1..40", help="pods")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    missing = missing_prerequisites()
    if missing and not options.stop:
        say("the demo needs: " + "; ".join(missing) + " (`make setup` installs the packages)")
        return 1
    scenario = DemoScenario(nodes=options.nodes, pods=options.pods)
    if options.stop:
        return _stop_background(options.state_dir)
    if options.keep:
        forwarded = ["--state-dir", str(options.state_dir), "--nodes", str(options.nodes), "--pods", str(options.pods)]
        return _start_background(options.state_dir, forwarded)
    try:
        return _run(options.state_dir, scenario, keep=options.serve)
    finally:
        if options.serve:
            (options.state_dir / _PID_FILE).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
