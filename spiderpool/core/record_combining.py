"""The record combiner's wire format (agent -> controller) and its one decision, pure.

An agent asks the controller's combiner to write one pool record for it (``POST /v2/pool-records``): an allocation
names the pod, its UID, the NIC and the agent's candidate addresses in its own order (its first choice first, then
the next free ones its allocator sees); a release names the address and the UID.  The combiner applies every request
that arrives while a write of that pool is in flight to the next write, so one compare-and-swap carries several
agents' records.  An allocation takes the first candidate no record (nor an earlier request of the same write)
holds and that is eligible in the pool object being written: inside ``spec.ips``, outside ``spec.excludeIPs``, of
the pool's IP family (:class:`PoolEligibility`; no component trusts another's view).  Reserved IPs and what older
overlapping pools own stay the agent's decision: the controller keeps no watch of them.  An allocation may carry
the agent's ``deadline`` (Unix seconds, the agent's clock): the time after which the agent no longer waits for the
answer, so the combiner must not write the record any more (the pod may be gone by then).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any, Final, Literal

from spiderpool.core.addressing import IPRange, merge_ranges
from spiderpool.core.allocator import AllocatorError, format_address, parse_address
from spiderpool.core.errors import FieldError
from spiderpool.core.specs import IPPoolSpec

PATH: Final = "/v2/pool-records"
CONTENTION_WINDOW: Final = 30.0  # seconds a pool counts as contended after another writer was seen
MAX_CANDIDATES: Final = 512  # a request larger than this is refused: nobody needs it, and it bounds the work

Operation = Literal["allocate", "release"]


@dataclass(frozen=True, slots=True)
class CombineRequest:
    """One record to write: ``allocate`` (``pod``, ``pod_uid``, ``nic``, ``candidates``) or ``release`` (``ip``)."""

    op: Operation
    pool: str
    pod_uid: str
    pod: str = ""
    nic: str = ""
    ip: str = ""
    candidates: tuple[str, ...] = ()
    node: str = ""  # the asking agent's node: the combiner tells it whether other nodes write this pool too
    deadline: float | None = None  # Unix seconds (agent's clock) after which the agent no longer waits; None: none

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"op": self.op, "pool": self.pool, "podUid": self.pod_uid, "node": self.node}
        if self.deadline is not None:
            body["deadline"] = self.deadline
        if self.op == "allocate":
            body |= {"pod": self.pod, "nic": self.nic, "candidates": list(self.candidates)}
        else:
            body["ip"] = self.ip
        return body


def _text(body: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = body.get(key, "")
    if not isinstance(value, str) or (required and not value):
        raise FieldError(field=key, value=value, reason="must be a non-empty string" if required else "not a string")
    return value


def _address(text: object, *, field: str) -> str:
    """The address in upstream's canonical form, through the compiled parser (a request carries up to hundreds)."""
    if not isinstance(text, str):
        raise FieldError(field=field, value=text, reason="not an IP address")
    try:
        return format_address(*parse_address(text))
    except AllocatorError:
        raise FieldError(field=field, value=text, reason="not an IP address") from None


def parse_request(body: object) -> CombineRequest:
    """A request from its JSON; FieldError naming the first bad field."""
    if not isinstance(body, Mapping):
        raise FieldError(field="body", value=type(body).__name__, reason="must be a JSON object")
    op, pool, uid = _text(body, "op"), _text(body, "pool"), _text(body, "podUid")
    node, deadline = _text(body, "node", required=False), _deadline(body.get("deadline"))
    if op == "release":
        return CombineRequest("release", pool, uid, ip=_address(body.get("ip"), field="ip"), node=node,
                              deadline=deadline)
    if op != "allocate":
        raise FieldError(field="op", value=op, reason="must be 'allocate' or 'release'")
    raw = body.get("candidates")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_CANDIDATES:
        raise FieldError(field="candidates", value=raw if not isinstance(raw, list) else len(raw),
                         reason=f"must be a list of 1 to {MAX_CANDIDATES} addresses")
    candidates = tuple(_address(item, field="candidates") for item in raw)
    return CombineRequest("allocate", pool, uid, pod=_text(body, "pod"), nic=_text(body, "nic", required=False),
                          candidates=candidates, node=node, deadline=deadline)


def _deadline(value: object) -> float | None:
    """The optional deadline (absent from older agents' requests): a finite, positive number of Unix seconds."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise FieldError(field="deadline", value=value, reason="must be a positive number of Unix seconds")
    return float(value)


@dataclass(frozen=True, slots=True)
class PoolEligibility:
    """Which addresses a pool object lets anyone record: its IP family, inside ``ips``, outside ``excludeIPs``."""

    version: int
    usable: tuple[IPRange, ...]  # merged, sorted
    starts: tuple[int, ...]

    @classmethod
    def of(cls, spec: IPPoolSpec) -> PoolEligibility:
        usable = tuple(merge_ranges(spec.usable_ranges))
        return cls(spec.ip_version, usable, tuple(first for first, _ in usable))

    def refusal(self, ip: str) -> str | None:
        """Why ``ip`` (canonical) may not be recorded in this pool; None when it may."""
        version, value = parse_address(ip)
        if version != self.version:
            return f"{ip} is not IPv{self.version}"
        index = bisect_right(self.starts, value) - 1
        if index < 0 or value > self.usable[index][1]:
            return f"{ip} is not in the pool's ips minus excludeIPs"
        return None


@dataclass(frozen=True, slots=True)
class NoCandidate:
    """Why no candidate of a request can be recorded: ``taken`` are held, ``ineligible`` says why the rest may not."""

    offered: int
    taken: int
    ineligible: tuple[str, ...]

    def __str__(self) -> str:
        reasons = "; ".join(self.ineligible[:3]) + (" ..." if len(self.ineligible) > 3 else "")
        return (f"none of the {self.offered} candidates can be recorded: {self.taken} taken, "
                f"{len(self.ineligible)} not eligible" + (f" ({reasons})" if reasons else ""))


def first_eligible(candidates: tuple[str, ...], taken: Set[str], pool: PoolEligibility) -> str | NoCandidate:
    """The first candidate, in the agent's order, that nobody holds and the pool lets be recorded."""
    held, ineligible = 0, []
    for ip in candidates:
        if ip in taken:
            held += 1
            continue
        refusal = pool.refusal(ip)
        if refusal is None:
            return ip
        ineligible.append(refusal)
    return NoCandidate(len(candidates), held, tuple(ineligible))


class NodeActivity:
    """Which nodes asked for records of which pool, and when: whether a pool is contended from a node's view (another
    node asked within ``window`` seconds).  Times are the caller's clock; nothing here reads one."""

    def __init__(self, *, window: float) -> None:
        self._window = window
        self._seen: dict[str, dict[str, float]] = {}

    def asked(self, pool: str, node: str, *, now: float) -> bool:
        """Record ``node``'s request for ``pool`` at ``now``; True when another node asked within the window."""
        nodes = self._seen.setdefault(pool, {})
        recent = now - self._window
        for name in [name for name, at in nodes.items() if at < recent]:
            del nodes[name]  # bounded by the nodes active in the window
        others = any(name != node for name in nodes)
        nodes[node] = now
        return others
