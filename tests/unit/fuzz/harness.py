"""Run the CLI in process and judge the outcome."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from polyarch import cli, proc

from .conftest import LeftTheProcess

#: The documented exit codes bad input may end with (docs: "Exit codes").
CLEAN_CODES = frozenset({0, 2, 4, 5})

# Variables of the machine running the tests that would change what a command reads.
_SCRUB = ("POLYARCH_", "GITHUB_", "GITLAB_", "CI_", "SOURCE_DATE_EPOCH", "DOCKER_METADATA_")


@dataclass(frozen=True)
class Outcome:
    code: int | None  # None: got past the input checks (started the engine / a registry call)
    out: str
    err: str

    @property
    def reached_engine(self) -> bool:
        return self.code is None


def invoke(args: list[str], *, cwd: Path, env: Mapping[str, str] | None = None,
           stdin: str | bytes | None = None) -> Outcome:
    full: dict[str, str | None] = {k: None for k in os.environ if k.startswith(_SCRUB)}
    full["CI"] = None
    full.update(env or {})
    runner = CliRunner()
    old_cwd = os.getcwd()
    old_hook = proc.echo_hook
    code: int | None
    with runner.isolation(input=stdin, env=full) as (out, err, _):
        os.chdir(cwd)
        try:
            code = cli.run(args)
        except LeftTheProcess:
            code = None
        finally:
            os.chdir(old_cwd)
            proc.echo_hook = old_hook
        o, e = out.getvalue(), err.getvalue()
    return Outcome(code, o.decode("utf-8", "replace"), e.decode("utf-8", "replace"))


def assert_clean(o: Outcome, codes: frozenset[int] = CLEAN_CODES) -> None:
    """A documented exit code, no traceback, and a failure ends on one error line."""
    text = o.out + o.err
    assert "Traceback" not in text, text
    assert "internal error" not in text, text
    if o.code is None:
        return
    assert o.code in codes, f"exit {o.code}\n{text}"
    if o.code not in (0, 5):
        # The error line is the last one (its GitHub Actions annotation may follow).
        lines = [ln for ln in o.err.rstrip("\n").splitlines() if not ln.startswith("::error::")]
        assert lines and lines[-1].startswith("polyarch: error: "), o.err
