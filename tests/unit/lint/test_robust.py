"""lint() and --fix never raise, whatever the text: bad input gives findings, not
tracebacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyarch.lint import fix, lint, parse
from polyarch.lint.context import LintContext
from polyarch.platforms import parse_platforms

TWO = parse_platforms("linux/amd64,linux/arm64")
PIECES = st.sampled_from([
    "FROM ", "FROM --platform=$BUILDPLATFORM ", "--platform=", " AS ", "ARG ", "ENV ", "RUN ",
    "COPY ", "--from=", "ADD ", "WORKDIR ", "${", "}", "$(", ")", "$", "`", "'", '"', "\\",
    "\n", " ", "<<EOF\n", "EOF\n", "<<-'X'\n", "\tX\n", "case ", " in ", ";;", "esac", "if [ ",
    " ]; then ", "fi", "amd64", "arm64", "x86_64", "TARGETARCH", "TARGETPLATFORM=",
    "BUILDPLATFORM", "go build -o /o", "npm ci", "npm pack", "make", "a", "b", "0", "=", ":-",
    ":+", "#", "# escape=`\n", "# polyarch: ignore=PA001\n", "/", ".", "*", "[", "]", ",",
    "alpine", "base", "-${TARGETARCH}", "\r\n", "\ufeff",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, max_size=60).map("".join))
def test_lint_and_fix_never_raise(text: str) -> None:
    findings = lint(text, platforms=TWO)
    assert all(f.line >= 1 for f in findings)
    df = parse(text)
    fixes = fix.rewrites(LintContext(df, "Dockerfile", TWO))
    fix.diff("Dockerfile", df.lines, fixes)


@pytest.mark.parametrize("text", ["FROM debian:12\nRUN true\n\\", "FROM debian:12\n\\\n\n"])
def test_lint_survives_a_lone_line_continuation(run_cli: Any, tmp_path: Path, text: str) -> None:
    (tmp_path / "Dockerfile").write_text(text)
    run = run_cli("lint", "--offline", str(tmp_path / "Dockerfile"))
    assert run.code == 0, run.err
