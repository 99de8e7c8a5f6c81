"""One redaction mechanism: values registered once are masked in every printed line
(progress, echoed commands, errors and their ::error:: annotations, tables, --json)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from polyarch import redact
from polyarch.cli import run
from polyarch.engines import StepEvent
from polyarch.engines.buildx_progress import RawJsonProgress, build_failure
from polyarch.output import BuildProgress, Reporter

NPM = "npm_" + "Zq8VYuTtW3x9kPp0aLmN4rS7dE2fG6hJ1cBv"
PLAIN = "s3cr3t-but-no-format"  # a secret with no recognisable format


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    redact.REDACTOR.clear()
    yield
    redact.REDACTOR.clear()


def test_registered_values_masked_everywhere() -> None:
    redact.register_build_args({"NPM_TOKEN": PLAIN, "VERSION": "1.2.3"})
    assert redact.text(f"step: echo {PLAIN} v1.2.3") == "step: echo *** v1.2.3"
    doc = redact.data({"commands": [f"x {PLAIN}"], PLAIN: 1, "n": 3})
    assert PLAIN not in json.dumps(doc) and doc["n"] == 3


def test_value_by_format_even_under_a_plain_name() -> None:
    redact.register_build_args({"FOO": NPM})
    assert NPM not in redact.text(f"got {NPM}")
    # Known formats are masked even when never registered.
    redact.REDACTOR.clear()
    assert redact.text(f"log: {NPM}") == "log: npm_***"


def test_url_passwords_masked_but_url_readable() -> None:
    shown = redact.argv(["docker", "buildx", "build", "--build-arg",
                         "REPO_URL=https://bob:pw-9f8e7d@git.example/x.git", "."])
    assert shown[4] == "REPO_URL=https://bob:***@git.example/x.git"
    assert redact.text("fatal: could not read from pw-9f8e7d") == "fatal: could not read from ***"


def test_ordinary_text_untouched() -> None:
    text = ("npm_config_user_agent=npm/10.2.4 node/v20 token: ${NPM_TOKEN} "
            "https://registry.npmjs.org/ sha512-abc user@example.com")
    assert redact.text(text) == text


def test_reporter_lines_and_github_annotations(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.delenv("CI", raising=False)
    rep = Reporter()
    rep.command(["docker", "buildx", "build", "--build-arg", f"NPM_TOKEN={PLAIN}", "."])
    rep.info(f"info {PLAIN}")
    rep.log(f"log {PLAIN}")
    rep.warn(f"warn {PLAIN}")
    rep.error(f"build failed: {PLAIN}", detail=f"detail {PLAIN}")
    rep.table("t", ["a"], [[PLAIN]])
    with rep.group(f"group {PLAIN}"):
        pass
    out = capsys.readouterr()
    text = out.out + out.err
    assert PLAIN not in text
    assert "::error::build failed: ***" in text and "NPM_TOKEN=***" in text


def test_build_arg_secret_is_masked_in_the_json_document(capsys: pytest.CaptureFixture[str]) -> None:
    redact.register_build_args({"API_KEY": PLAIN})
    Reporter(json_mode=True).emit_json({"commands": [f"--build-arg API_KEY={PLAIN}"]})
    assert json.loads(capsys.readouterr().out) == {"commands": ["--build-arg API_KEY=***"]}


def test_build_progress_relay(capsys: pytest.CaptureFixture[str]) -> None:
    redact.register_build_args({"NPM_TOKEN": PLAIN})
    rep = Reporter()
    with BuildProgress(rep) as progress:
        progress(StepEvent("linux/amd64", f"[linux/amd64 2/2] RUN echo {PLAIN} {NPM}", "done",
                           None, 1.0))
    err = capsys.readouterr().err
    assert "RUN echo *** npm_***" in err and PLAIN not in err and NPM not in err


def _rawjson(name: str, error: str, log: str) -> RawJsonProgress:
    import base64

    p = RawJsonProgress(None)
    doc = {"vertexes": [{"digest": "d1", "name": name, "started": "2024-01-01T00:00:00Z",
                         "completed": "2024-01-01T00:00:01Z", "error": error}],
           "logs": [{"vertex": "d1", "data": base64.b64encode(log.encode()).decode()}]}
    for line in ["{", *json.dumps(doc, indent=1).splitlines()[1:]]:
        p.feed(line)
    p.feed(f"ERROR: failed to solve: process \"/bin/sh -c echo {PLAIN}\" did not complete")
    return p


def test_build_failure_line_and_detail() -> None:
    redact.register_build_args({"NPM_TOKEN": PLAIN})
    err = build_failure(_rawjson(f"[2/2] RUN echo {PLAIN}", "exit code: 1",
                                 f"token is {PLAIN}\nand {NPM}\n"))
    assert PLAIN not in err.line() and PLAIN not in (err.detail or "")
    assert NPM not in (err.detail or "") and "token is ***" in (err.detail or "")


def test_error_line_masks_url_password_in_reference(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code = run(["publish", "--dry-run", "-t", "http://user:pw-9f8e7d@127.0.0.1:5000/a/b:1", "."])
    out = capsys.readouterr()
    assert code == 2
    assert "pw-9f8e7d" not in out.out + out.err
    assert "user:***@" in out.err and "::error::" in out.err


def test_short_and_placeholder_values_do_not_garble_output() -> None:
    redact.register_build_args({"NPM_TOKEN": "true", "API_KEY": "${API_KEY}", "GH_TOKEN": "abc"})
    assert redact.text("tests passed: true, abc") == "tests passed: true, abc"
    # In build-argument position they are masked all the same.
    assert redact.argv(["--build-arg", "GH_TOKEN=abc"]) == ["--build-arg", "GH_TOKEN=***"]


def test_secret_file_content_masked_in_build_output(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    token = "glorb-" + "x7Qm2" * 6  # no known format: only the file says it is secret
    src = tmp_path / "npmrc"
    src.write_text(f"registry=https://registry.example/\n//registry.example/:_authToken={token}\n")
    redact.REDACTOR.add_secret_spec(f"id=npmrc,src={src}")
    rep = Reporter()
    rep.progress(f"#5 0.3 //registry.example/:_authToken={token}")
    rep.progress(f"#5 0.4 the token is {token}")
    out = capsys.readouterr()
    assert token not in out.out + out.err
    assert out.err.count("***") == 2
    # The token (a secret-looking key's value) is also looked for in the image; the
    # file's other lines are masked in output only (a common line is no leak).
    assert token in redact.secret_values()
    assert not any("registry.example/" in v and token not in v
                   for v in redact.secret_values())


def test_env_secret_spec_reads_no_file(tmp_path: Path) -> None:
    f = tmp_path / "TOKEN"
    f.write_text("not-read-at-all\n")
    redact.REDACTOR.add_secret_spec(f"id=t,type=env,src={f}", env={})
    assert redact.text("not-read-at-all") == "not-read-at-all"


@pytest.mark.parametrize(("hostile", "shown"), [
    ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"), ("\x1b[2K\r", "\\x1b[2K\\r"),
    ("a\x08b", "a\\x08b"), ("\x9b31m", "\\x9b31m")])
def test_control_characters_from_an_image_are_escaped(hostile: str, shown: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    rep = Reporter()
    rep.info(f"usr/bin/{hostile}x")
    rep.table(None, ["path"], [(f"lib/{hostile}",)])
    rep.warn(f"finding {hostile}")
    out = capsys.readouterr()
    for stream in (out.out, out.err):
        assert not any(c in stream for c in "\x1b\x07\x08\r\x9b"), repr(stream)
    assert f"usr/bin/{shown}x" in out.out and f"finding {shown}" in out.err


def test_printed_newlines_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    Reporter().info("a\nc")
    assert capsys.readouterr().out == "a\nc\n"
def test_secret_file_contents_are_registered(tmp_path: Path) -> None:
    one = tmp_path / "token.txt"
    one.write_text(PLAIN + "\n")
    npmrc = tmp_path / "npmrc"
    npmrc.write_text("registry=https://registry.npmjs.org/\n"
                     "//registry.npmjs.org/:_authToken=6f1e9c2a-4b7d-4e8f-9a3c-2d5b8e7f1a90\n"
                     f"# a comment\nother={NPM}\n")
    redact.REDACTOR.add_secret_spec(f"id=tok,src={one}")
    redact.REDACTOR.add_secret_spec(f"type=file,id=npmrc,source={npmrc}")
    redact.REDACTOR.add_secret_spec("id=GH_TOKEN", env={"GH_TOKEN": "gh-value-9Kq2Lm"})
    redact.REDACTOR.add_secret_spec(f"id=missing,src={tmp_path / 'nope'}")
    values = set(redact.secret_values())
    assert {PLAIN, "6f1e9c2a-4b7d-4e8f-9a3c-2d5b8e7f1a90", NPM, "gh-value-9Kq2Lm"} <= values
    # Not the harmless parts of the file.
    assert not any("registry.npmjs.org" in v for v in values)


def test_secret_parts_picks_the_values_out_of_a_text() -> None:
    assert redact.secret_parts("  hunter2-long-enough \n") == ["hunter2-long-enough"]
    assert redact.secret_parts('{\n  "client_secret": "Zq8VYuTt-W3x9",\n  "name": "app"\n}') == [
        "Zq8VYuTt-W3x9"]
    assert redact.secret_parts("") == []


def test_secret_values_are_masked_in_commands() -> None:
    assert redact.argv(["x", "--build-arg=A_TOKEN=v", "hunter2-hunter2"],
                       env={"DEPLOY_PASSWORD": "hunter2-hunter2"}) == [
        "x", "--build-arg=A_TOKEN=***", "***"]


def test_secret_environment_values_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The answer for an unchanged environment is kept; a changed one is read again.
    monkeypatch.setenv("DEPLOY_TOKEN", PLAIN)
    assert redact.text(f"using {PLAIN}") == f"using {redact.MASK}"
    assert redact.text(f"using {PLAIN}") == f"using {redact.MASK}"
    monkeypatch.setenv("DEPLOY_TOKEN", "another-value-now")
    assert redact.text(f"using {PLAIN} or another-value-now") == f"using {PLAIN} or {redact.MASK}"
    monkeypatch.delenv("DEPLOY_TOKEN")
    assert redact.text("another-value-now") == "another-value-now"
