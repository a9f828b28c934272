"""Ownership of testbed resources, so that nothing outlives its testbed even when the process dies uncleanly.

Each testbed claims a short random prefix and records its owner (pid and kernel start time) in
``/run/spiderpool-testbed/<prefix>/owner``; every namespace it creates is named ``<prefix>-...`` and its agents'
sockets and logs live in that directory.  A closing testbed removes its own; a starting testbed sweeps every prefix
whose owner is no longer alive (SIGKILL, OOM, power loss of a tmpfs are all covered: /run is a tmpfs).  Agent
processes need no sweep: they get SIGKILL from the kernel when their parent dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from spiderpool.testbed.netns import delete_netns, list_netns

RUN_ROOT: Final = Path("/run/spiderpool-testbed")
# On every Pod and Node a testbed creates, so a later testbed can find those of a dead one in the API server.
PREFIX_LABEL: Final = "testbed.spiderpool.spidernet.io/prefix"
_PREFIX_LETTERS: Final = "tb"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat); None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses; the fields after its last ')' are fixed.
    return stat.rsplit(")", 1)[1].split()[19]


@dataclass(frozen=True, slots=True)
class Claim:
    """A prefix owned by this process and its run directory (sockets, logs, CNI bin dir, host-local state)."""

    prefix: str
    run_dir: Path

    def release(self) -> None:
        """Delete every namespace of the prefix, then the run directory."""
        remove_prefix(self.prefix)


def claim_prefix() -> Claim:
    """A fresh prefix (``tb`` + 6 hex digits: short, so interface and namespace names stay readable)."""
    RUN_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
    while True:
        prefix = _PREFIX_LETTERS + secrets.token_hex(3)
        run_dir = RUN_ROOT / prefix
        try:
            run_dir.mkdir(mode=0o700)
        except FileExistsError:
            continue
        pid = os.getpid()
        (run_dir / "owner").write_text(f"{pid} {_start_time(pid)}\n")
        return Claim(prefix, run_dir)


def owner_alive(run_dir: Path) -> bool:
    try:
        pid_text, start = (run_dir / "owner").read_text().split()
    except (FileNotFoundError, ValueError):
        return False
    return _start_time(int(pid_text)) == start


def live_prefixes() -> set[str]:
    """The prefixes whose owner still runs."""
    if not RUN_ROOT.is_dir():
        return set()
    return {run_dir.name for run_dir in RUN_ROOT.iterdir() if run_dir.is_dir() and owner_alive(run_dir)}


def remove_prefix(prefix: str) -> list[str]:
    """Delete the namespaces named ``<prefix>-*`` and the prefix's run directory; the namespaces deleted."""
    removed = [name for name in list_netns(prefix=f"{prefix}-") if delete_netns(name)]
    shutil.rmtree(RUN_ROOT / prefix, ignore_errors=True)
    return removed


def sweep_orphans() -> dict[str, list[str]]:
    """Remove what dead testbeds left behind: ``{prefix: [namespaces deleted]}``."""
    swept: dict[str, list[str]] = {}
    if not RUN_ROOT.is_dir():
        return swept
    for run_dir in sorted(RUN_ROOT.iterdir()):
        if run_dir.is_dir() and not owner_alive(run_dir):
            swept[run_dir.name] = remove_prefix(run_dir.name)
    return swept
