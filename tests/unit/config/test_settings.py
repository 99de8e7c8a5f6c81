"""The settings of the run (the table's SETTINGS): declared once, resolved once when the
CLI starts, refused with one line when bad, and handed to the modules that use them,
which read no environment variable of their own."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from polyarch import ci, proc, settings
from polyarch.checks.cache import default_dir
from polyarch.commands import lint
from polyarch.config import OPTIONS, SETTINGS, load_settings
from polyarch.config.doc import settings_markdown
from polyarch.config.table import BY_KEY
from polyarch.errors import ConfigError
from polyarch.registry import trust
from polyarch.registry.transport import Transport
from polyarch.settings import Settings
from polyarch.tags import GitContext
from polyarch.workspace import Workspace

from ..inprocess import Result, error_line

SHA = "860c1904a1ce19322e91ac35af1ab07466440c37"
#: Everything GitLab CI says about a branch push: detect needs no git for it.
GITLAB = {"GITLAB_CI": "true", "CI_COMMIT_SHA": SHA, "CI_COMMIT_BRANCH": "main",
          "CI_DEFAULT_BRANCH": "main", "CI_COMMIT_TIMESTAMP": "2023-05-06T07:08:09+00:00",
          "CI_PROJECT_URL": "https://gitlab.example/g/app", "CI_PROJECT_NAME": "app"}


def test_every_setting_is_a_field_with_the_tables_default() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(Settings)}
    assert list(fields) == [o.name for o in SETTINGS]
    for o in SETTINGS:
        assert fields[o.name] == o.default, o.name
        assert o.env == "POLYARCH_" + o.name.upper()
        assert not o.flags and not o.per_image


def test_settings_are_environment_only_and_share_no_name_with_an_option() -> None:
    option_vars = {"POLYARCH_" + k.upper().replace("-", "_") for o in OPTIONS
                   for k in (o.key, *o.aliases)}
    assert not option_vars & {o.env for o in SETTINGS}
    assert not set(BY_KEY) & {o.key for o in SETTINGS}  # no config-file key


def test_the_page_lists_every_setting() -> None:
    table = settings_markdown()
    for o in SETTINGS:
        assert f"| `{o.env}` |" in table


def test_unset_empty_and_blank_variables_keep_the_defaults() -> None:
    assert load_settings({}) == Settings()
    assert load_settings({o.env: "" for o in SETTINGS}) == Settings()
    assert load_settings({o.env: "  " for o in SETTINGS}) == Settings()


def test_every_setting_is_read_from_its_variable(tmp_path: Path) -> None:
    env = {"POLYARCH_COMMAND_TIMEOUT": "2.5", "POLYARCH_IDLE_TIMEOUT": "1e3",
           "POLYARCH_REGISTRY_TIMEOUT": " 7 ", "POLYARCH_CERTS_D": str(tmp_path / "certs"),
           "POLYARCH_CACHE_DIR": str(tmp_path / "cache"), "POLYARCH_DOTENV": "out/b.env",
           "POLYARCH_GIT_REF": "refs/tags/v1.2.3", "POLYARCH_GIT_SHA": SHA,
           "POLYARCH_BASE_REF": "main", "POLYARCH_DEFAULT_BRANCH": "trunk",
           "POLYARCH_SHORT_SHA_LENGTH": "12", "POLYARCH_DEBUG": "yes"}
    assert set(env) == {o.env for o in SETTINGS}
    assert load_settings(env) == Settings(
        command_timeout=2.5, idle_timeout=1000.0, registry_timeout=7.0,
        certs_d=tmp_path / "certs", cache_dir=tmp_path / "cache", dotenv=Path("out/b.env"),
        git_ref="refs/tags/v1.2.3", git_sha=SHA, base_ref="main", default_branch="trunk",
        short_sha_length=12, debug=True)
    assert load_settings(env, only=("debug",)) == Settings(debug=True)


# -- bad values: one line, exit 2, before any command runs ---------------------------------

BAD = [
    ("POLYARCH_COMMAND_TIMEOUT", "0",
     "POLYARCH_COMMAND_TIMEOUT='0' is not a number of seconds"
     " (use a number between 0 and 10000000, e.g. 60)"),
    ("POLYARCH_COMMAND_TIMEOUT", "1e99", "POLYARCH_COMMAND_TIMEOUT='1e99' is not a number"),
    ("POLYARCH_IDLE_TIMEOUT", "soon",
     "POLYARCH_IDLE_TIMEOUT='soon' is not a number of seconds"
     " (use a number between 0 and 10000000, e.g. 600)"),
    ("POLYARCH_IDLE_TIMEOUT", "nan", "POLYARCH_IDLE_TIMEOUT='nan' is not a number"),
    ("POLYARCH_REGISTRY_TIMEOUT", "soon",
     "POLYARCH_REGISTRY_TIMEOUT='soon' is not a number of seconds"
     " (use a number between 0 and 86400, e.g. 60)"),
    ("POLYARCH_REGISTRY_TIMEOUT", "-1", "POLYARCH_REGISTRY_TIMEOUT='-1' is not a number"),
    ("POLYARCH_GIT_REF", "v1.2.3",
     "POLYARCH_GIT_REF='v1.2.3' is not a full ref"
     " (write refs/heads/NAME, refs/tags/NAME or refs/pull/N/merge)"),
    ("POLYARCH_SHORT_SHA_LENGTH", "x",
     "POLYARCH_SHORT_SHA_LENGTH='x' is not a positive whole number (for example 7 or 12)"),
    ("POLYARCH_SHORT_SHA_LENGTH", "0", "POLYARCH_SHORT_SHA_LENGTH='0' is not a positive"),
    ("POLYARCH_SHORT_SHA_LENGTH", "9" * 5000, "POLYARCH_SHORT_SHA_LENGTH='99999"),
    ("POLYARCH_SHORT_SHA_LENGTH", "²", "POLYARCH_SHORT_SHA_LENGTH='²' is not a positive"),
    ("POLYARCH_DEBUG", "maybe",
     "POLYARCH_DEBUG='maybe' is not true or false (see docs/configuration.md)"),
]


@pytest.mark.parametrize(("var", "raw", "words"), BAD, ids=[f"{v}={r[:8]}" for v, r, _ in BAD])
def test_a_bad_setting_is_one_line_and_exit_2_before_the_command_runs(
        var: str, raw: str, words: str, run_cli: Callable[..., Result],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ran: list[bool] = []
    monkeypatch.setattr(lint.command, "callback", lambda **kw: ran.append(True))
    r = run_cli("lint", cwd=tmp_path, env={var: raw})
    assert r.code == 2 and not ran
    line = error_line(r)
    assert line.startswith(f"polyarch: error: {words}"), line
    assert len(line) < 200  # a long value is shortened
    with pytest.raises(ConfigError):
        load_settings({var: raw})


def test_a_bad_setting_does_not_stop_the_help(run_cli: Callable[..., Result]) -> None:
    r = run_cli("--help", env={"POLYARCH_IDLE_TIMEOUT": "soon"})
    assert r.code == 0 and r.out.startswith("Usage: polyarch")


# -- the value reaches the module that uses it ---------------------------------------------

def _certs(tmp_path: Path) -> Any:
    (tmp_path / "certs" / "reg.lan:5000").mkdir(parents=True, exist_ok=True)
    return trust.host_trust("reg.lan:5000").directory


REACHES: list[tuple[str, str, Callable[[Path], Any], Callable[[Path], Any]]] = [
    # (variable, value with {tmp} for the test's directory, what the module uses, expected)
    ("POLYARCH_COMMAND_TIMEOUT", "2.5", lambda t: proc.default_timeout(), lambda t: 2.5),
    ("POLYARCH_IDLE_TIMEOUT", "30", lambda t: proc.idle_timeout(), lambda t: 30.0),
    ("POLYARCH_REGISTRY_TIMEOUT", "7", lambda t: Transport().timeout, lambda t: 7.0),
    ("POLYARCH_CERTS_D", "{tmp}/certs", _certs, lambda t: t / "certs" / "reg.lan:5000"),
    # One cache directory: the workspace and the verify cache under it agree.
    ("POLYARCH_CACHE_DIR", "{tmp}/cache",
     lambda t: (Workspace.open().root, default_dir()),
     lambda t: (t / "cache", t / "cache" / "verify")),
    ("POLYARCH_DOTENV", "{tmp}/r.env", lambda t: ci.destinations({}),
     lambda t: [("POLYARCH_DOTENV", t / "r.env")]),
    ("POLYARCH_SHORT_SHA_LENGTH", "12", lambda t: GitContext.detect(t, GITLAB).short_sha,
     lambda t: SHA[:12]),
]


@pytest.mark.parametrize(("var", "raw", "use", "want"), REACHES, ids=[r[0] for r in REACHES])
def test_the_value_of_the_environment_reaches_the_module_that_uses_it(
        var: str, raw: str, use: Callable[[Path], Any], want: Callable[[Path], Any],
        run_cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(lint.command, "callback", lambda **kw: seen.append(use(tmp_path)))
    r = run_cli("lint", cwd=tmp_path, env={var: raw.format(tmp=tmp_path)})
    assert r.code == 0, r.err
    assert seen == [want(tmp_path)]
    # Outside the run, the module has its default again.
    assert use(tmp_path) != want(tmp_path)


def test_debug_shows_the_traceback_of_an_internal_error(
        run_cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def bug(**kw: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(lint.command, "callback", bug)
    r = run_cli("lint", cwd=tmp_path, env={"POLYARCH_DEBUG": "0"})
    assert r.code == 70 and "internal error: RuntimeError: a bug" in error_line(r)
    with pytest.raises(RuntimeError, match="a bug"):
        run_cli("lint", cwd=tmp_path, env={"POLYARCH_DEBUG": "1"})


def test_a_library_caller_gets_the_defaults_not_the_environment(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for o in SETTINGS:
        monkeypatch.setenv(o.env, "refs/heads/x" if o.name == "git_ref" else "5")
    assert settings.current() == Settings()
    assert (proc.default_timeout(), proc.idle_timeout(), Transport().timeout) == (60, 600, 60)
    assert trust.certs_d_root() == Path("/etc/docker/certs.d")
    assert ci.destinations({}) == []
    assert GitContext.detect(tmp_path, GITLAB).short_sha == SHA[:7]
    # ... and one that installs its own gets those.
    with settings.using(Settings(command_timeout=3, dotenv=tmp_path / "x.env")):
        assert proc.default_timeout() == 3
        assert ci.destinations({}) == [("POLYARCH_DOTENV", tmp_path / "x.env")]
    assert proc.default_timeout() == 60


def test_the_settings_given_to_git_detection_win_over_the_runs(tmp_path: Path) -> None:
    with settings.using(Settings(short_sha_length=5)):
        assert GitContext.detect(tmp_path, GITLAB).short_sha == SHA[:5]
        assert GitContext.detect(tmp_path, GITLAB, Settings(short_sha_length=9)).short_sha == SHA[:9]
    # docker/metadata-action's variable counts where the setting is not given.
    env = {**GITLAB, "DOCKER_METADATA_SHORT_SHA_LENGTH": "10"}
    assert GitContext.detect(tmp_path, env).short_sha == SHA[:10]
    assert GitContext.detect(tmp_path, env, Settings(short_sha_length=8)).short_sha == SHA[:8]


def test_the_callers_settings_are_back_when_the_command_ends(
        run_cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from polyarch.cli import cli

    seen: list[float] = []
    monkeypatch.setattr(lint.command, "callback", lambda **kw: seen.append(proc.default_timeout()))
    with settings.using(Settings(command_timeout=3)):
        assert run_cli("lint", cwd=tmp_path, env={"POLYARCH_COMMAND_TIMEOUT": "9"}).code == 0
        assert proc.default_timeout() == 3
        # Also when click's own runner calls the group (no polyarch.cli.run around it).
        r = CliRunner().invoke(cli, ["lint"], env={"POLYARCH_COMMAND_TIMEOUT": "8"})
        assert r.exit_code == 0, r.output
        assert proc.default_timeout() == 3
    assert seen == [9, 8]
