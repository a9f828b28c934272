"""The record combiner's wire format (agent -> controller) and its one decision, pure.

An agent asks the controller's combiner to write one pool record for it (``POST /v2/pool-records``): an allocation
names the pod, its UID, the NIC and the agent's candidate addresses in its own order (its first choice first, then
the next free ones its allocator sees); a release names the address and the UID.  The combiner applies every request
that arrives while a write of that pool is in flight to the next write, so one compare-and-swap carries several
agents' records.  An allocation takes the first candidate no record (nor an earlier request of the same write)
holds; the agent decides which addresses are eligible (reserved, excluded, overlapping), the combiner only picks.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any, Final, Literal

from spiderpool.core.allocator import AllocatorError, format_address, parse_address
from spiderpool.core.errors import FieldError

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

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"op": self.op, "pool": self.pool, "podUid": self.pod_uid, "node": self.node}
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
    node = _text(body, "node", required=False)
    if op == "release":
        return CombineRequest("release", pool, uid, ip=_address(body.get("ip"), field="ip"), node=node)
    if op != "allocate":
        raise FieldError(field="op", value=op, reason="must be 'allocate' or 'release'")
    raw = body.get("candidates")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_CANDIDATES:
        raise FieldError(field="candidates", value=raw if not isinstance(raw, list) else len(raw),
                         reason=f"must be a list of 1 to {MAX_CANDIDATES} addresses")
    candidates = tuple(_address(item, field="candidates") for item in raw)
    return CombineRequest("allocate", pool, uid, pod=_text(body, "pod"), nic=_text(body, "nic", required=False),
                          candidates=candidates, node=node)


def first_free(candidates: tuple[str, ...], taken: Set[str]) -> str | None:
    """The first candidate nobody holds, in the agent's order; None when every one is taken."""
    return next((ip for ip in candidates if ip not in taken), None)


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
