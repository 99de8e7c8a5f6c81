"""CI integration of a real publish: GitHub Actions outputs and step summary, GitLab
dotenv report, the summary of a failed verification."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from cli_helpers import parse_github_output, polyarch

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json, "
               "application/vnd.docker.distribution.manifest.list.v2+json")


def gh_env(tmp_path: Path) -> dict[str, str]:
    return {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(tmp_path / "output"),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}


def registry_digest(registry: str, ref: str) -> str:
    repo, _, tag = ref.removeprefix(registry + "/").rpartition(":")
    r = httpx.head(f"http://{registry}/v2/{repo}/manifests/{tag}",
                   headers={"Accept": INDEX_TYPES}, timeout=10)
    r.raise_for_status()
    return r.headers["Docker-Content-Digest"]


@pytest.mark.engine
def test_publish_writes_github_outputs(hello_context: Path, repo: str, registry: str,
                                       tmp_path: Path) -> None:
    env = {**gh_env(tmp_path), "GITLAB_CI": "", "POLYARCH_DOTENV": str(tmp_path / "build.env")}
    ref = f"{repo}:1.0"
    run = polyarch("publish", "-t", ref, "-t", f"{repo}:latest", "--json", str(hello_context),
                   env=env)
    assert run.code == 0, run.err
    doc = run.json()
    digest = registry_digest(registry, ref)
    assert doc["index"]["digest"] == digest

    out = parse_github_output((tmp_path / "output").read_text())
    assert out["digest"] == digest
    assert out["image"] == f"{ref}@{digest}"
    assert out["tags"].split("\n") == [ref, f"{repo}:latest"]
    meta = json.loads(out["metadata"])
    assert meta == {k: v for k, v in doc.items() if k != "commands"}
    assert meta["verification"]["ok"] is True

    summary = (tmp_path / "summary.md").read_text()
    assert f"### polyarch publish `{ref}`" in summary
    assert f"Index `{digest}` · verification: ✅ passed" in summary
    for p in doc["platforms"]:
        assert re.search(rf"\| {p['platform']} \| `{p['digest']}` \| {p['mode']} \| \d+ \| ✅ passed \|",
                         summary), summary

    dotenv = (tmp_path / "build.env").read_text().splitlines()
    assert dotenv == [f"POLYARCH_DIGEST={digest}", f"POLYARCH_IMAGE={ref}@{digest}",
                      f"POLYARCH_TAGS={ref},{repo}:latest"]


@pytest.mark.engine
def test_publish_writes_gitlab_dotenv(hello_context: Path, repo: str, registry: str,
                                      tmp_path: Path) -> None:
    work = tmp_path / "job"
    work.mkdir()
    ref = f"{repo}:2"
    run = polyarch("publish", "-t", ref, str(hello_context), cwd=work,
                   env={"GITLAB_CI": "true", "GITHUB_ACTIONS": "", "POLYARCH_DOTENV": ""})
    assert run.code == 0, run.err
    digest = registry_digest(registry, ref)
    assert "section_start:" in run.err  # collapsible sections in the job log
    assert (work / "polyarch.env").read_text() == (
        f"POLYARCH_DIGEST={digest}\nPOLYARCH_IMAGE={ref}@{digest}\nPOLYARCH_TAGS={ref}\n")


@pytest.mark.engine
def test_failed_publish_summary_names_the_platform(tmp_path: Path, repo: str) -> None:
    from conftest import make_context

    bad = make_context(tmp_path / "bad", dockerfile="FROM scratch\nCOPY rootfs-amd64/ /\n")
    env = {**gh_env(tmp_path), "GITLAB_CI": ""}
    run = polyarch("publish", "-t", f"{repo}:bad", str(bad), env=env)
    assert run.code == 5, run.err
    assert "::error::" in run.err
    summary = (tmp_path / "summary.md").read_text()
    assert "linux/arm64" in summary and "❌" in summary, summary
    assert "/bin/busybox" in summary, summary
