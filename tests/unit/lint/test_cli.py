"""polyarch lint on the command line (in process): exit codes, formats, bad input,
suppressions, --fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyarch.cli import run

from .test_rules import BAD, CLEAN

# ---------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "Dockerfile") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_cli_clean_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write(tmp_path, CLEAN["go-cross-compile"])
    assert run(["lint", "--offline", str(p)]) == 0
    out = capsys.readouterr().out
    # Offline: the base images get notes, which never fail the run.
    assert "PA006" in out and "--offline" in out


def test_cli_findings_exit_5_and_fail_on(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    wrong = write(tmp_path, BAD["PA001 ADD download"][0])
    assert run(["lint", "--offline", str(wrong)]) == 5
    out = capsys.readouterr().out
    assert "PA001" in out and "tini-amd64" in out and f"{wrong}:2" in out
    assert run(["lint", "--offline", "--fail-on", "never", str(wrong)]) == 0
    # Only amd64 is built: nothing to report.
    assert run(["lint", "--offline", "--platform", "linux/amd64", str(wrong)]) == 0
    # Slow is not wrong: an emulated compile is a warning, which fails only on request.
    slow = write(tmp_path, BAD["PA003 go build under emulation"][0], "Dockerfile.slow")
    assert run(["lint", "--offline", str(slow)]) == 0
    assert run(["lint", "--offline", "--fail-on", "warning", str(slow)]) == 5
    info_only = write(tmp_path, BAD["PA007 detection on BUILDPLATFORM"][0], "Dockerfile.info")
    assert run(["lint", "--offline", str(info_only)]) == 0
    assert run(["lint", "--offline", "--fail-on", "info", str(info_only)]) == 5


def test_cli_json_document_lists_findings_and_summary(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    p = write(tmp_path, BAD["PA004 TARGETARCH not declared in the stage"][0])
    capsys.readouterr()
    assert run(["lint", "--offline", "--json", "--platform", "linux/amd64,linux/arm64", str(p)]) \
        == 5
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "polyarch.lint/v1"
    assert doc["path"] == str(p)
    assert doc["platforms"] == ["linux/amd64", "linux/arm64"]
    assert doc["fail_on"] == "error" and doc["failed"] is True
    # One note: the final stage's alpine; the $BUILDPLATFORM stage's base is not checked.
    assert doc["summary"] == {"error": 1, "warning": 0, "info": 0, "note": 1}
    (err,) = [f for f in doc["findings"] if f["severity"] == "error"]
    assert err == {
        "rule": "PA004", "name": "undeclared-platform-arg", "severity": "error",
        "path": str(p), "line": 3, "stage": "fetch", "message": err["message"],
        "hint": err["hint"],
    }
    notes = [f for f in doc["findings"] if f["severity"] == "note"]
    assert {f["rule"] for f in notes} == {"PA006"}


def test_cli_directory_and_stdin(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, CLEAN["hello-fixture"])
    assert run(["lint", "--offline", str(tmp_path)]) == 0
    assert "no findings" in capsys.readouterr().out
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(BAD["PA001 ADD download"][0]))
    assert run(["lint", "--offline", "--json", "-"]) == 5
    assert json.loads(capsys.readouterr().out)["findings"][0]["path"] == "-"


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["lint", str(tmp_path / "nope" / "Dockerfile")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("polyarch: error: no such Dockerfile")
    p = write(tmp_path, CLEAN["hello-fixture"])
    assert run(["lint", "--platform", "linux/sparc", str(p)]) == 2
    assert run(["lint", "--fail-on", "sometimes", str(p)]) == 2


def test_cli_github_annotations(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    p = write(tmp_path, BAD["PA001 ADD download"][0])
    assert run(["lint", "--offline", "--fail-on", "never", str(p)]) == 0
    err = capsys.readouterr().err
    assert f"::error file={p},line=2,title=PA001::" in err




# -- bad input: one line, exit 2, never a traceback ---------------------------


@pytest.mark.parametrize(("content", "expected"), [
    (b"\x7fELF\x02\x01\x01\x00\x00\x00binary", "is a binary file"),
    (b"", "is empty"),
    (b"\n  \n# only a comment? no: blank\n".replace(b"# only a comment? no: blank", b""),
     "is empty"),
    (b"FROM alpine\nRUN echo \xff\xfe\n", "is not UTF-8 text"),
    (b"FROM alpine\n" + b"RUN echo " + b"x" * (5 * 1024 * 1024) + b"\n", "too large"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          content: bytes, expected: str) -> None:
    p = tmp_path / "Dockerfile"
    p.write_bytes(content)
    assert run(["lint", "--offline", str(p)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("polyarch: error: ") and expected in err[0]
    assert "Traceback" not in captured.err + captured.out


def test_cli_directory_without_dockerfile(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["lint", str(tmp_path)]) == 2
    assert "no such Dockerfile" in capsys.readouterr().err


def test_cli_bom_and_crlf_lint_like_plain_text(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    text = BAD["PA001 ADD download"][0]
    plain = write(tmp_path, text, "plain")
    odd = tmp_path / "odd"
    odd.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    got = []
    for p in (plain, odd):
        capsys.readouterr()
        assert run(["lint", "--offline", "--json", str(p)]) == 5
        got.append([(f["rule"], f["line"], f["message"])
                    for f in json.loads(capsys.readouterr().out)["findings"]])
    assert got[0] == got[1] and ("PA001", 2) in [(r, n) for r, n, _ in got[0]]


def test_cli_unknown_frontend_is_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write(tmp_path, "# syntax=example.com/my/frontend:1\nFROM alpine\nRUN true\n")
    assert run(["lint", "--offline", "--json", str(p)]) == 0
    doc = json.loads(capsys.readouterr().out)
    (note,) = [f for f in doc["findings"] if f["rule"] == "PA000"]
    assert note["severity"] == "note" and "example.com/my/frontend" in note["message"]


def test_cli_unknown_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write(tmp_path, "FROM alpine AS base\nFROM base AS app\n")
    assert run(["lint", "--offline", "--target", "nope", str(p)]) == 2
    err = capsys.readouterr().err
    assert "no stage named 'nope'" in err and "base, app" in err


# -- formats, suppressions ----------------------------------------------------


def test_cli_sarif_report_has_rules_and_locations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write(tmp_path, BAD["PA001 ADD download"][0])
    assert run(["lint", "--offline", "--format", "sarif", str(p)]) == 5
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == "2.1.0"
    (runs,) = doc["runs"]
    rules = runs["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} >= {"PA001", "PA003", "PA010"}
    res = [r for r in runs["results"] if r["ruleId"] == "PA001"]
    assert res and res[0]["level"] == "error"
    region = res[0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 2}
    assert rules[res[0]["ruleIndex"]]["id"] == "PA001"


def test_ignore_comments_suppress_a_line_or_the_file(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    text = """\
FROM alpine:3.20
# polyarch: ignore=PA001
ADD https://example.com/tini-amd64 /tini
RUN wget -O /x https://example.com/x-linux-amd64.tar.gz \\
    # polyarch: ignore=PA001
    && true
ADD https://example.com/tool-amd64 /tool
"""
    p = write(tmp_path, text)
    assert run(["lint", "--offline", "--json", str(p)]) == 5
    lines = [f["line"] for f in json.loads(capsys.readouterr().out)["findings"]
             if f["rule"] == "PA001"]
    assert lines == [7]
    p.write_text("# polyarch: ignore-file=PA001,PA006\n" + text)
    assert run(["lint", "--offline", "--json", str(p)]) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []


# -- --fix ----------------------------------------------------------------------

ASSETS = """\
FROM node:20 AS web
WORKDIR /app
COPY . .
RUN npm ci && npm run build
FROM nginx:1.27
COPY --from=web /app/dist /usr/share/nginx/html
"""


def test_fix_shows_a_diff_and_writes_only_with_write(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    p = write(tmp_path, ASSETS)
    assert run(["lint", "--fix", str(p)]) == 0
    out = capsys.readouterr().out
    assert "-FROM node:20 AS web" in out and "+FROM --platform=$BUILDPLATFORM node:20 AS web" in out
    assert p.read_text() == ASSETS
    assert run(["lint", "--fix", "--write", str(p)]) == 0
    assert p.read_text() == ASSETS.replace("FROM node:20", "FROM --platform=$BUILDPLATFORM node:20")
    capsys.readouterr()
    assert run(["lint", "--fix", str(p)]) == 0
    assert "nothing to rewrite" in capsys.readouterr().out
    assert run(["lint", "--write", str(p)]) == 2


def test_fix_says_on_stderr_what_it_refused_and_why(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    p = write(tmp_path, "FROM golang:1.22 AS build\nRUN go build -o /out/app .\n"
                        "FROM alpine\nCOPY --from=build /out/app /app\n")
    assert run(["lint", "--fix", "--write", str(p)]) == 0
    cap = capsys.readouterr()
    assert "nothing to rewrite" in cap.out
    assert cap.err.startswith("# not rewritten (go-cross): stage build: `go build` without "
                              "CGO_ENABLED=0")
    assert "FROM golang:1.22 AS build" in p.read_text()


def test_fix_keeps_crlf(tmp_path: Path) -> None:
    p = tmp_path / "Dockerfile"
    p.write_bytes(ASSETS.replace("\n", "\r\n").encode())
    assert run(["lint", "--fix", "--write", str(p)]) == 0
    data = p.read_bytes()
    assert b"FROM --platform=$BUILDPLATFORM node:20 AS web\r\n" in data
    assert data.count(b"\r\n") == ASSETS.count("\n") and b"\n" not in data.replace(b"\r\n", b"")


def test_cli_several_files_as_pre_commit_passes_them(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, CLEAN["hello-fixture"], "Dockerfile")
    bad = write(tmp_path, BAD["PA001 ADD download"][0], "tools.Dockerfile")
    assert run(["lint", "--offline", str(good), str(good)]) == 0
    assert run(["lint", "--offline", str(good), str(bad)]) == 5
    out = capsys.readouterr().out
    assert "tools.Dockerfile: 1 error" in out and "no findings" in out
    assert run(["lint", "--offline", "--json", str(good), str(bad)]) == 2


def test_pre_commit_hook_runs_lint_offline() -> None:
    hooks = (Path(__file__).resolve().parents[3] / ".pre-commit-hooks.yaml").read_text()
    assert "id: polyarch-lint" in hooks and "entry: polyarch lint --offline" in hooks
    import re

    files = re.search(r"^\s*files: (.+)$", hooks, re.MULTILINE)
    exclude = re.search(r"^\s*exclude: (.+)$", hooks, re.MULTILINE)
    assert files and exclude

    def picked(name: str) -> bool:
        return bool(re.search(files.group(1), name)) and not re.search(exclude.group(1), name)

    for name in ("Dockerfile", "app/Dockerfile", "Dockerfile.alpine", "docker/build.Dockerfile",
                 "Containerfile", "svc/Dockerfile-dev"):
        assert picked(name), name
    for name in ("Dockerfile.md", "README.md", "dockerfiles/x.py", "docker/Dockerfile.j2"):
        assert not picked(name), name
