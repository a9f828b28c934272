"""The coordinator's reply-mark processes (``iptables-restore`` in the pod's namespace) are always waited for, and
never for ever: real child processes stand in for a stuck and a failing ``iptables-restore``."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from spiderpool.agent import coordinator_netlink
from spiderpool.agent.coordinator_netlink import finish_reply_marks
from spiderpool.core.coordinator_facts import MarkReplies

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


def test_crm02_first_family_reaped_when_the_second_cannot_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """CRM02: when the second family's ``ip6tables-restore`` cannot be started, the first family's process (already
    running) is waited for before the error propagates: no zombie left behind (before: it was never waited for).
    ``true`` stands in for the first family's restore, a missing path for the second's."""
    started: list[subprocess.Popen[bytes]] = []

    class Recorded(subprocess.Popen[bytes]):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(subprocess, "Popen", Recorded)
    monkeypatch.setitem(coordinator_netlink._RESTORE, 4, "true")
    monkeypatch.setitem(coordinator_netlink._RESTORE, 6, "/nonexistent/ip6tables-restore")

    with pytest.raises(NetlinkError) as raised:
        coordinator_netlink.start_reply_marks(MarkReplies("veth0", (4, 6)))

    assert "/nonexistent/ip6tables-restore" in str(raised.value.args[-1])
    assert len(started) == 1
    assert started[0].returncode == 0  # waited for (reaped), not left running or a zombie
