"""The chart README is generated from values.yaml's ``## @param`` comments: it must be current and complete."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TOOL = Path(__file__).resolve().parents[2] / "tools" / "chart_readme.py"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chart_readme", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("chart_readme", module)
    spec.loader.exec_module(module)
    return module


def test_every_value_is_documented() -> None:
    """CHR01: Every value is documented."""
    _, errors = _tool().generate()
    assert errors == []


def test_readme_is_current() -> None:
    """CHR02: Readme is current."""
    readme, _ = _tool().generate()
    path = TOOL.parents[1] / "charts" / "spiderpool" / "README.md"
    assert path.read_text() == readme, "charts/spiderpool/README.md is stale: run python tools/chart_readme.py"


def test_undocumented_and_unknown_params_are_reported(tmp_path: Path) -> None:
    """CHR03: Undocumented and unknown params are reported."""
    (tmp_path / "values.yaml").write_text(
        "## @section S\nkept:\n  ## @param kept.a first line\n  ## and its continuation\n  a: 1\n  b: 2\n"
        "## @param ghost.key no such value\n"
    )
    tool = _tool()
    readme, errors = tool.generate(tmp_path)
    assert errors == ["@param ghost.key: no such value in values.yaml",
                      "kept.b: value has no @param (of its own or of an enclosing map)"]
    assert "| `kept.a` | first line and its continuation | `1` |" in readme
