"""The docs' command examples and configuration snippets against the tool itself: every
``polyarch`` example is accounted for in ``tests/doc_examples.py`` (run by the engine
tests, or not run for a stated reason), uses only options its command has (and none
hidden from its help), and every configuration snippet loads."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import click
import pytest
from doc_examples import COMMANDS, EXAMPLES, ROOT, command_of, extract, pages

from polyarch import config
from polyarch.pipeline.images import load_project


def _options(command: str) -> tuple[set[str], set[str]]:
    """(visible, hidden) option names of a subcommand."""
    cmd = importlib.import_module(f"polyarch.commands.{command}").command
    assert isinstance(cmd, click.Command)
    visible: set[str] = set()
    hidden: set[str] = set()
    for p in cmd.params:
        if isinstance(p, click.Option):
            (hidden if p.hidden else visible).update(p.opts + p.secondary_opts)
    visible.update({"-h", "--help"})
    return visible, hidden


def test_every_example_is_accounted_for() -> None:
    found = extract()
    assert len(found) >= 20, "the extractor finds too little: it reads the wrong thing"
    table = [(e.page, e.command) for e in EXAMPLES]
    assert len(set(table)) == len(table), "an example is listed twice"
    new = [f for f in found if f not in table]
    gone = [t for t in table if t not in found]
    assert not new, f"examples in the docs that tests/doc_examples.py does not list: {new}"
    assert not gone, f"tests/doc_examples.py lists examples the docs no longer have: {gone}"
    for e in EXAMPLES:
        assert e.runs or len(e.why) > 10, e


def _ci_commands() -> list[tuple[str, str]]:
    """``polyarch COMMAND ...`` lines of the CI recipes: YAML blocks of the pages, the
    workflow files under docs/ci/ and templates/."""
    out = []
    texts = [(p, p.read_text()) for p in pages()]
    texts += [(p, p.read_text()) for p in sorted((ROOT / "docs/ci").glob("*.yml"))]
    texts += [(p, p.read_text()) for p in sorted((ROOT / "templates").glob("*.yml"))]
    for p, text in texts:
        for m in re.finditer(r"(?<![\w/-])polyarch (" + "|".join(COMMANDS) + r")\b([^\n]*)",
                             text):
            out.append((str(p.relative_to(ROOT)), f"polyarch {m.group(1)}{m.group(2)}"))
    return out


@pytest.mark.parametrize(("page", "example"), [*extract(), *_ci_commands()])
def test_example_options_exist(page: str, example: str) -> None:
    """Every ``--flag`` of an example is an option of its command, listed in its help
    (``--stage`` once went on in the docs after it was hidden)."""
    command, words = command_of(example)
    visible, hidden = _options(command)
    for w in words:
        flag = w.strip("[]`'\"").split("=", 1)[0]
        if not re.fullmatch(r"--?[a-z][a-z-]*", flag):
            continue
        assert flag not in hidden, f"{page}: {example!r} uses {flag}, hidden from" \
                                   f" 'polyarch {command} --help'"
        assert flag in visible, f"{page}: {example!r}: 'polyarch {command}' has no {flag}"


def _toml_blocks() -> list[tuple[str, str]]:
    out = []
    for p in pages():
        for m in re.finditer(r"^```toml[^\n]*\n(.*?)^```", p.read_text(), re.S | re.M):
            out.append((str(p.relative_to(ROOT)), m.group(1)))
    return out


@pytest.mark.parametrize(("page", "text"), _toml_blocks())
def test_configuration_snippets_load(page: str, text: str, tmp_path: Path) -> None:
    """Every TOML snippet of the docs is a configuration polyarch reads, with its keys
    and types (the file is pyproject.toml when the snippet is a [tool.polyarch] table)."""
    name = "pyproject.toml" if "[tool.polyarch" in text else "polyarch.toml"
    path = tmp_path / name
    path.write_text(text)
    config.load({}, env={}, cwd=tmp_path)
    if "image]]" in text:
        project = load_project(cwd=tmp_path)
        assert project is not None and project.images


def test_documented_environment_variables_exist() -> None:
    """A ``POLYARCH_*`` variable a page names is one the code (or the scripts, or the CI
    entry point) reads."""
    read = {"POLYARCH_" + k.upper().replace("-", "_") for o in config.OPTIONS
            for k in (o.key, *o.aliases)} | {o.env for o in config.SETTINGS}
    for p in [*(ROOT / "src").rglob("*.py"), *(ROOT / "scripts").iterdir(),
              *(ROOT / "tests").rglob("conftest.py"), ROOT / "action.yml", ROOT / ".ci/run",
              ROOT / "templates/gitlab-ci.yml"]:
        if p.is_file():
            read.update(re.findall(r"POLYARCH_[A-Z0-9_]*[A-Z0-9]", p.read_text(errors="replace")))
    # The CI outputs of one image of a project: POLYARCH_<NAME>_DIGEST and so on.
    per_image = re.compile(r"POLYARCH_[A-Z0-9_]+_(DIGEST|IMAGE|TAGS)")
    named = {(str(p.relative_to(ROOT)), v) for p in pages()
             for v in re.findall(r"POLYARCH_[A-Z0-9_]*[A-Z0-9]", p.read_text())}
    unknown = sorted((page, v) for page, v in named if v not in read and not per_image.fullmatch(v))
    assert not unknown, f"documented but read nowhere: {unknown}"
