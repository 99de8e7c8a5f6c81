"""Git state from a real working tree, and ``polyarch tags`` on one (these start git)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from polyarch import cli
from polyarch.config import load_settings
from polyarch.errors import UsageError
from polyarch.tags import compute
from polyarch.tags.gitinfo import GitContext

SHA = "860c1904a1ce19322e91ac35af1ab07466440c37"
NOW = datetime(2020, 1, 10, 0, 30, 0, tzinfo=UTC)
SEMVER3 = ("type=semver,pattern={{version}}", "type=semver,pattern={{major}}.{{minor}}")

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(cwd: Path, *args: str, date: str = "2021-03-04T05:06:07+00:00") -> str:
    env = {**os.environ, **GIT_ENV, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # polyarch's own git calls must not see the developer's configuration either.
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    r = tmp_path / "proj"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "f").write_text("1\n")
    git(r, "add", "f")
    git(r, "commit", "-q", "-m", "one")
    return r


def detect(path: Path, **env: str) -> GitContext:
    """The git state at ``path`` with ``env`` as the environment: the CI's variables, and
    the POLYARCH_* settings resolved from it as a run resolves them."""
    return GitContext.detect(path, env, load_settings(env))


def test_working_tree_branch(repo: Path) -> None:
    ctx = detect(repo)
    assert (ctx.source, ctx.event, ctx.ref_name, ctx.ref) == ("git", "branch", "main",
                                                               "refs/heads/main")
    assert ctx.sha == git(repo, "rev-parse", "HEAD") and len(ctx.sha) == 40
    assert ctx.default_branch == "main"
    assert ctx.commit_time == datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert ctx.repo_name == "proj" and not ctx.dirty
    plan = compute(["type=edge", "type=ref,event=branch", "type=sha",
                    "type=raw,value={{commit_date 'YYYYMMDD'}}"], [], ctx, now=NOW)
    assert plan.tags == ["edge", "main", "20210304", "sha-" + ctx.sha[:7]]


def test_working_tree_branch_with_slash_and_dirty(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature/Login#2")
    (repo / "f").write_text("changed\n")
    ctx = detect(repo)
    assert ctx.event == "branch" and ctx.ref_name == "feature/Login#2" and ctx.dirty
    plan = compute(["type=ref,event=branch", "type=edge"], [], ctx, now=NOW)
    assert plan.tags == ["feature-Login-2"]
    assert any("uncommitted" in w for w in plan.warnings)


def test_working_tree_detached_at_tags(repo: Path) -> None:
    git(repo, "tag", "v1.0.0-rc.1")
    git(repo, "tag", "-a", "-m", "release", "v1.0.0")
    git(repo, "checkout", "-q", "--detach", "HEAD")
    ctx = detect(repo)
    assert (ctx.event, ctx.ref_name) == ("tag", "v1.0.0")  # the release beats its candidate
    assert compute(SEMVER3, [], ctx, now=NOW).tags == ["1.0.0", "1.0", "latest"]


def test_working_tree_detached_without_tag(repo: Path) -> None:
    (repo / "f").write_text("2\n")
    git(repo, "commit", "-q", "-am", "two")
    git(repo, "checkout", "-q", "HEAD~1")
    ctx = detect(repo)
    assert ctx.event == "none" and ctx.ref == "" and ctx.sha
    plan = compute(["type=ref,event=branch", "type=ref,event=tag", "type=sha"], [], ctx, now=NOW)
    assert plan.tags == ["sha-" + ctx.sha[:7]]


def test_working_tree_on_a_tagged_branch_stays_a_branch(repo: Path) -> None:
    git(repo, "tag", "v2.0.0")
    assert detect(repo).event == "branch"
    ctx = detect(repo, POLYARCH_GIT_REF="refs/tags/v2.0.0")
    assert (ctx.source, ctx.event, ctx.ref_name) == ("env", "tag", "v2.0.0")
    assert ctx.sha == git(repo, "rev-parse", "HEAD")


def test_working_tree_clone_default_branch_and_remote(repo: Path, tmp_path: Path) -> None:
    git(repo, "branch", "-m", "trunk")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "remote", "set-url", "origin", "https://user:secret@git.example.org/team/app.git")
    ctx = detect(clone)
    assert ctx.default_branch == "trunk"
    assert ctx.repo_url == "https://git.example.org/team/app" and ctx.repo_name == "app"
    trunk = GitContext.from_ref("refs/heads/trunk", SHA, default_branch=ctx.default_branch)
    assert compute(["type=edge"], [], trunk, now=NOW).tags == ["edge"]
    git(clone, "checkout", "-q", "-b", "topic")
    assert compute(["type=edge"], [], detect(clone), now=NOW).tags == []


def test_not_a_repository(tmp_path: Path) -> None:
    ctx = detect(tmp_path)
    assert (ctx.event, ctx.sha, ctx.source) == ("none", "", "none")
    assert compute(["type=sha", "type=raw,value=dev"], [], ctx, now=NOW).tags == ["dev"]


def test_generic_git_variables_set_event_pr_and_sha(repo: Path) -> None:
    ctx = detect(repo, POLYARCH_GIT_REF="refs/pull/5/merge", POLYARCH_GIT_SHA="a" * 40,
                 POLYARCH_BASE_REF="main")
    assert (ctx.event, ctx.pr_number, ctx.sha, ctx.base_ref) == ("pr", "5", "a" * 40, "main")
    with pytest.raises(UsageError, match="full ref"):
        detect(repo, POLYARCH_GIT_REF="v1.2.3")
    with pytest.raises(UsageError, match="SHORT_SHA_LENGTH"):
        detect(repo, DOCKER_METADATA_SHORT_SHA_LENGTH="x")
    assert detect(repo, DOCKER_METADATA_SHORT_SHA_LENGTH="12").short_sha == git(
        repo, "rev-parse", "HEAD")[:12]


# -- polyarch tags ---------------------------------------------------------------------

def test_the_default_branch_setting_reaches_the_edge_rule(
        repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith(("GITHUB_", "CI_", "POLYARCH_")) or k == "GITLAB_CI":
            monkeypatch.delenv(k)
    git(repo, "branch", "-m", "trunk")  # neither main nor master, and no origin
    args = ["tags", "--git-dir", str(repo), "--json", "--tag-spec", "type=edge"]
    assert cli.run(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["tags"] == [] and any("default branch is unknown" in w for w in doc["warnings"])
    monkeypatch.setenv("POLYARCH_DEFAULT_BRANCH", "trunk")
    assert cli.run(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["tags"] == ["edge"] and doc["git"]["default_branch"] == "trunk"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith(("GITHUB_", "CI_", "POLYARCH_GIT", "DOCKER_METADATA")) or k in (
                "GITLAB_CI", "SOURCE_DATE_EPOCH"):
            monkeypatch.delenv(k)


@pytest.mark.usefixtures("clean_env")
def test_tags_json_document_on_a_detached_release_tag(repo: Path, capsys: pytest.CaptureFixture[str],
                  monkeypatch: pytest.MonkeyPatch) -> None:
    git(repo, "tag", "v1.4.0")
    git(repo, "checkout", "-q", "--detach")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1578616200")
    code = cli.run(["tags", "--git-dir", str(repo), "--json", "--image", "ghcr.io/o/app",
                    "--image", "o/app", "--tag-spec", "type=semver,pattern={{version}}",
                    "--tag-spec", "type=semver,pattern={{major}}", "--flavor", "suffix=-slim"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == 1
    assert doc["tags"] == ["1.4.0-slim", "1-slim", "latest"]
    assert doc["refs"] == ["ghcr.io/o/app:1.4.0-slim", "ghcr.io/o/app:1-slim",
                           "ghcr.io/o/app:latest", "o/app:1.4.0-slim", "o/app:1-slim",
                           "o/app:latest"]
    assert doc["version"] == "1.4.0-slim" and doc["latest"] is True
    assert doc["labels"]["org.opencontainers.image.created"] == "2020-01-10T00:30:00.000Z"
    assert doc["annotations"] == doc["labels"]
    assert doc["git"]["event"] == "tag" and doc["git"]["ref"] == "refs/tags/v1.4.0"
    assert set(doc) == {"schema", "version", "tags", "refs", "latest", "latest_reason", "labels",
                        "annotations", "git", "warnings"}


@pytest.mark.usefixtures("clean_env")
def test_cli_human_and_errors(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["tags", "--git-dir", str(repo)]) == 0
    out = capsys.readouterr().out
    assert "main" in out and "org.opencontainers.image.revision" in out
    assert cli.run(["tags", "--git-dir", str(repo), "--tag-spec", "type=semvr"]) == 2
    err = capsys.readouterr().err
    assert "type=semvr" in err and "did you mean 'semver'" in err
    assert cli.run(["tags", "--git-dir", str(repo), "--image", "ghcr.io/o/app:1"]) == 2
    assert "tag or digest" in capsys.readouterr().err


def test_branch_without_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    git(tmp_path, "init", "-q", "-b", "trunk")
    ctx = detect(tmp_path)
    assert (ctx.event, ctx.ref_name, ctx.sha, ctx.commit_time) == ("branch", "trunk", "", None)
    assert compute(["type=ref,event=branch", "type=sha"], [], ctx, now=NOW).tags == ["trunk"]


@pytest.mark.usefixtures("clean_env")
def test_cli_old_context_spelling_warns_and_reads_the_same_directory(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["tags", "--git-dir", str(repo), "--json"]) == 0
    new = json.loads(capsys.readouterr().out)
    assert cli.run(["tags", "--context", str(repo), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["git"] == new["git"]
    assert "--context DIR is deprecated" in captured.err and "--git-dir DIR" in captured.err
    assert cli.run(["tags", "--context", str(repo), "--git-dir", str(repo)]) == 2
    assert "give one of them" in capsys.readouterr().err


@pytest.mark.usefixtures("clean_env")
def test_cli_extra_labels_and_annotations_from_flags_or_the_config_file(
        repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    git(repo, "tag", "v2.0.1")
    git(repo, "checkout", "-q", "--detach")
    args = ["tags", "--git-dir", str(repo), "--json", "--tag-spec", "type=semver,pattern={{version}}"]
    assert cli.run([*args, "--label", "org.example.tag={{tag}}",
                    "--annotation", "org.example.sha={{sha}}"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["labels"]["org.example.tag"] == "v2.0.1"
    assert doc["annotations"]["org.example.sha"] == git(repo, "rev-parse", "HEAD")[:7]
    cfg = repo / "polyarch.toml"
    cfg.write_text('tag-labels = ["org.example.tag={{tag}}"]\n'
                   'tag-annotations = ["org.example.sha={{sha}}"]\n')
    monkeypatch.chdir(repo)
    assert cli.run(args) == 0
    from_file = json.loads(capsys.readouterr().out)
    assert from_file["labels"]["org.example.tag"] == "v2.0.1"
    assert from_file["annotations"]["org.example.sha"] == doc["annotations"]["org.example.sha"]
