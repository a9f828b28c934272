"""The project's own manifests in upstream's formats (tests/fixtures/upstream-format/) and how the corpora are found."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import upstream_examples
from upstream_examples import Corpus, corpus_params, project_corpus, upstream_corpus

# Keys under these are names chosen by the manifest's author, not fields of the format.
_FREE_KEYS = {"labels", "matchLabels"}


def field_paths(value: Any, prefix: str) -> Iterator[str]:
    """Every field path of a document (``kind.spec.ips[]``); annotation keys and the JSON inside them and inside
    a NetworkAttachmentDefinition's ``spec.config`` count as fields, label keys do not."""
    if isinstance(value, dict):
        for key, item in value.items():
            if prefix.endswith(tuple(f".{free}" for free in _FREE_KEYS)):
                yield f"{prefix}.*"
                continue
            yield from field_paths(item, f"{prefix}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from field_paths(item, f"{prefix}[]")
    else:
        yield prefix
        if isinstance(value, str) and value.lstrip().startswith(("{", "[")):
            try:
                parsed = json.loads(value)
            except ValueError:
                return
            yield from field_paths(parsed, f"{prefix}<json>")


def corpus_fields(corpus: Corpus) -> set[str]:
    return {
        path
        for file in corpus.files()
        for document in corpus.documents(file.name)
        for path in field_paths(document, str(document.get("kind", "patch")))
    }


def test_x01_project_fixtures_cover_every_kind_and_role() -> None:
    """X01: the project's own corpus is in the repository and holds every kind upstream's examples use, and every
    file its role table names."""
    corpus = project_corpus()
    kinds = {doc.get("kind") for file in corpus.files() for doc in corpus.documents(file.name)}
    assert kinds >= {"SpiderIPPool", "SpiderSubnet", "SpiderReservedIP", "Deployment", "StatefulSet", "Pod",
                     "Service", "NetworkAttachmentDefinition"}
    for role, files in corpus.roles.items():
        assert all((corpus.require() / name).is_file() for name in files), role
        assert corpus.role(role), role
    assert set(corpus.roles) == set(upstream_examples.ROLES["upstream"])


@pytest.mark.parametrize("corpus", [p for p in corpus_params() if p.id == "upstream"])
def test_x02_project_fixtures_cover_every_field_of_upstreams_examples(corpus: Corpus) -> None:
    """X02: every field path of upstream's example corpus (kinds, spec fields, pod annotations and the JSON in them,
    Multus configuration keys) also appears in the project's own corpus, so the project's cases exercise the same
    format when upstream's corpus is absent."""
    missing = corpus_fields(corpus) - corpus_fields(project_corpus())
    assert not missing, f"fields of upstream's examples that tests/fixtures/upstream-format/ lacks: {sorted(missing)}"


def test_x03_absent_upstream_corpus_is_a_visible_skip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """X03: a clone with nothing beside it and no SPIDERPOOL_UPSTREAM_EXAMPLES: the upstream corpus is reported
    absent with the places looked in, its parameter is marked skipped with that reason, the project's is not."""
    monkeypatch.setattr(upstream_examples, "_REPO", tmp_path / "lonely" / "clone")
    monkeypatch.delenv("SPIDERPOOL_UPSTREAM_EXAMPLES", raising=False)

    corpus = upstream_corpus()
    params = {param.id: param for param in corpus_params()}

    assert corpus.directory is None
    assert str(tmp_path / "lonely" / "shared" / "upstream-examples") in corpus.absent
    [skip] = params["upstream"].marks
    assert skip.name == "skip"
    assert skip.kwargs["reason"] == corpus.absent
    assert not params["project"].marks
    with pytest.raises(pytest.skip.Exception, match="upstream example manifests not found"):
        corpus.require()


def test_x04_explicit_upstream_directory_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """X04: SPIDERPOOL_UPSTREAM_EXAMPLES names the upstream corpus; its objects are read from there."""
    (tmp_path / "a.yaml").write_text(
        "apiVersion: spiderpool.spidernet.io/v2beta1\nkind: SpiderIPPool\nmetadata: {name: only}\n"
        "spec: {subnet: 192.0.2.0/24}\n"
    )
    monkeypatch.setenv("SPIDERPOOL_UPSTREAM_EXAMPLES", str(tmp_path))

    corpus = upstream_corpus()

    assert corpus.directory == tmp_path
    assert [obj["metadata"]["name"] for obj in corpus.objects("SpiderIPPool")] == ["only"]
