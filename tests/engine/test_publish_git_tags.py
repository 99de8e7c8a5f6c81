"""publish with tags and labels computed from git state, against the real registry."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli_helpers import polyarch
from conftest import make_context, registry_tags

pytestmark = pytest.mark.engine

SPECS = ("--tag-spec", "type=semver,pattern={{version}}",
         "--tag-spec", "type=semver,pattern={{major}}.{{minor}}",
         "--tag-spec", "type=sha")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_semver_tags_and_forward_only_latest(tmp_path: Path, repo: str, registry: str) -> None:
    proj = make_context(tmp_path / "proj")
    git(proj, "init", "-q", "-b", "main")
    git(proj, "add", ".")
    git(proj, "commit", "-qm", "one")
    git(proj, "tag", "v2.0.0")
    git(proj, "checkout", "-q", "--detach", "v2.0.0")  # a release build: HEAD at the tag
    sha = git(proj, "rev-parse", "HEAD")
    env = {k: "" for k in ("GITHUB_ACTIONS", "GITLAB_CI", "GITHUB_REF", "CI_COMMIT_TAG")}

    run = polyarch("publish", "--image", repo, *SPECS, "--json", ".", cwd=proj, env=env)
    assert run.code == 0, run.err
    doc = run.json()
    assert set(doc["tags"]) == {f"{repo}:2.0.0", f"{repo}:2.0", f"{repo}:sha-{sha[:7]}",
                                f"{repo}:latest"}
    name = repo.split("/", 1)[1]
    # Exactly these tags: nothing else (no staging tag) was ever written.
    assert set(registry_tags(registry, name)) == {"2.0.0", "2.0", "latest", f"sha-{sha[:7]}"}

    # Labels on each image config, annotations on the index.
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          f"docker://{repo}:2.0.0"], capture_output=True, check=True).stdout
    ann = json.loads(raw).get("annotations") or {}
    assert ann.get("org.opencontainers.image.version") == "2.0.0"
    assert ann.get("org.opencontainers.image.revision") == sha
    cfg = subprocess.run(["skopeo", "inspect", "--config", "--tls-verify=false",
                          "--override-arch", "arm64", f"docker://{repo}:2.0.0"],
                         capture_output=True, text=True, check=True).stdout
    labels = json.loads(cfg)["config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.version"] == "2.0.0"
    latest_before = doc["index"]["digest"]

    # A 1.9.1 patch released after 2.0.0 must not take 'latest'.
    (proj / "patch.txt").write_text("fix\n")
    git(proj, "checkout", "-q", "-b", "release-1.9")
    git(proj, "add", ".")
    git(proj, "commit", "-qm", "patch")
    git(proj, "tag", "v1.9.1")
    git(proj, "checkout", "-q", "--detach", "v1.9.1")
    run = polyarch("publish", "--image", repo, *SPECS, "--json", ".", cwd=proj, env=env)
    assert run.code == 0, run.err
    tags = set(run.json()["tags"])
    assert f"{repo}:1.9.1" in tags and f"{repo}:latest" not in tags
    raw_latest = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                                 f"docker://{repo}:latest"], capture_output=True, check=True).stdout
    import hashlib

    assert "sha256:" + hashlib.sha256(raw_latest).hexdigest() == latest_before


def test_bad_tag_spec_is_a_usage_error(hello_context: Path, repo: str) -> None:
    run = polyarch("publish", "--image", repo, "--tag-spec", "type=semvr,pattern={{version}}",
                   str(hello_context))
    assert run.code == 2, run.err
    assert "Traceback" not in run.err
    assert "semvr" in run.err.splitlines()[-1]


def test_mixed_case_image_and_pep440_dry_run(tmp_path: Path, repo: str) -> None:
    """metadata-action's commonest input, ghcr.io/${{ github.repository }} with a mixed-case
    owner, is lower-cased; type=pep440 gives its tags; the registry's (empty) tag list is
    read for latest=auto."""
    proj = make_context(tmp_path / "proj")
    git(proj, "init", "-q", "-b", "main")
    git(proj, "add", ".")
    git(proj, "commit", "-qm", "one")
    git(proj, "tag", "v1.2.3")
    git(proj, "checkout", "-q", "--detach", "v1.2.3")
    env = {k: "" for k in ("GITHUB_ACTIONS", "GITLAB_CI", "GITHUB_REF", "CI_COMMIT_TAG")}
    host, _, path = repo.partition("/")
    mixed = f"{host}/Octo/{path.rsplit('/', 1)[1].upper()}"
    run = polyarch("publish", "--dry-run", "--json", "--image", mixed,
                   "--tag-spec", "type=pep440,pattern={{major}}.{{minor}}",
                   "--tag-spec", "type=pep440,pattern={{version}}", ".", cwd=proj, env=env)
    assert run.code == 0, run.err
    lower = mixed.lower()
    assert run.json()["tags"] == [f"{lower}:1.2", f"{lower}:1.2.3", f"{lower}:latest"]
    assert "org.opencontainers.image.version=1.2" in run.json()["commands"][-1]


def test_one_platform_publish_with_tags_from_git(tmp_path: Path, repo: str) -> None:
    """BuildKit refuses index annotations when it exports one platform: the annotations
    from git go on the manifest the tag names."""
    proj = make_context(tmp_path / "proj")
    git(proj, "init", "-q", "-b", "main")
    git(proj, "add", ".")
    git(proj, "commit", "-qm", "one")
    sha = git(proj, "rev-parse", "HEAD")
    env = {k: "" for k in ("GITHUB_ACTIONS", "GITLAB_CI", "GITHUB_REF", "CI_COMMIT_TAG")}
    run = polyarch("publish", "--platform", "linux/amd64", "--image", repo, "--tag-spec",
                   "type=sha", "--json", ".", cwd=proj, env=env)
    assert run.code == 0, run.err
    assert run.json()["tags"] == [f"{repo}:sha-{sha[:7]}"]
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          f"docker://{repo}:sha-{sha[:7]}"], capture_output=True,
                         check=True).stdout
    doc = json.loads(raw)
    assert doc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert doc["annotations"]["org.opencontainers.image.revision"] == sha


def test_a_version_from_git_is_the_last_tag_and_needs_one(tmp_path: Path, repo: str) -> None:
    proj = make_context(tmp_path / "proj")
    (proj / "polyarch.toml").write_text(
        f'[[image]]\nname = "app"\nversion = {{ from = "git" }}\ntags = ["{repo}:{{version}}"]\n')
    git(proj, "init", "-q", "-b", "main")
    git(proj, "add", ".")
    git(proj, "commit", "-qm", "one")
    run = polyarch("publish", "--dry-run", cwd=proj)
    assert run.code == 2, run.text
    # One line, the last: git's own complaint is not shown below it.
    assert run.err.splitlines()[-1] == (f"polyarch: error: {proj / 'polyarch.toml'}: image 'app':"
                                        " version from git: no tag reachable from HEAD")
    git(proj, "tag", "v1.4.2")
    run = polyarch("publish", "--dry-run", "--json", cwd=proj)
    assert run.code == 0, run.text
    assert run.json()["images"][0]["tags"] == [f"{repo}:1.4.2"]
