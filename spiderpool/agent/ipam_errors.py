"""The CNI errors the IPAM service raises, each with the metrics reason it counts under.

Codes: the spec's 7 (invalid configuration: a malformed pool annotation, a pool that does not exist) and 11 (try
again later: the agent is starting, the API server is slow, the pod is not visible yet), and spiderpool's own
(>= 100, the spec leaves them to plugins) for the answers a retry will not change by itself.
"""

from __future__ import annotations

from enum import IntEnum

from spiderpool.agent import metrics
from spiderpool.core.cni_types import CniCode, CniError


class IpamCode(IntEnum):
    NO_AVAILABLE_POOL = 101  # every candidate pool rejected the pod (affinity, disabled, ...)
    POOL_EXHAUSTED = 102  # every candidate pool is full
    POD_NOT_ALIVE = 103  # terminating, or finished for good
    SUBNET_POOL_MISSING = 104  # the SpiderSubnet auto-pool the pod asks for does not exist (yet)
    IP_CONFLICT = 105  # IP conflict detection: every address tried is answered for by another host
    GATEWAY_UNREACHABLE = 106  # gateway detection: the gateway of the pod's address does not answer


class IpamError(CniError):
    """A CniError with the ``..._err_<reason>_counts`` reason it is counted under (None: failure, no reason)."""

    def __init__(self, code: int, msg: str, details: str = "", *, reason: str | None = None) -> None:
        super().__init__(code, msg, details)
        self.reason = reason


def try_again(msg: str, details: str = "", *, reason: str | None = None) -> IpamError:
    return IpamError(CniCode.TRY_AGAIN_LATER, msg, details, reason=reason)


def invalid_config(msg: str, details: str = "") -> IpamError:
    return IpamError(CniCode.INVALID_CONFIG, msg, details)


def internal(msg: str, details: str = "") -> IpamError:
    return IpamError(CniCode.INTERNAL, msg, details, reason=metrics.INTERNAL)
