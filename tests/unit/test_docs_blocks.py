"""The documentation's code blocks and links: every JSON block parses, every YAML block is either a complete
spiderpool object (applied to the real API server by ``tests/integration/test_docs_examples.py``) or says on its first
line that it is a ``# fragment``, and every relative link of docs/*.md and README.md points at a file that exists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
FRAGMENT_MARK = "# fragment"
SPIDERPOOL_API_VERSION = "spiderpool.spidernet.io/v2beta1"
# The docs show at least this many complete objects; fewer means blocks were lost or mis-marked.
MIN_DOC_OBJECTS = 8

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+)(?P<language>[\w-]*)\s*$")
# [text](target); the target is checked unless it is a URL, an anchor or a mail address (see relative_links).
_LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")


@dataclass(frozen=True, slots=True)
class CodeBlock:
    """One fenced block: where it starts (1-based line of the opening fence), its language and its text."""

    document: Path
    line: int
    language: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def code_blocks(document: Path) -> Iterator[CodeBlock]:
    """The fenced blocks of a Markdown file, their common indentation removed (blocks inside list items)."""
    opened: tuple[int, str, str, str] | None = None  # line, indent, fence, language
    body: list[str] = []
    for number, line in enumerate(document.read_text().splitlines(), start=1):
        match = _FENCE.match(line)
        if opened is None:
            if match:
                opened, body = (number, match["indent"], match["fence"], match["language"]), []
            continue
        if match and match["fence"] == opened[2] and not match["language"]:
            yield CodeBlock(document, opened[0], opened[3], "\n".join(body) + "\n")
            opened = None
            continue
        body.append(line.removeprefix(opened[1]))
    assert opened is None, f"{document.relative_to(ROOT)}:{opened[0] if opened else 0}: a code block is never closed"


def blocks_of(language: str) -> list[CodeBlock]:
    return [block for document in DOCUMENTS for block in code_blocks(document) if block.language == language]


def is_fragment(block: CodeBlock) -> bool:
    return block.text.lstrip().startswith(FRAGMENT_MARK)


def documented_objects() -> list[tuple[CodeBlock, dict[str, object]]]:
    """Every complete object of every non-fragment YAML block (a block may hold several, separated by ``---``)."""
    found = []
    for block in blocks_of("yaml"):
        if not is_fragment(block):
            found += [(block, item) for item in yaml.safe_load_all(block.text) if item is not None]
    return found


def test_code_blocks_are_found() -> None:
    """DB01: Code blocks are found."""
    assert blocks_of("json"), "no ```json block found in the docs"
    assert len(blocks_of("yaml")) >= MIN_DOC_OBJECTS


@pytest.mark.parametrize("block", blocks_of("json"), ids=lambda block: block.where)
def test_every_json_block_parses(block: CodeBlock) -> None:
    """DB02: Every JSON block parses."""
    try:
        document = orjson.loads(block.text)
    except orjson.JSONDecodeError as exc:
        pytest.fail(f"{block.where}: the ```json block does not parse: {exc}")
    assert isinstance(document, dict | list), f"{block.where}: expected an object or a list, got {document!r}"


@pytest.mark.parametrize("block", blocks_of("yaml"), ids=lambda block: block.where)
def test_every_yaml_block_parses(block: CodeBlock) -> None:
    """DB03: Every YAML block parses."""
    try:
        documents = [item for item in yaml.safe_load_all(block.text) if item is not None]
    except yaml.YAMLError as exc:
        pytest.fail(f"{block.where}: the ```yaml block does not parse: {exc}")
    assert documents, f"{block.where}: the ```yaml block is empty"
    assert all(isinstance(item, dict) for item in documents), f"{block.where}: expected mappings, got {documents!r}"


def test_every_complete_yaml_object_is_a_spiderpool_object() -> None:
    """DB04: A block that is not marked ``# fragment`` is applied by the integration test, so it must be whole."""
    problems = []
    for block, item in documented_objects():
        metadata = item.get("metadata")
        if item.get("apiVersion") != SPIDERPOOL_API_VERSION or not item.get("kind"):
            problems.append(f"{block.where}: apiVersion/kind {item.get('apiVersion')!r} {item.get('kind')!r}")
        elif not isinstance(metadata, dict) or not metadata.get("name"):
            problems.append(f"{block.where}: metadata.name missing in {item.get('kind')}")
    assert not problems, "YAML blocks neither marked '# fragment' nor complete spiderpool objects:\n" + "\n".join(
        problems
    )
    assert len(documented_objects()) >= MIN_DOC_OBJECTS


def test_documented_object_names_are_unique_per_kind() -> None:
    """DB05: Examples are created one after another on one API server: two of a kind with one name would clash."""
    seen: dict[tuple[object, object], str] = {}
    for block, item in documented_objects():
        metadata = item["metadata"]
        assert isinstance(metadata, dict)
        key = (item["kind"], metadata["name"])
        assert key not in seen, f"{block.where}: {key[0]} {key[1]!r} is already defined at {seen[key]}"
        seen[key] = block.where


def relative_links(document: Path) -> Iterator[tuple[int, str]]:
    """(line, target) of every link that is neither a URL, an anchor, nor a mail address."""
    inside_block = False
    for number, line in enumerate(document.read_text().splitlines(), start=1):
        if _FENCE.match(line):
            inside_block = not inside_block
        if inside_block:
            continue
        for match in _LINK.finditer(line):
            target = match["target"]
            if not re.match(r"^([a-z][a-z0-9+.-]*:|#)", target):
                yield number, target


def test_relative_links_point_at_existing_files() -> None:
    """DB06: Relative links point at existing files."""
    broken = []
    for document in DOCUMENTS:
        for line, target in relative_links(document):
            path = (document.parent / target.split("#", 1)[0]).resolve()
            if not path.exists():
                broken.append(f"{document.relative_to(ROOT)}:{line}: {target}")
    assert not broken, "links to files that do not exist:\n" + "\n".join(broken)


def test_links_are_found() -> None:
    """DB07: The link test must not pass because the pattern stopped matching."""
    assert sum(1 for document in DOCUMENTS for _ in relative_links(document)) >= 10


# The one place outside the repository the docs may name: upstream's optional example corpus beside the clone.
_OPTIONAL_OUTSIDE = "../shared/upstream-examples"
_PARENT_PATH = re.compile(r"(?<![\w./])\.\./[\w./-]+")


def test_r06_docs_point_at_nothing_outside_the_repository() -> None:
    """R06: a clone with nothing beside it has every file its docs point at: relative links resolve inside the
    repository, and a ``../`` path in the text (a command, a file name in a code span) names only the optional
    upstream corpus, which the tests skip with a reason when it is absent."""
    outside = []
    for document in DOCUMENTS:
        for line, target in relative_links(document):
            if not (document.parent / target.split("#", 1)[0]).resolve().is_relative_to(ROOT):
                outside.append(f"{document.relative_to(ROOT)}:{line}: link {target}")
        for number, text in enumerate(document.read_text().splitlines(), start=1):
            for path in _PARENT_PATH.findall(_LINK.sub("", text)):
                if not path.startswith(_OPTIONAL_OUTSIDE):
                    outside.append(f"{document.relative_to(ROOT)}:{number}: {path}")
    assert not outside, "docs that point outside the repository:\n" + "\n".join(outside)
