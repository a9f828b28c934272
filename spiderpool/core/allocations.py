"""Codec for ``SpiderIPPool.status.allocatedIPs``: a JSON string holding ``ip -> {"pod": "ns/name", "podUid": ...}``.

The format is upstream's (Go ``PoolIPAllocations``, written with ``json.Marshal``: compact, keys sorted, field
absent when the map is empty), plus one key of ours: ``"nic"``, the pod's interface the address serves, written when
known so that pods without a SpiderEndpoint (lean endpoints) still say which NIC holds which address.  Upstream's
decoder (Go ``json.Unmarshal`` into ``PoolIPAllocation{NamespacedName "pod", PodUID "podUid"}``, no
``DisallowUnknownFields``) ignores it; upstream's agent drops it when it rewrites a pool.  ``allocatedIPCount`` is
derived from the records and ``totalIPCount`` from the spec (``IPPoolSpec.total_ip_count``); neither is kept anywhere
else in the core.

Decoding is on the agent's rebuild path (a pool holds up to ~16,000 records), so the common case, a canonical IPv4
key with exact field names, is checked with one regex match and three type checks per record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from spiderpool.core.addressing import format_ip, is_canonical_ipv6, match_canonical_ipv4, parse_ip_text
from spiderpool.core.errors import AllocationsFormatError

__all__ = [
    "AllocationsFormatError",
    "PoolIPAllocation",
    "allocated_ip_count",
    "decode_allocated_ips",
    "encode_allocated_ips",
]

_FIELD = "status.allocatedIPs"
_match_pod = re.compile(r"[^/]+/[^/]+").fullmatch


@dataclass(frozen=True, slots=True)
class PoolIPAllocation:
    """One record: which pod (``namespace/name``) and which pod UID hold an address, and for which NIC ("" unknown)."""

    pod: str
    pod_uid: str
    nic: str = ""

    @property
    def namespace(self) -> str:
        return self.pod.partition("/")[0]

    @property
    def name(self) -> str:
        return self.pod.partition("/")[2]


def encode_allocated_ips(records: Mapping[str, PoolIPAllocation]) -> str | None:
    """The status string for ``records`` (keys sorted like Go's ``json.Marshal``); None for no records.

    Go's encoder also escapes ``<``, ``>`` and ``&``; Kubernetes names and UIDs cannot contain them.
    """
    if not records:
        return None
    body = {ip: {"nic": record.nic, "pod": record.pod, "podUid": record.pod_uid} if record.nic
            else {"pod": record.pod, "podUid": record.pod_uid} for ip, record in records.items()}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


def allocated_ip_count(records: Mapping[str, PoolIPAllocation]) -> int:
    """``status.allocatedIPCount``: always the number of records, never a separately kept counter."""
    return len(records)


def decode_allocated_ips(text: str | None, *, version: int | None = None) -> dict[str, PoolIPAllocation]:
    """The records of a status string (None or "" -> {}); AllocationsFormatError says what is malformed and where.

    Keys come back canonical (``fd00::0:1`` -> ``fd00::1``); with ``version`` every key must be of that family.
    """
    if not text:
        return {}
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise AllocationsFormatError(f"{_FIELD} is not valid JSON: {error}") from None
    if type(data) is not dict:
        raise AllocationsFormatError(f"{_FIELD} must be a JSON object mapping IP to record, got {type(data).__name__}")
    records: dict[str, PoolIPAllocation] = {}
    irregular = False
    for key, value in data.items():
        # Fast path: upstream's own output (exact field names, canonical keys); anything else takes the careful one.
        if type(value) is dict:
            pod = value.get("pod")
            uid = value.get("podUid")
            nic = value.get("nic", "")
            if (
                type(pod) is str and type(uid) is str and uid and type(nic) is str and _match_pod(pod)
                and ((version != 6 and match_canonical_ipv4(key)) or (version != 4 and is_canonical_ipv6(key)))
                and not (irregular and key in records)
            ):
                records[key] = PoolIPAllocation(pod, uid, nic)
                continue
        irregular = True
        pod, uid, nic = _record_fields(key, value)
        canonical = _canonical_key(key, version)
        if canonical in records:
            raise AllocationsFormatError(f"{_FIELD} key {key!r}: the same address as another key ({canonical})")
        records[canonical] = PoolIPAllocation(pod, uid, nic)
    return records


def _record_fields(key: str, value: object) -> tuple[str, str, str]:
    if type(value) is not dict:
        raise AllocationsFormatError(f"{_FIELD} key {key!r}: record must be an object with pod and podUid")
    pod = value.get("pod")
    uid = value.get("podUid")
    if pod is None or uid is None:
        # Go's decoder matches field names case-insensitively; honour records written by other tools that way.
        pod, uid = _folded_fields(value, pod, uid)
    if type(pod) is not str:
        raise AllocationsFormatError(f"{_FIELD} key {key!r}: 'pod' must be a string 'namespace/name', got {pod!r}")
    if type(uid) is not str or not uid:
        raise AllocationsFormatError(f"{_FIELD} key {key!r}: 'podUid' must be a non-empty string, got {uid!r}")
    namespace, slash, name = pod.partition("/")
    if not slash or not namespace or not name or "/" in name:
        raise AllocationsFormatError(f"{_FIELD} key {key!r}: 'pod' must be 'namespace/name', got {pod!r}")
    nic = value.get("nic", "")
    if type(nic) is not str:
        raise AllocationsFormatError(f"{_FIELD} key {key!r}: 'nic' must be a string (an interface name), got {nic!r}")
    return pod, uid, nic


def _folded_fields(value: dict[str, object], pod: object, uid: object) -> tuple[object, object]:
    for field_name, field_value in value.items():
        folded = field_name.lower()
        if folded == "pod" and pod is None:
            pod = field_value
        elif folded == "poduid" and uid is None:
            uid = field_value
    return pod, uid


def _canonical_key(key: str, version: int | None) -> str:
    try:
        found, value = parse_ip_text(key)
    except ValueError as error:
        raise AllocationsFormatError(f"{_FIELD} key {key!r} is not an IP address ({error})") from None
    if version is not None and found != version:
        raise AllocationsFormatError(f"{_FIELD} key {key!r} is not an IPv{version} address")
    return format_ip(value, version=found)
