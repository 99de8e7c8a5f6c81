"""The CLI's error -> exit code mapping: one line, control characters escaped, an OSError
naming an input path is exit 2, anything else unexpected is exit 70 (a bug)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any, NoReturn

import pytest

from polyarch import cli
from polyarch.commands import lint

from ..fuzz.harness import invoke


def test_one_line_escapes_control_characters() -> None:
    assert cli.one_line("bad 'a\nb\rc\x1b[31m'\tok") == "bad 'a\\nb\\rc\\x1b[31m'\tok"


def _raising(exc: BaseException) -> Any:
    def callback(**kwargs: Any) -> NoReturn:
        raise exc
    return callback


def test_an_unusable_input_path_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lint.command, "callback",
                        _raising(OSError(errno.ENAMETOOLONG, "File name too long", "a" * 300)))
    o = invoke(["lint"], cwd=tmp_path)
    assert o.code == 2
    assert o.err.startswith("polyarch: error: cannot use aaaa") and "File name too long" in o.err


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"),
                                 RecursionError("deep"), UnicodeDecodeError("utf-8", b"\xff", 0, 1,
                                                                             "invalid")])
def test_what_cannot_name_its_input_stays_an_internal_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    # Such errors are fixed where they happen (tests/unit/fuzz finds them), not hidden here.
    monkeypatch.setattr(lint.command, "callback", _raising(exc))
    o = invoke(["lint"], cwd=tmp_path)
    assert o.code == 70 and "internal error" in o.err


def test_bad_deadline_settings_are_usage_errors(tmp_path: Path) -> None:
    for name, value in (("POLYARCH_COMMAND_TIMEOUT", "0"), ("POLYARCH_IDLE_TIMEOUT", "soon"),
                        ("POLYARCH_IDLE_TIMEOUT", "1e99")):
        o = invoke(["lint", "--offline"], cwd=tmp_path, env={name: value})
        assert o.code == 2 and name in o.err, o.err


def test_tags_context_that_does_not_exist_is_exit_2(tmp_path: Path) -> None:
    o = invoke(["tags", "--context", str(tmp_path / "nonexistent")], cwd=tmp_path)
    assert o.code == 2
    assert o.err.startswith("polyarch: error: Invalid value for '--context': Directory")
    assert "does not exist" in o.err and "git" not in o.err


def test_tags_git_dir_that_does_not_exist_is_exit_2(tmp_path: Path) -> None:
    o = invoke(["tags", "--git-dir", str(tmp_path / "nonexistent")], cwd=tmp_path)
    assert o.code == 2
    assert o.err.startswith("polyarch: error: Invalid value for '--git-dir': Directory")
    assert "does not exist" in o.err


def test_help_lists_every_exit_code_and_what_build_does() -> None:
    from click.testing import CliRunner

    text = " ".join(CliRunner().invoke(cli.cli, ["--help"]).output.split())
    for code in (0, 1, 2, 3, 4, 5, 6, 70, 129, 130, 143):
        assert f"; {code} " in text or f"Exit codes: {code} " in text, code
    assert "build Build and verify on local disk; write, load or push it." in text
