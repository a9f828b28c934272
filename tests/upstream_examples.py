"""Where upstream Spiderpool's example manifests (compatibility fixtures, shared/upstream-examples) are found.

CI and every session have `../shared` beside the clone; `SPIDERPOOL_UPSTREAM_EXAMPLES` points elsewhere. A missing
directory is a failure with a message, never a skip.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

_REPO = Path(__file__).resolve().parents[1]


def examples_dir() -> Path:
    explicit = os.environ.get("SPIDERPOOL_UPSTREAM_EXAMPLES")
    candidates = [Path(explicit)] if explicit else []
    candidates.append(_REPO.parent / "shared" / "upstream-examples")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    searched = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"upstream example manifests not found (looked in {searched}); set SPIDERPOOL_UPSTREAM_EXAMPLES"
    )


def upstream_objects(kind: str) -> list[dict[str, Any]]:
    """Every document of that kind in the upstream example manifests, in file order."""
    objects: list[dict[str, Any]] = []
    for path in sorted(examples_dir().glob("*.yaml")):
        objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc and doc.get("kind") == kind]
    return objects
