"""Network namespaces and links through iproute2: create, delete, list, run a command inside one.

Namespaces are the named kind (``ip netns add``: a bind mount under ``/run/netns``), so a CNI plugin gets them as
``CNI_NETNS=/run/netns/<name>`` exactly as from a container runtime, and deleting one destroys every interface in it
(veth peers included) once no process holds it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

NETNS_DIR: Final = Path("/run/netns")
# IPv6 duplicate address detection makes a fresh address "tentative" for ~1.7 s, and the CNI plugins wait for it to
# settle; a sandbox of its own on a private fabric has no one to collide with, so the testbed turns it off (a
# runtime's sysctl tuning would do the same).  Applies alike to every IPAM compared through macvlan.
SANDBOX_SYSCTLS: Final[Mapping[str, str]] = {
    "net.ipv6.conf.all.accept_dad": "0",
    "net.ipv6.conf.default.accept_dad": "0",
}
_COMMAND_TIMEOUT: Final = 30.0


class NetnsError(RuntimeError):
    """An ``ip``/``nsenter`` command failed; the message has the command and its stderr."""


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def in_netns(name: str, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside network namespace ``name`` (nsenter: no mount namespace games, one extra exec)."""
    return ["nsenter", f"--net={netns_path(name)}", "--", *argv]


def run_command(argv: Sequence[str], *, stdin: bytes | None = None) -> str:
    """Run a short command to completion; its stdout, or NetnsError with its stderr."""
    try:
        done = subprocess.run(list(argv), input=stdin, capture_output=True, timeout=_COMMAND_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"{' '.join(argv)}: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise NetnsError(f"{' '.join(argv)}: exit {done.returncode}: {message}")
    return done.stdout.decode(errors="replace")


def run_ip(*args: str, netns: str | None = None) -> str:
    """``ip [-n netns] args...``."""
    return run_command(["ip", *(["-n", netns] if netns else []), *args])


def add_netns(name: str, *, sysctls: Mapping[str, str] = SANDBOX_SYSCTLS) -> Path:
    """A new named namespace with loopback up and ``sysctls`` set; NetnsError if the name is taken."""
    run_ip("netns", "add", name)
    try:
        run_ip("link", "set", "lo", "up", netns=name)
        if sysctls:
            run_command(in_netns(name, ["sysctl", "-q", "-w", *(f"{key}={value}" for key, value in sysctls.items())]))
    except NetnsError:
        delete_netns(name)
        raise
    return netns_path(name)


def delete_netns(name: str) -> bool:
    """Remove a namespace (and with it every interface inside); False when it did not exist."""
    if not netns_path(name).exists():
        return False
    run_ip("netns", "delete", name)
    return True


def list_netns(*, prefix: str = "") -> list[str]:
    """Names of the named namespaces starting with ``prefix``."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(name for name in names if name.startswith(prefix))


def add_veth(*, name: str, netns: str, peer_name: str, peer_netns: str) -> None:
    """A veth pair created directly in its two namespaces (nothing ever appears in the host namespace), both up."""
    run_ip("link", "add", "name", name, "netns", netns, "type", "veth", "peer", "name", peer_name, "netns", peer_netns)
    run_ip("link", "set", name, "up", netns=netns)
    run_ip("link", "set", peer_name, "up", netns=peer_netns)


def add_bridge(*, name: str, netns: str) -> None:
    run_ip("link", "add", name, "type", "bridge", netns=netns)
    run_ip("link", "set", name, "up", netns=netns)


def enslave(*, link: str, bridge: str, netns: str) -> None:
    run_ip("link", "set", link, "master", bridge, netns=netns)
