"""docs/configuration.md lists every option, as the table declares it."""

from __future__ import annotations

from pathlib import Path

from polyarch.config.doc import BEGIN, END, markdown, update
from polyarch.config.table import OPTIONS

PAGE = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


def test_the_page_has_the_generated_table() -> None:
    text = PAGE.read_text()
    assert update(text) == text, "docs/configuration.md is stale: run scripts/config-doc"


def test_the_table_names_every_key_variable_and_flag() -> None:
    table = markdown()
    assert table.startswith(BEGIN) and table.endswith(END)
    for o in OPTIONS:
        assert f"| `{o.key}`" in table, o.key
        assert f"`{o.env}`" in table, o.env
        for flag in o.flags:
            if o.cli != "argument":
                assert f"`{flag}`" in table, flag
