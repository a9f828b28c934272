"""The coordinator's reply-mark processes (``iptables-restore`` in the pod's namespace) are always waited for, and
never for ever: real child processes stand in for a stuck and a failing ``iptables-restore``."""

from __future__ import annotations

import subprocess

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from spiderpool.agent.coordinator_netlink import finish_reply_marks

pytestmark = pytest.mark.e2e


def _started(*command: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stdin, process.stdin = process.stdin, None  # as start_reply_marks leaves it: rules written, stdin closed
    assert stdin is not None
    stdin.close()
    return process


def test_crm01_a_stuck_reply_mark_process_is_killed_and_reported() -> None:
    """CRM01: a reply-mark process that never exits (its stderr open, as a stuck ``iptables-restore``'s) is killed
    after the timeout and reaped, and the error names it; one that fails is reported with its stderr; one that
    succeeds adds nothing."""
    stuck = _started("sleep", "infinity")
    failing = _started("sh", "-c", "echo 'iptables-restore: line 2 failed' >&2; exit 1")
    fine = _started("true")

    with pytest.raises(NetlinkError) as raised:
        finish_reply_marks([("stuck", stuck), ("failing", failing), ("fine", fine)], timeout=0.5)

    message = str(raised.value.args[-1])
    assert "stuck: did not finish within 0.5s (killed)" in message
    assert "failing: iptables-restore: line 2 failed" in message
    assert "fine" not in message
    assert stuck.returncode == -9  # killed (SIGKILL) and reaped
    assert (failing.returncode, fine.returncode) == (1, 0)
