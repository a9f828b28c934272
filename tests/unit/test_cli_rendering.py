"""spiderpoolctl output: kubectl-like tables, JSON and YAML of the same document."""

from __future__ import annotations

import orjson
import pytest
import yaml

from spiderpool.cli.rendering import CommandView, Table, cell_text, render, render_table


def test_table_columns_are_as_wide_as_their_widest_cell() -> None:
    """CLR01: Table columns are as wide as their widest cell."""
    table = Table(("NAME", "TOTAL"), [("pool-a", 254), ("p", 3)])
    assert render_table(table) == "NAME     TOTAL\npool-a   254\np        3\n"


def test_cells_print_like_kubectl() -> None:
    """CLR02: Cells print like kubectl."""
    assert [cell_text(value) for value in (None, "", True, False, 0)] == ["<none>", "<none>", "true", "false", "0"]


def test_notes_come_first_and_no_rows_prints_the_empty_message() -> None:
    """CLR03: Notes come first and no rows prints the empty message."""
    table = Table(("NIC",), [], notes=["pod: ns/a"], empty_message="No NIC.")
    assert render_table(table) == "pod: ns/a\nNo NIC.\n"


def test_a_row_of_the_wrong_width_is_refused_with_the_row() -> None:
    """CLR04: A row of the wrong width is refused with the row."""
    with pytest.raises(ValueError, match=r"2 cells for 1 headers: \['a', 'b'\]"):
        render_table(Table(("A",), [("a", "b")]))


def test_json_and_yaml_print_the_document_not_the_table() -> None:
    """CLR05: JSON and YAML print the document not the table."""
    view = CommandView([{"name": "p", "total": 2, "default": None}], Table(("X",), [("ignored",)]))
    assert orjson.loads(render(view, output="json")) == view.document
    assert yaml.safe_load(render(view, output="yaml")) == view.document


def test_an_unknown_output_format_is_named() -> None:
    """CLR06: An unknown output format is named."""
    with pytest.raises(ValueError, match="got 'wide'"):
        render(CommandView({}, Table((), [])), output="wide")
