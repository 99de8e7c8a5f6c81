"""Every reduced case in tests/lint_cases/ gives exactly the findings its `# expect:`
line lists (warnings and errors, for a linux/amd64,linux/arm64 build)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from polyarch.lint import lint
from polyarch.platforms import parse_platforms

CASES = Path(__file__).resolve().parents[2] / "lint_cases"
TWO = parse_platforms("linux/amd64,linux/arm64")


def expected(text: str) -> list[tuple[str, int]]:
    m = re.search(r"^# expect:\s*(.*)$", text, re.MULTILINE)
    assert m, "a case needs an `# expect:` line"
    if m.group(1).strip() == "none":
        return []
    return sorted((r, int(n)) for r, n in (w.split("@") for w in m.group(1).split()))


def test_there_are_cases_and_each_names_its_project() -> None:
    files = sorted(CASES.glob("*.Dockerfile"))
    assert len(files) >= 20
    for f in files:
        assert re.search(r"^# Pattern (?:from|seen in) ", f.read_text(), re.MULTILINE), f.name


@pytest.mark.parametrize("name", sorted(p.name for p in CASES.glob("*.Dockerfile")))
def test_case_file_gives_the_findings_it_declares(name: str) -> None:
    text = (CASES / name).read_text()
    got = sorted((f.rule, f.line) for f in lint(text, platforms=TWO)
                 if f.severity in ("error", "warning"))
    assert got == expected(text), "\n".join(
        f"{f.line} {f.rule} {f.severity} {f.message}" for f in lint(text, platforms=TWO))
