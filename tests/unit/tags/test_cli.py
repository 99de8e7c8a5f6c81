"""``polyarch tags`` in process, under GitHub Actions variables that say everything
(so no git runs)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from polyarch import cli

SHA = "860c1904a1ce19322e91ac35af1ab07466440c37"


@pytest.fixture
def github(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for k in list(os.environ):
        if k.startswith(("GITHUB_", "CI_", "POLYARCH_", "DOCKER_METADATA")) or k in (
                "GITLAB_CI", "SOURCE_DATE_EPOCH"):
            monkeypatch.delenv(k)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({
        "repository": {"default_branch": "main"},
        "head_commit": {"id": SHA, "timestamp": "2020-01-09T23:59:00Z"},
    }))
    monkeypatch.chdir(tmp_path)
    for k, v in {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push",
                 "GITHUB_REF": "refs/tags/v1.2.3-rc.1", "GITHUB_SHA": SHA,
                 "GITHUB_REPOSITORY": "Octo/App", "GITHUB_EVENT_PATH": str(event),
                 "SOURCE_DATE_EPOCH": "1578616200"}.items():
        monkeypatch.setenv(k, v)
    return tmp_path


@pytest.mark.usefixtures("github")
def test_tags_json_document_has_refs_labels_and_git(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.run(["tags", "--json", "--image", "ghcr.io/Octo/App",
                    "--image", "name=docker.io/octo/app,enable=false",
                    "--tag-spec", "type=semver,pattern={{version}}",
                    "--tag-spec", "type=pep440,pattern={{version}}",
                    "--tag-spec", "type=raw,value=rc,enable={{is_not_default_branch}}",
                    "--flavor", "latest=metadata-action",
                    "--label", "maintainer=me", "--annotation", "note={{tag}}"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["tags"] == ["1.2.3-rc.1", "1.2.3rc1", "rc"]
    assert doc["refs"] == ["ghcr.io/octo/app:1.2.3-rc.1", "ghcr.io/octo/app:1.2.3rc1",
                           "ghcr.io/octo/app:rc"]
    assert doc["latest"] is False and doc["version"] == "1.2.3-rc.1"
    assert doc["labels"]["maintainer"] == "me"
    assert doc["annotations"]["note"] == "v1.2.3-rc.1"
    assert doc["labels"]["org.opencontainers.image.created"] == "2020-01-10T00:30:00.000Z"
    assert doc["git"]["source"] == "github" and doc["git"]["default_branch"] == "main"


@pytest.mark.usefixtures("github")
@pytest.mark.parametrize(("args", "words"), [
    (["--tag-spec", "type=semvr"], "did you mean 'semver'"),
    (["--tag-spec", "type=raw,value={{brnach}}"], "did you mean 'branch'"),
    (["--flavor", "latest=maybe"], "latest=metadata-action"),
    (["--image", "ghcr.io/o/app:1"], "tag or digest"),
    (["--image", "a/b,enable=maybe"], "enable=true or enable=false"),
])
def test_bad_input_is_one_line_exit_2(args: list[str], words: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["tags", *args]) == 2
    err = capsys.readouterr().err.strip()
    line = err.splitlines()[0]  # then, under GitHub Actions, the same as an ::error::
    assert line.startswith("polyarch: error: ") and words in line
    assert "Traceback" not in err
