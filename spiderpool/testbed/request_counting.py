"""Counting the API server's requests from its own ``apiserver_request_total`` (``GET /metrics``).

Used to say how many writes a workload cost: a scrape before and one after, and the difference per resource, verb,
subresource and response code.  The API server counts every request it answered, 409 Conflicts included, so the
figures cannot flatter a client that retries.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

WRITE_VERBS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SPIDERPOOL_RESOURCES: Final = ("spiderippools", "spiderendpoints")
_SAMPLE: Final = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL: Final = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True, slots=True, order=True)
class RequestKind:
    resource: str
    verb: str
    subresource: str
    code: str

    @property
    def label(self) -> str:
        target = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.verb} {target} {self.code}"


RequestCounts = Counter[RequestKind]


def parse_request_counts(metrics_text: str, *, resources: Iterable[str] = SPIDERPOOL_RESOURCES) -> RequestCounts:
    """The ``apiserver_request_total`` samples of ``resources`` in a Prometheus text exposition."""
    wanted = set(resources)
    counts: RequestCounts = Counter()
    for line in metrics_text.splitlines():
        sample = _SAMPLE.match(line)
        if sample is None:
            continue
        labels = dict(_LABEL.findall(sample["labels"]))
        if labels.get("resource") not in wanted:
            continue
        kind = RequestKind(
            labels["resource"], labels.get("verb", ""), labels.get("subresource", ""), labels.get("code", "")
        )
        counts[kind] += int(float(sample["value"]))
    return counts


def difference(after: RequestCounts, before: RequestCounts) -> RequestCounts:
    """What happened between two scrapes (counters only grow while the API server keeps running)."""
    delta: RequestCounts = Counter()
    for kind, value in after.items():
        if value - before.get(kind, 0):
            delta[kind] = value - before.get(kind, 0)
    return delta


def writes(counts: RequestCounts, *, resource: str | None = None) -> int:
    """Write requests (POST/PUT/PATCH/DELETE, every code and subresource) of ``resource`` (or of all counted)."""
    return sum(v for k, v in counts.items() if k.verb in WRITE_VERBS and resource in (None, k.resource))


def conflicts(counts: RequestCounts) -> int:
    return sum(value for kind, value in counts.items() if kind.verb in WRITE_VERBS and kind.code == "409")


def breakdown(counts: RequestCounts) -> dict[str, int]:
    """``"PUT spiderippools/status 200" -> n`` for every write kind, sorted: where the writes come from."""
    return {kind.label: value for kind, value in sorted(counts.items()) if kind.verb in WRITE_VERBS}
