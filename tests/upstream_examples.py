"""The manifests in upstream Spiderpool's formats that the tests apply: two corpora.

- ``project``: the repository's own fixtures, ``tests/fixtures/upstream-format/`` (written here). Always there: a
  missing directory is a failure with a message.
- ``upstream``: upstream's documentation examples, ``../shared/upstream-examples`` beside the clone, or the directory
  ``SPIDERPOOL_UPSTREAM_EXAMPLES`` names. Outside the repository, so it may be absent: its cases are then skipped with
  a visible reason (``pytest -ra`` lists it), and the project's cases still run.

Tests parametrize over ``corpus_params()`` (a whole corpus) or ``object_params(kind)`` (each object of a kind);
the e2e tests find a scenario's files through ``Corpus.role``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

_REPO = Path(__file__).resolve().parents[1]
PROJECT_DIR = _REPO / "tests" / "fixtures" / "upstream-format"

# The files that play each role the e2e tests need, per corpus (a role may take several files of a corpus).
ROLES: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "project": {
        "dual-stack pools": ("addressing_dual-stack-ippools.yaml",),
        "dual-stack deployment": ("addressing_dual-stack-deploy.yaml",),
        "routed pool": ("routes_ippool.yaml",),
        "multi-nic pools": ("multi-nic_ippools.yaml",),
        "multi-nic networks": ("multi-nic_networks.yaml",),
        "multi-nic deployment": ("multi-nic_ippool-deploy.yaml",),
        "fallback pools": ("fallback_ippools.yaml",),
        "fallback deployment": ("fallback_deploy.yaml",),
        "bare pod": ("fallback_bare-pod.yaml",),
    },
    "upstream": {
        "dual-stack pools": ("basic_custom-ipv4-ippool.yaml", "basic_custom-ipv6-ippool.yaml"),
        "dual-stack deployment": ("basic_custom-dual-ippool-deploy.yaml",),
        "routed pool": ("route_ippool-route.yaml",),
        "multi-nic pools": ("multi-interfaces-annotation_different-segment-ipv4-ippools.yaml",),
        "multi-nic networks": ("multi-interfaces-annotation_multus-conf.yaml",),
        "multi-nic deployment": ("multi-interfaces-annotation_ippool-test-deploy.yaml",),
        "fallback pools": ("ippool-multi_test-ipv4-ippools.yaml",),
        "fallback deployment": ("ippool-multi_multi-ippool-deploy.yaml",),
        "bare pod": ("ippool-multi_dummy-pod.yaml",),
    },
}


@dataclass(frozen=True)
class Corpus:
    """One directory of manifests; ``directory`` is None when it is absent, and ``absent`` then says why."""

    name: str
    directory: Path | None
    absent: str = ""
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def require(self) -> Path:
        """The directory, or a skip with the reason (only the external corpus can be absent)."""
        if self.directory is None:
            pytest.skip(self.absent)
        return self.directory

    def files(self) -> list[Path]:
        return sorted(self.require().glob("*.yaml"))

    def documents(self, file_name: str) -> list[dict[str, Any]]:
        path = self.require() / file_name
        if not path.is_file():
            pytest.fail(f"{self.name} corpus: {path} is missing")
        return [document for document in yaml.safe_load_all(path.read_text()) if document]

    def role(self, role: str) -> list[dict[str, Any]]:
        """Every document of the files that play ``role`` in this corpus, in order."""
        return [document for file_name in self.roles[role] for document in self.documents(file_name)]

    def objects(self, kind: str) -> list[dict[str, Any]]:
        """Every document of that kind, in file order."""
        return [doc for path in self.files() for doc in self.documents(path.name) if doc.get("kind") == kind]


def project_corpus() -> Corpus:
    if not PROJECT_DIR.is_dir():
        raise FileNotFoundError(f"the project's own fixtures {PROJECT_DIR} are missing (part of the repository)")
    return Corpus("project", PROJECT_DIR, roles=ROLES["project"])


def upstream_candidates() -> list[Path]:
    explicit = os.environ.get("SPIDERPOOL_UPSTREAM_EXAMPLES")
    candidates = [Path(explicit)] if explicit else []
    candidates.append(_REPO.parent / "shared" / "upstream-examples")
    return candidates


def upstream_corpus() -> Corpus:
    candidates = upstream_candidates()
    for candidate in candidates:
        if candidate.is_dir():
            return Corpus("upstream", candidate, roles=ROLES["upstream"])
    searched = ", ".join(str(c) for c in candidates)
    reason = f"upstream example manifests not found (looked in {searched}; set SPIDERPOOL_UPSTREAM_EXAMPLES)"
    return Corpus("upstream", None, absent=reason, roles=ROLES["upstream"])


def corpora() -> list[Corpus]:
    return [project_corpus(), upstream_corpus()]


def corpus_params() -> list[Any]:
    """One parameter per corpus; the absent one is marked skipped with its reason."""
    return [
        pytest.param(corpus, id=corpus.name, marks=[pytest.mark.skip(reason=corpus.absent)] if not corpus.directory
                     else [])
        for corpus in corpora()
    ]


def object_params(kind: str) -> list[Any]:
    """One parameter per object of ``kind`` in each corpus (id ``corpus:name``); an absent corpus gives one
    skipped parameter that carries the reason."""
    params: list[Any] = []
    for corpus in corpora():
        if corpus.directory is None:
            params.append(pytest.param(None, id=corpus.name, marks=pytest.mark.skip(reason=corpus.absent)))
            continue
        params += [pytest.param(obj, id=f"{corpus.name}:{obj['metadata']['name']}") for obj in corpus.objects(kind)]
    return params
