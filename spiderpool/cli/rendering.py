"""Output of a command as a kubectl-like table, JSON or YAML: pure text, no I/O.

A command produces a :class:`CommandView`: the ``document`` (plain JSON data, what ``-o json``/``-o yaml`` print) and
the ``table`` the default output shows (a summary of the same data, for people).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import orjson
import yaml

OUTPUT_FORMATS: Final = ("table", "json", "yaml")
_GAP: Final = "   "  # kubectl separates columns by three spaces


@dataclass(frozen=True, slots=True)
class Table:
    """Column headers, rows of cells, and ``notes`` printed above the table (e.g. the pod a description is of)."""

    headers: tuple[str, ...]
    rows: Sequence[Sequence[object]]
    notes: Sequence[str] = ()
    empty_message: str = "No resources found."


@dataclass(frozen=True, slots=True)
class CommandView:
    document: object
    table: Table
    warnings: list[str] = field(default_factory=list)
    exit_code: int = 0


def cell_text(value: object) -> str:
    """A cell as kubectl prints it: ``<none>`` for nothing, ``true``/``false`` for booleans."""
    if value is None or value == "":
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_table(table: Table) -> str:
    """Left-aligned columns, each as wide as its widest cell; the notes first; ``empty_message`` for no rows."""
    lines = list(table.notes)
    if not table.rows:
        return "\n".join([*lines, table.empty_message]) + "\n"
    texts = [[cell_text(value) for value in row] for row in table.rows]
    for row in texts:
        if len(row) != len(table.headers):
            raise ValueError(f"table row has {len(row)} cells for {len(table.headers)} headers: {row!r}")
    widths = [max(len(header), *(len(row[i]) for row in texts)) for i, header in enumerate(table.headers)]
    for row in [list(table.headers), *texts]:
        lines.append(_GAP.join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines) + "\n"


def render(view: CommandView, *, output: str) -> str:
    """The text ``-o output`` prints for ``view``."""
    if output == "table":
        return render_table(view.table)
    if output == "json":
        return orjson.dumps(view.document, option=orjson.OPT_INDENT_2).decode() + "\n"
    if output == "yaml":
        return str(yaml.safe_dump(view.document, sort_keys=False, default_flow_style=False))
    raise ValueError(f"--output: must be one of {', '.join(OUTPUT_FORMATS)}, got {output!r}")
