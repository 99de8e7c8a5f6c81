"""CI integration: GitHub Actions outputs and step summary, GitLab dotenv report, written
from publish's JSON document (schema 2)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import parse_github_output

from polyarch import ci
from polyarch.checks.report import Finding, PlatformResult, VerifyReport
from polyarch.errors import EnvironmentProblem
from polyarch.pipeline.build import PlatformBuilt
from polyarch.pipeline.project import ImageOutcome, ProjectResult
from polyarch.pipeline.result import ImageResult
from polyarch.pipeline.tag import Tagged
from polyarch.pipeline.verify import Verified


def published(digest: str = "sha256:" + "a" * 64, ok: bool = True,
              tags: tuple[str, ...] = ("127.0.0.1:5000/team/app:1.0",
                                       "127.0.0.1:5000/team/app:latest"),
              dry_run: bool = False) -> ImageResult:
    """The result of a publish of one image (its verification failed unless ``ok``)."""
    plats = [("linux/amd64", "sha256:" + "1" * 64, "native"),
             ("linux/arm64", "sha256:" + "2" * 64, "emulated")]
    report = VerifyReport(
        "127.0.0.1:5000/team/app:1.0", digest, "application/vnd.oci.image.index.v1+json",
        [p for p, _, _ in plats], deep=True, smoke=None,
        platforms=[PlatformResult(p, d, findings=[] if ok or p == "linux/amd64" else [
            Finding("binaries", "error",
                    "ELF 64-bit LSB x86-64 executable, but linux/arm64 needs aarch64",
                    path="/bin/busybox")]) for p, d, _ in plats])
    return ImageResult(
        digest, "application/vnd.oci.image.index.v1+json", tags,
        tuple(PlatformBuilt(p, d, m, 669) for p, d, m in plats),
        verified=Verified(report, 0.0),
        tagged=Tagged(tags, 0.0) if ok else None, dry_run=dry_run,
        commands=(("docker", "buildx", "build", "--build-arg", "NPM_TOKEN=npm_s3cr3t-value",
                   "."),))


def gh_env(tmp_path: Path) -> dict[str, str]:
    return {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(tmp_path / "output"),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}


def test_ci_system_detected_from_its_variables() -> None:
    assert ci.detect({"GITHUB_ACTIONS": "true"}) == "github"
    assert ci.detect({"GITLAB_CI": "true"}) == "gitlab"
    assert ci.detect({"CI": "true"}) is None
    assert ci.detect({}) is None


def test_github_outputs_and_summary(tmp_path: Path) -> None:
    env = gh_env(tmp_path)
    (tmp_path / "output").write_text("earlier=step\n")
    written = ci.write_outputs(published(), env)
    assert written == [tmp_path / "output", tmp_path / "summary.md"]

    text = (tmp_path / "output").read_text()
    assert text.startswith("earlier=step\n")  # appended, never truncated
    out = parse_github_output(text)
    assert out["digest"] == "sha256:" + "a" * 64
    assert out["image"] == "127.0.0.1:5000/team/app:1.0@sha256:" + "a" * 64
    assert out["tags"] == "127.0.0.1:5000/team/app:1.0\n127.0.0.1:5000/team/app:latest"
    assert re.search(r"^tags<<ghadelimiter_[0-9a-f]{16}$", text, re.M)
    meta = json.loads(out["metadata"])
    assert meta["index"]["digest"] == out["digest"]
    assert "commands" not in meta
    assert "npm_s3cr3t" not in text

    summary = (tmp_path / "summary.md").read_text()
    assert "### polyarch publish `127.0.0.1:5000/team/app:1.0`" in summary
    assert "| platform | digest | build | size | verification |" in summary
    assert f"| linux/amd64 | `sha256:{'1' * 64}` | native | 669 | ✅ passed |" in summary
    assert f"| linux/arm64 | `sha256:{'2' * 64}` | emulated | 669 | ✅ passed |" in summary
    assert "`127.0.0.1:5000/team/app:latest`" in summary


def test_summary_of_a_failed_verification(tmp_path: Path) -> None:
    ci.write_outputs(published(ok=False), gh_env(tmp_path), dotenv=tmp_path / "x.env")
    # Nothing downstream may pick up an index no tag points at.
    out = parse_github_output((tmp_path / "output").read_text())
    assert set(out) == {"metadata"}
    assert json.loads(out["metadata"])["promoted"] is False
    assert (tmp_path / "x.env").read_text() == ""
    summary = (tmp_path / "summary.md").read_text()
    assert "verification: ❌ failed · **tags not moved**" in summary
    assert "| linux/amd64 | " in summary and "| ✅ passed |" in summary
    assert re.search(r"\| linux/arm64 \| .* \| ❌ failed \|", summary)
    assert "linux/arm64: error: ELF 64-bit LSB x86-64 executable" in summary


def test_secret_environment_values_are_masked(tmp_path: Path) -> None:
    doc = published()
    assert doc.verified is not None and doc.verified.report is not None
    doc.verified.report.findings.append(
        Finding("secrets", "warning", "ENV REG_PASSWORD=hunter2-long"))
    env = {**gh_env(tmp_path), "REG_PASSWORD": "hunter2-long"}
    ci.write_outputs(doc, env, dotenv=tmp_path / "x.env")
    for f in ("output", "summary.md", "x.env"):
        assert "hunter2-long" not in (tmp_path / f).read_text()
    assert "ENV REG_PASSWORD=***" in (tmp_path / "summary.md").read_text()


def test_nothing_outside_ci_or_for_a_dry_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert ci.write_outputs(published(), {"CI": "true"}) == []
    dry = published(digest="", dry_run=True)
    assert ci.write_outputs(dry, gh_env(tmp_path)) == []
    assert ci.write_outputs(dry, {"GITLAB_CI": "true"}) == []
    assert list(tmp_path.iterdir()) == []


def test_gitlab_dotenv_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert ci.write_outputs(published(), {"GITLAB_CI": "true"}) == [Path("polyarch.env")]
    assert (tmp_path / "polyarch.env").read_text() == (
        f"POLYARCH_DIGEST=sha256:{'a' * 64}\n"
        f"POLYARCH_IMAGE=127.0.0.1:5000/team/app:1.0@sha256:{'a' * 64}\n"
        "POLYARCH_TAGS=127.0.0.1:5000/team/app:1.0,127.0.0.1:5000/team/app:latest\n")


def test_project_outputs_name_each_image(tmp_path: Path) -> None:
    base = ImageOutcome("base", published(digest="sha256:" + "b" * 64,
                                          tags=("127.0.0.1:5000/t/base:1",)))
    svc = ImageOutcome("web", published(digest="sha256:" + "c" * 64,
                                        tags=("127.0.0.1:5000/t/web:1",)))
    ci.write_outputs(ProjectResult((base, svc)), gh_env(tmp_path), dotenv=tmp_path / "r.env")
    out = parse_github_output((tmp_path / "output").read_text())
    assert out["digest"] == "sha256:" + "c" * 64  # the last image built
    assert out["base-digest"] == "sha256:" + "b" * 64
    assert out["web-image"] == "127.0.0.1:5000/t/web:1@sha256:" + "c" * 64
    assert [i["name"] for i in json.loads(out["metadata"])["images"]] == ["base", "web"]
    dotenv = (tmp_path / "r.env").read_text()
    assert f"POLYARCH_DIGEST=sha256:{'c' * 64}\n" in dotenv
    assert f"POLYARCH_BASE_DIGEST=sha256:{'b' * 64}\n" in dotenv
    assert "POLYARCH_WEB_TAGS=127.0.0.1:5000/t/web:1\n" in dotenv
    summary = (tmp_path / "summary.md").read_text()
    assert "### polyarch publish `base: 127.0.0.1:5000/t/base:1`" in summary
    assert "### polyarch publish `web: 127.0.0.1:5000/t/web:1`" in summary


def test_unwritable_output_is_an_environment_error(tmp_path: Path) -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(tmp_path / "missing-dir" / "out")}
    with pytest.raises(EnvironmentProblem, match="cannot write CI output file"):
        ci.write_outputs(published(), env)


def test_project_with_a_failed_image(tmp_path: Path) -> None:
    base = ImageOutcome("base", published(digest="sha256:" + "b" * 64,
                                          tags=("127.0.0.1:5000/t/base:1",)))
    svc = ImageOutcome("web", published(digest="sha256:" + "c" * 64,
                                        tags=("127.0.0.1:5000/t/web:1",), ok=False))
    ci.write_outputs(ProjectResult((base, svc)), gh_env(tmp_path), dotenv=tmp_path / "r.env")
    out = parse_github_output((tmp_path / "output").read_text())
    assert set(out) == {"metadata", "base-digest", "base-image", "base-tags"}
    assert (tmp_path / "r.env").read_text().splitlines() == [
        f"POLYARCH_BASE_DIGEST=sha256:{'b' * 64}",
        f"POLYARCH_BASE_IMAGE=127.0.0.1:5000/t/base:1@sha256:{'b' * 64}",
        "POLYARCH_BASE_TAGS=127.0.0.1:5000/t/base:1"]
    summary = (tmp_path / "summary.md").read_text()
    assert "### polyarch publish `web: 127.0.0.1:5000/t/web:1`" in summary
    assert "verification: ❌ failed · **tags not moved**" in summary
