"""The controller's settings: upstream's environment variables (names and defaults of spiderpool-controller) + ours.

Every value is parsed once at start-up; an invalid value is an error naming the variable and the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Final

DEFAULT_HEALTH_PORT: Final = 5720
DEFAULT_METRICS_PORT: Final = 5721
DEFAULT_WEBHOOK_PORT: Final = 5722


class SettingsError(ValueError):
    """An environment variable holds an invalid value; the message names both."""


@dataclass(frozen=True, slots=True)
class GcSettings:
    """Leak collection (upstream's ``SPIDERPOOL_GC_*``; durations in seconds)."""

    enabled: bool = True  # SPIDERPOOL_GC_IP_ENABLED
    terminating_on_ready_node: bool = True  # SPIDERPOOL_GC_STATELESS_TERMINATING_POD_ON_READY_NODE_ENABLED
    terminating_on_not_ready_node: bool = True  # SPIDERPOOL_GC_STATELESS_TERMINATING_POD_ON_NOT_READY_NODE_ENABLED
    running_pod_on_empty_pod_ips: bool = False  # SPIDERPOOL_GC_ENABLE_STATELESS_RUNNING_POD_ON_EMPTY_POD_STATUS_IPS
    worker_num: int = 3  # SPIDERPOOL_GC_IP_WORKER_NUM
    channel_buffer: int = 5000  # SPIDERPOOL_GC_CHANNEL_BUFFER
    max_pod_entry_db_cap: int = 100_000  # SPIDERPOOL_GC_MAX_PODENTRY_DB_CAP
    scan_interval: float = 600.0  # SPIDERPOOL_GC_DEFAULT_INTERVAL_DURATION
    trace_gap: float = 5.0  # SPIDERPOOL_GC_TRACE_POD_GAP_DURATION
    signal_timeout: float = 3.0  # SPIDERPOOL_GC_SIGNAL_TIMEOUT_DURATION
    http_request_gap: float = 1.0  # SPIDERPOOL_GC_HTTP_REQUEST_TIME_GAP
    additional_grace_delay: float = 0.0  # SPIDERPOOL_GC_ADDITIONAL_GRACE_DELAY
    pod_entry_max_retries: int = 5  # SPIDERPOOL_GC_PODENTRY_MAX_RETRIES
    # Beyond upstream (#3893): how long the address of a scaled-down StatefulSet ordinal stays held for that ordinal.
    statefulset_hold: float = 0.0  # SPIDERPOOL_GC_STATEFULSET_IP_HOLD_DURATION (0: released as upstream)


_GC_ENV: Final[Mapping[str, str]] = {
    "enabled": "SPIDERPOOL_GC_IP_ENABLED",
    "terminating_on_ready_node": "SPIDERPOOL_GC_STATELESS_TERMINATING_POD_ON_READY_NODE_ENABLED",
    "terminating_on_not_ready_node": "SPIDERPOOL_GC_STATELESS_TERMINATING_POD_ON_NOT_READY_NODE_ENABLED",
    "running_pod_on_empty_pod_ips": "SPIDERPOOL_GC_ENABLE_STATELESS_RUNNING_POD_ON_EMPTY_POD_STATUS_IPS",
    "worker_num": "SPIDERPOOL_GC_IP_WORKER_NUM",
    "channel_buffer": "SPIDERPOOL_GC_CHANNEL_BUFFER",
    "max_pod_entry_db_cap": "SPIDERPOOL_GC_MAX_PODENTRY_DB_CAP",
    "scan_interval": "SPIDERPOOL_GC_DEFAULT_INTERVAL_DURATION",
    "trace_gap": "SPIDERPOOL_GC_TRACE_POD_GAP_DURATION",
    "signal_timeout": "SPIDERPOOL_GC_SIGNAL_TIMEOUT_DURATION",
    "http_request_gap": "SPIDERPOOL_GC_HTTP_REQUEST_TIME_GAP",
    "additional_grace_delay": "SPIDERPOOL_GC_ADDITIONAL_GRACE_DELAY",
    "pod_entry_max_retries": "SPIDERPOOL_GC_PODENTRY_MAX_RETRIES",
    "statefulset_hold": "SPIDERPOOL_GC_STATEFULSET_IP_HOLD_DURATION",
}


@dataclass(frozen=True, slots=True)
class LeaderSettings:
    """Upstream's Lease ``spiderpool-controller-leases``: duration 15 s, renew deadline 10 s, retry period 2 s."""

    lease_name: str = "spiderpool-controller-leases"
    namespace: str = "kube-system"  # SPIDERPOOL_POD_NAMESPACE
    identity: str = ""  # SPIDERPOOL_POD_NAME, else hostname + pid
    lease_duration: float = 15.0  # SPIDERPOOL_LEADER_DURATION
    renew_deadline: float = 10.0  # SPIDERPOOL_LEADER_RENEW_DEADLINE
    retry_period: float = 2.0  # SPIDERPOOL_LEADER_RETRY_PERIOD


def _parse(name: str, raw: str, default: object) -> object:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise SettingsError(f"{name}: expected true or false, got {raw!r}")
    try:
        value = int(raw) if isinstance(default, int) else float(raw.rstrip("s"))
    except ValueError:
        raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    if value < 0:
        raise SettingsError(f"{name}: must not be negative, got {raw!r}")
    return value


def gc_settings_from_env(env: Mapping[str, str] | None = None) -> GcSettings:
    env = os.environ if env is None else env
    defaults = GcSettings()
    values = {
        f.name: _parse(_GC_ENV[f.name], env[_GC_ENV[f.name]], getattr(defaults, f.name))
        for f in fields(GcSettings)
        if _GC_ENV[f.name] in env
    }
    return GcSettings(**values)  # type: ignore[arg-type]


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    return float(str(_parse(name, env[name], default))) if name in env else default


def leader_settings_from_env(env: Mapping[str, str] | None = None) -> LeaderSettings:
    env = os.environ if env is None else env
    defaults = LeaderSettings()
    return LeaderSettings(
        namespace=env.get("SPIDERPOOL_POD_NAMESPACE", defaults.namespace),
        identity=env.get("SPIDERPOOL_POD_NAME") or f"{os.uname().nodename}-{os.getpid()}",
        lease_duration=_seconds(env, "SPIDERPOOL_LEADER_DURATION", defaults.lease_duration),
        renew_deadline=_seconds(env, "SPIDERPOOL_LEADER_RENEW_DEADLINE", defaults.renew_deadline),
        retry_period=_seconds(env, "SPIDERPOOL_LEADER_RETRY_PERIOD", defaults.retry_period),
    )
