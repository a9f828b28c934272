"""The agent's namespace helper (``spiderpool.agent.netns``) against real network namespaces (root)."""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path

import pytest

from spiderpool.agent.netns import NetnsGone, run_in_netns, socket_in_netns
from spiderpool.testbed.netns import add_netns, delete_netns, netns_path, run_ip

pytestmark = pytest.mark.e2e
_RP_FILTER = Path("/proc/sys/net/ipv4/conf/all/rp_filter")


def _own_netns() -> tuple[int, int]:
    info = os.stat("/proc/thread-self/ns/net")
    return info.st_dev, info.st_ino


def test_ns01_work_runs_inside_and_the_caller_never_moves() -> None:
    """NS01: work, sysctl writes and sockets made by ``run_in_netns`` live in the target namespace; the calling
    thread stays in its own; a missing namespace is ``NetnsGone``."""
    name = f"ns01-{uuid.uuid4().hex[:8]}"
    add_netns(name, sysctls={})
    try:
        path = str(netns_path(name))
        before = _own_netns()
        seen = run_in_netns(path, _own_netns)
        assert seen != before
        assert seen == (os.stat(path).st_dev, os.stat(path).st_ino)
        assert _own_netns() == before
        # The links a socket made in the thread sees (if_nameindex asks the kernel through it): exactly the
        # namespace's, as `ip` lists them there, with a veth pair only the namespace has.
        run_ip("link", "add", "ns01a", "type", "veth", "peer", "name", "ns01b", netns=name)
        listed = json.loads(run_ip("-j", "link", "show", netns=name))
        inside_links = run_in_netns(path, socket.if_nameindex)
        assert sorted(inside_links) == sorted((link["ifindex"], link["ifname"]) for link in listed)
        assert {"ns01a", "ns01b"} <= {link_name for _, link_name in inside_links}
        assert not {"ns01a", "ns01b"} & {link_name for _, link_name in socket.if_nameindex()}

        def write_rp_filter() -> None:
            _RP_FILTER.write_text("2")

        outside = _RP_FILTER.read_text().strip()
        run_in_netns(path, write_rp_filter)
        assert _RP_FILTER.read_text().strip() == outside
        inside = run_in_netns(path, lambda: _RP_FILTER.read_text().strip())
        assert inside == "2"
        run_ip("addr", "add", "127.0.0.2/8", "dev", "lo", netns=name)
        with socket_in_netns(path, socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.2", 0))  # only the namespace's loopback has this address
        with pytest.raises(ValueError, match="boom"):
            run_in_netns(path, lambda: (_ for _ in ()).throw(ValueError("boom")))
        assert _own_netns() == before
    finally:
        delete_netns(name)
    with pytest.raises(NetnsGone):
        run_in_netns(path, _own_netns)
