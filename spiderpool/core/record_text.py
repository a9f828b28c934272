"""Incremental decoding and encoding of one pool's successive ``status.allocatedIPs`` strings.

Every agent sees every write to a shared pool (its own writes' answers, the watch events of everyone's), and each
string differs from the one before by a few records.  Decoding each from scratch costs a Python loop over every
record (~1.5 µs each: 15 ms of CPU per ADD with ten agents racing for a pool of 1,000), which is what made a lost
race expensive.  A :class:`RecordsCodec` cuts a canonical string into its records' texts (one ``str.split`` in C),
decodes only the texts it has not seen before, and takes the others from its table; it encodes a changed set of
records by splicing the changed records' texts into the base string's.  The per-record work left is C (split, set
difference, ``itemgetter``, ``dict``), about 0.1 µs a record.

The fast path is taken only for canonical strings, the form this project and upstream's ``json.Marshal`` write:
compact, keys sorted, each record exactly ``{"nic":..,"pod":..,"podUid":..}`` (``nic`` only when set) with canonical
address keys.  The cut is at every ``},"``, which in such a string appears only between records: inside a JSON
string a ``"`` is escaped, and a record object holds no nested object.  Each new record text is decoded on its own
and accepted only if encoding its record gives back exactly that text, so a string with anything else in it (a
``}`` in a value, an unknown field, escapes, spaces, duplicate keys) goes the careful way,
:func:`~spiderpool.core.allocations.decode_allocated_ips`, with its exact errors and canonicalisation.  Either way
the records are the same as a full decode's, and the encoded text is exactly
:func:`~spiderpool.core.allocations.encode_allocated_ips`'s (the unit tests check both on random histories).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter

import orjson

from spiderpool.core.addressing import is_canonical_ipv6, match_canonical_ipv4
from spiderpool.core.allocations import PoolIPAllocation, decode_allocated_ips, encode_allocated_ips

__all__ = ["DecodedRecords", "RecordsCodec", "RecordsCodecs", "changed_addresses"]

_CUT = '},"'
_first = itemgetter(0)
_KNOWN_SLACK = 256  # record texts kept beyond twice the current count before the table is pruned


@dataclass(eq=False, slots=True)
class DecodedRecords:
    """The records of one status string (``text``; None when there are none), treated as read-only.

    ``parts`` are the records' texts in the string's order when it was canonical (None otherwise): what diffs and
    incremental encodes work on.
    """

    text: str | None
    records: dict[str, PoolIPAllocation]
    parts: list[str] | None
    _part_set: frozenset[str] | None = field(default=None, repr=False)

    def part_set(self) -> frozenset[str] | None:
        if self._part_set is None and self.parts is not None:
            self._part_set = frozenset(self.parts)
        return self._part_set


def changed_addresses(old: DecodedRecords, new: DecodedRecords) -> tuple[list[str], list[str]]:
    """From ``old`` to ``new``: (addresses whose record is gone, addresses whose record is new or different).

    Two canonical strings are compared by their records' texts (set differences in C); otherwise record by record.
    """
    old_set, new_set = old.part_set(), new.part_set()
    if old_set is None or new_set is None:
        gone = [ip for ip in old.records if ip not in new.records]
        return gone, [ip for ip, record in new.records.items() if old.records.get(ip) != record]
    came = [_ip_of(part) for part in new_set - old_set]
    return [ip for ip in map(_ip_of, old_set - new_set) if ip not in new.records], came


def _ip_of(part: str) -> str:
    return part[:part.index('"')]


def _member(part: str) -> str:
    return '{"' + part + "}}"


def _parse_part(part: str, version: int | None) -> tuple[str, PoolIPAllocation] | None:
    """The (address, record) of one record text if it is canonical, else None (the careful decode takes over)."""
    try:
        data = orjson.loads(_member(part))
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or len(data) != 1:
        return None
    ((key, value),) = data.items()
    if type(value) is not dict:
        return None
    pod, uid, nic = value.get("pod"), value.get("podUid"), value.get("nic", "")
    if not (type(pod) is str and type(uid) is str and uid and type(nic) is str and pod.count("/") == 1
            and pod[0] != "/" and pod[-1] != "/"):
        return None
    if not ((version != 6 and match_canonical_ipv4(key)) or (version != 4 and is_canonical_ipv6(key))):
        return None
    record = PoolIPAllocation(pod, uid, nic)
    return (key, record) if _part_of(key, record) == part else None


def _part_of(ip: str, record: PoolIPAllocation) -> str:
    """The canonical text of one record, as it appears between the cuts."""
    body = {"nic": record.nic, "pod": record.pod, "podUid": record.pod_uid} if record.nic else {
        "pod": record.pod, "podUid": record.pod_uid}
    return orjson.dumps({ip: body}, option=orjson.OPT_SORT_KEYS).decode()[2:-2]


class RecordsCodec:
    """Decodes and encodes one pool's status strings, re-using what the previous ones had (see the module doc)."""

    def __init__(self, *, version: int | None = None) -> None:
        self._version = version
        self._known: dict[str, tuple[str, PoolIPAllocation]] = {}
        self._recent: tuple[DecodedRecords, ...] = ()

    def decode(self, text: str | None) -> DecodedRecords:
        """The records of ``text``; AllocationsFormatError (from the careful decode) when it is malformed."""
        if not text:
            return DecodedRecords(None, {}, [])
        for recent in self._recent:
            if recent.text is text or recent.text == text:
                return recent
        decoded = self._decode_canonical(text)
        if decoded is None:
            decoded = DecodedRecords(text, decode_allocated_ips(text, version=self._version), None)
        self._remember(decoded)
        return decoded

    def _decode_canonical(self, text: str) -> DecodedRecords | None:
        if not (text.startswith('{"') and text.endswith('"}}')):
            return None
        parts = text[2:-2].split(_CUT)
        part_set = frozenset(parts)  # hashed once: for the table look-up here and for diffs later
        known = self._known
        for part in part_set.difference(known):
            parsed = _parse_part(part, self._version)
            if parsed is None:
                return None
            known[part] = parsed
        records = self._records_of(parts)
        if len(records) != len(parts):
            return None  # an address twice: the careful decode says what a full decode would
        return DecodedRecords(text, records, parts, part_set)

    def encode(self, records: dict[str, PoolIPAllocation], *, base: DecodedRecords | None = None,
               removed: Iterable[str] = (), added: Mapping[str, PoolIPAllocation] | None = None) -> DecodedRecords:
        """``records`` encoded (exactly :func:`encode_allocated_ips`'s text).  With ``base`` (the decoded records
        they were derived from), ``removed`` and ``added`` (the addresses taken out of and put into base's records,
        nothing else changed), only the changed records are encoded."""
        if not records:
            return DecodedRecords(None, records, [])
        if base is None or base.parts is None or added is None:
            return self.decode(encode_allocated_ips(records))  # equal records, in the text's order
        by_ip = dict(zip(base.records, base.parts, strict=True))  # a DecodedRecords keeps its records in parts order
        parts = list(base.parts)
        for ip in {*removed, *added}:
            part = by_ip.get(ip)
            if part is not None:
                parts.remove(part)
        for ip, record in added.items():
            part = _part_of(ip, record)
            self._known[part] = (ip, record)
            parts.append(part)
        parts.sort()  # base was sorted: a few appended records make this one merge pass
        try:
            ordered = self._records_of(parts)
        except KeyError:  # the table was pruned since base was decoded: base's own records are still right
            self._known.update(zip(base.parts, base.records.items(), strict=True))
            ordered = self._records_of(parts)
        encoded = DecodedRecords('{"' + _CUT.join(parts) + "}}", ordered, parts)
        self._remember(encoded)
        return encoded

    def _records_of(self, parts: list[str]) -> dict[str, PoolIPAllocation]:
        """The records of known texts, in their order (KeyError for an unknown one); C loops only."""
        if not parts:
            return {}
        return dict(itemgetter(*parts)(self._known)) if len(parts) > 1 else dict([self._known[parts[0]]])

    def _remember(self, decoded: DecodedRecords) -> None:
        self._recent = (decoded, *self._recent[:1])
        parts = decoded.parts
        if parts is not None and len(self._known) > 2 * len(parts) + _KNOWN_SLACK:
            self._known = dict(zip(parts, itemgetter(*parts)(self._known), strict=True)) if len(parts) > 1 else {
                part: self._known[part] for part in parts}


class RecordsCodecs:
    """One :class:`RecordsCodec` per pool name, shared by every reader and writer of the pools in a process."""

    def __init__(self) -> None:
        self._codecs: dict[str, RecordsCodec] = {}

    def of(self, pool: str) -> RecordsCodec:
        codec = self._codecs.get(pool)
        if codec is None:
            codec = self._codecs[pool] = RecordsCodec()
        return codec

    def forget(self, pool: str) -> None:
        self._codecs.pop(pool, None)
