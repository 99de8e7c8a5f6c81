"""Tables off a terminal: printed without loading rich where that gives rich's own bytes
(:func:`polyarch.output.plain_table`), through rich everywhere else. Every table is
compared with what rich prints for it, as the reporter printed every table before."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table
from rich.text import Text

from polyarch.output import PLAIN_WIDTH, Guarded, Reporter, fit, plain_table


class _Stream(io.StringIO):
    def __init__(self, encoding: str | None) -> None:
        super().__init__()
        self._encoding = encoding

    @property
    def encoding(self) -> str | None:  # type: ignore[override]
        return self._encoding


def rich_prints(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[str]],
                encoding: str | None) -> str:
    """What rich prints for the table, on a console set up as the reporter's off a
    terminal."""
    out = _Stream(encoding)
    console = Console(file=Guarded(out), highlight=False, emoji=False, soft_wrap=True,
                      force_terminal=False, width=PLAIN_WIDTH)
    t = Table(title=fit(title) if title else None, show_lines=False, title_justify="left")
    for c in columns:
        t.add_column(fit(c), overflow="fold")
    for r in rows:
        t.add_row(*(Text(fit(x)) for x in r))
    console.print(t)
    return out.getvalue()


def reporter_prints(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[str]],
                    encoding: str | None) -> str:
    out = _Stream(encoding)
    rep = Reporter()
    assert not rep.interactive  # (stderr is pytest's capture, not a terminal)
    rep.stdout = Guarded(out)
    rep.table(title, columns, rows)
    return out.getvalue()


#: Words as real tables hold them, and text rich lays out its own way: wide and
#: combining characters, tabs, line breaks, markup, long values.
_WORDS = st.sampled_from([
    "", "linux/amd64", "sha256:17e6eb74667c", "4.5 kB", "2024-01-01T00:00:00Z", "1",
    "native", "emulated", "no verification attestation", "/srv/tools [x64]/run", "[bold]x",
    "日本語", "e\u0301", "a\tb", "two\nlines", "x" * 70, "y" * 150, "%s ~!@#$^&*()_+{}|:<>?",
])
_TEXT = st.one_of(_WORDS, st.text(max_size=12), st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=40))


#: Printable ASCII without markup: the tables printed without rich (unless too wide).
_PLAIN = st.one_of(
    st.sampled_from(["", "linux/amd64", "sha256:" + "4" * 64, "x" * 70, "y" * 150]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e, exclude_characters="["),
            max_size=40))


def _same(title: str | None, columns: list[str], data: st.DataObject, text: st.SearchStrategy[str],
          encoding: str | None) -> None:
    rows = data.draw(st.lists(st.lists(text, min_size=len(columns), max_size=len(columns)),
                              max_size=5))
    assert reporter_prints(title, columns, rows, encoding) == \
        rich_prints(title, columns, rows, encoding)


@settings(max_examples=300, deadline=None)
@given(title=st.one_of(st.none(), _TEXT), columns=st.lists(_TEXT, min_size=1, max_size=6),
       data=st.data(), encoding=st.sampled_from(["utf-8", "UTF-8", None, "ascii"]))
def test_a_table_off_a_terminal_is_what_rich_prints(title: str | None, columns: list[str],
                                                   data: st.DataObject,
                                                   encoding: str | None) -> None:
    _same(title, columns, data, _TEXT, encoding)


@settings(max_examples=300, deadline=None)
@given(title=st.one_of(st.none(), _PLAIN), columns=st.lists(_PLAIN, min_size=1, max_size=6),
       data=st.data())
def test_a_plain_ascii_table_on_utf8_is_what_rich_prints(title: str | None, columns: list[str],
                                                        data: st.DataObject) -> None:
    _same(title, columns, data, _PLAIN, "utf-8")


@pytest.mark.parametrize("total", range(PLAIN_WIDTH - 4, PLAIN_WIDTH + 5))
@pytest.mark.parametrize("n", [1, 2, 3])
def test_tables_and_titles_about_as_wide_as_the_console_are_what_rich_prints(
        total: int, n: int) -> None:
    """A table ``total`` columns wide (with its borders) of ``n`` columns, with no title, a
    title as wide as the table, and one a column wider."""
    columns = ["c"] * n
    first = total - (n + 1) - 2 * n - (n - 1)
    rows = [["x" * first] + ["y"] * (n - 1)]
    for title in (None, "t" * total, "t" * (total + 1)):
        assert reporter_prints(title, columns, rows, "utf-8") == \
            rich_prints(title, columns, rows, "utf-8")


def test_the_tables_polyarch_prints_need_no_rich_off_a_terminal() -> None:
    """inspect's table of platforms, publish's of builds and tags' of labels: printable
    ASCII, narrower than the console."""
    cases = [
        (None, ["PLATFORM", "DIGEST", "SIZE", "CREATED", "LAYERS"],
         [["linux/amd64", "sha256:17e6eb74667c", "4.5 kB", "2024-01-01T00:00:00Z", "1"],
          ["linux/arm64/v8", "sha256:baf6ec09564d", "4.5 kB", "2024-01-01T00:00:00Z", "12"]]),
        (None, ["platform", "digest", "build"],
         [["linux/amd64", "sha256:" + "4" * 64, "native"],
          ["linux/arm64", "sha256:" + "0" * 64, "emulated"]]),
        ("labels", ["label", "value"], [["org.opencontainers.image.version", "1.2.3"]]),
    ]
    for title, columns, rows in cases:
        text = plain_table(title, columns, rows, encoding="utf-8")
        assert text is not None
        assert text == rich_prints(title, columns, rows, "utf-8")


def test_a_table_rich_must_lay_out_is_left_to_rich() -> None:
    wide = ["x" * (PLAIN_WIDTH // 2)] * 2
    assert plain_table(None, ["a", "b"], [wide], encoding="utf-8") is None
    assert plain_table(None, ["a"], [["日本語"]], encoding="utf-8") is None
    assert plain_table(None, ["[bold]a"], [["x"]], encoding="utf-8") is None
    assert plain_table("a title longer than the table", ["a"], [["x"]],
                       encoding="utf-8") is None
    assert plain_table(None, ["a"], [["x"]], encoding="ascii") is None
