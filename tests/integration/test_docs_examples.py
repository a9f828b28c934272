"""Every complete object the documentation shows is accepted by the real API server and reads back with the spec the
docs wrote.

A ```yaml block of docs/*.md or README.md is either a ``# fragment`` (first line; annotation excerpts and the like) or
one or more complete spiderpool objects; ``tests/unit/test_docs_blocks.py`` enforces that split, this test applies
the objects.  Only the CRDs run here (no webhook), so what is checked is the schema: field names, types, enums and
formats, exactly what a user's ``kubectl apply`` of the example meets first.  The examples use documentation-only
address blocks (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) that no other integration test uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio.client import ApiClient
from structural_defaults import apply_defaults, crd_schema

from spiderpool.k8s.core_objects import CoreObjects, route_of
from spiderpool.k8s.store import NotFound

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
FRAGMENT_MARK = "# fragment"
# The docs show at least this many complete objects; fewer means examples were lost or mis-marked.
MIN_DOC_OBJECTS = 8
_YAML_FENCE = re.compile(r"^(?P<indent>\s*)```yaml\s*$")


@dataclass(frozen=True, slots=True)
class DocExample:
    """One complete object of a docs ```yaml block, with the line of its block's opening fence."""

    where: str
    body: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.where}:{self.body.get('kind')}/{self.body.get('metadata', {}).get('name')}"


def yaml_blocks(document: Path) -> Iterator[tuple[int, str]]:
    """(line of the opening fence, text) of every ```yaml block, indentation of list items removed."""
    lines = document.read_text().splitlines()
    number = 0
    while number < len(lines):
        opening = _YAML_FENCE.match(lines[number])
        number += 1
        if not opening:
            continue
        start, body = number, []
        while lines[number].strip() != "```":
            body.append(lines[number].removeprefix(opening["indent"]))
            number += 1
        yield start, "\n".join(body) + "\n"


def doc_examples() -> list[DocExample]:
    examples = []
    for document in DOCUMENTS:
        for line, text in yaml_blocks(document):
            if text.lstrip().startswith(FRAGMENT_MARK):
                continue
            where = f"{document.relative_to(ROOT)}:{line}"
            examples += [DocExample(where, item) for item in yaml.safe_load_all(text) if item is not None]
    return examples


EXAMPLES = doc_examples()


def test_the_docs_show_enough_examples() -> None:
    """DE01: The docs show enough examples."""
    assert len(EXAMPLES) >= MIN_DOC_OBJECTS, [example.label for example in EXAMPLES]
    kinds = {example.body["kind"] for example in EXAMPLES}
    assert {"SpiderIPPool", "SpiderSubnet", "SpiderReservedIP"} <= kinds


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.label for example in EXAMPLES])
async def test_doc_example_is_accepted_and_reads_back(api: ApiClient, example: DocExample) -> None:
    """DE02: Doc example is accepted and reads back."""
    objects = CoreObjects(api)
    route = route_of(example.body)
    name = example.body["metadata"]["name"]
    created = await objects.create(example.body)
    namespace = created["metadata"].get("namespace")
    try:
        stored = await objects.get(route, name, namespace=namespace)
        assert stored["metadata"]["uid"] == created["metadata"]["uid"]
        # the spec with every default the CRD schema declares, nested ones too (the API server fills them in)
        expected = apply_defaults(example.body, crd_schema(route.kind)).get("spec")
        assert stored.get("spec") == expected, f"{example.where}: the API server changed the spec"
        for key in ("labels", "annotations"):
            written = example.body["metadata"].get(key) or {}
            assert written.items() <= (stored["metadata"].get(key) or {}).items(), f"{example.where}: {key}"
    finally:
        assert await objects.delete(route, name, namespace=namespace) is True
    with pytest.raises(NotFound, match=name):
        await objects.get(route, name, namespace=namespace)
