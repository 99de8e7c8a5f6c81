"""Split builds: each part built and verified locally, pushed by digest (no tag) with a
build descriptor; then ``merge`` (coverage, verification, tags) against the loopback
registry. The parts come from two real Docker engines, from one engine, and from podman.

The second engine is started by ``scripts/engine2 up`` (its own data root, exec root,
socket and containerd); ``.ci/run`` stops it.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import last_error_line, polyarch
from conftest import make_context, registry_tags

from .helpers import COPY_ONLY, manifest, manifest_digest, needs_podman, platform_manifests, split


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_context(tmp_path_factory.mktemp("split") / "ctx")


@pytest.fixture(scope="module")
def split_repo() -> str:
    reg = os.environ.get("POLYARCH_TEST_REGISTRY", "127.0.0.1:5000")
    return f"{reg}/split/{uuid.uuid4().hex[:12]}"


def stage(context: Path, repo: str, platform: str, out: Path, *, host: str | None = None,
          extra: tuple[str, ...] = (), flag: str = "--push") -> dict[str, Any]:
    env = {"DOCKER_HOST": host} if host else None
    run = polyarch("build", "--platform", platform, flag, "-t", f"{repo}:1",
                   "--descriptor", str(out), *extra, str(context), env=env)
    assert run.code == 0, run.err
    doc = json.loads(out.read_text())
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def descriptors(engine2: str, context: Path, split_repo: str,
                tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """linux/amd64 built on the first engine, linux/arm64 on the second."""
    d = tmp_path_factory.mktemp("descriptors")
    stage(context, split_repo, "linux/amd64", d / "amd64.json")
    # --stage is the old name of --push (hidden, kept working).
    stage(context, split_repo, "linux/arm64", d / "arm64.json", host=engine2, flag="--stage")
    return d / "amd64.json", d / "arm64.json"


def docker_run(ref: str, platform: str, *cmd: str) -> str:
    r = subprocess.run(["docker", "run", "--rm", "--pull", "always", "--platform", platform, ref,
                        *cmd], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def raw_manifest(ref: str) -> dict[str, Any]:
    out = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                         capture_output=True, text=True, check=True).stdout
    doc = json.loads(out)
    assert isinstance(doc, dict)
    return doc


def test_a_part_descriptor_names_its_untagged_push_by_digest(descriptors: tuple[Path, Path],
                                                             split_repo: str) -> None:
    amd, arm = (json.loads(p.read_text()) for p in descriptors)
    assert amd["kind"] == "polyarch-build" and amd["schema"] == 2
    assert amd["repository"] == split_repo
    assert amd["platforms"] == ["linux/amd64"] and arm["platforms"] == ["linux/arm64"]
    assert amd["modes"] == {"linux/amd64": "native"}
    assert arm["modes"] == {"linux/arm64": "emulated"}
    assert amd["verified"] is True and arm["verified"] is True
    assert "staging" not in arm
    assert arm["reference"] == f"{split_repo}@{arm['digest']}"
    # What the descriptor names is in the registry, by digest: the platform's manifest,
    # or an index around it (with its attestations).
    root = raw_manifest(arm["reference"])
    if "manifests" in root:
        assert platform_manifests(root) == {"linux/arm64": arm["manifests"]["linux/arm64"]}
    else:
        assert arm["digest"] == arm["manifests"]["linux/arm64"]
        cfg = subprocess.run(["skopeo", "inspect", "--config", "--tls-verify=false",
                              f"docker://{arm['reference']}"], capture_output=True, text=True,
                             check=True).stdout
        assert json.loads(cfg)["architecture"] == "arm64"
    # A pushed part has no tag at all.
    assert registry_tags(*split(split_repo)) == []


def test_merge_two_engines(descriptors: tuple[Path, Path], split_repo: str,
                           tmp_path: Path) -> None:
    amd_d, arm_d = (json.loads(p.read_text()) for p in descriptors)
    ref = f"{split_repo}:1.0"
    gh = {"GITHUB_ACTIONS": "true", "GITLAB_CI": "", "GITHUB_OUTPUT": str(tmp_path / "out"),
          "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    run = polyarch("merge", "-t", ref, "-t", f"{split_repo}:latest", "--json",
                   str(descriptors[0]), str(descriptors[1]), env=gh)
    assert run.code == 0, run.err
    doc = run.json()
    # The merge job hands the result to the CI system, as publish does.
    assert f"digest={doc['index']['digest']}" in (tmp_path / "out").read_text()
    assert "linux/arm64" in (tmp_path / "summary.md").read_text()
    assert doc["promoted"] is True
    assert doc["tags"] == [ref, f"{split_repo}:latest"]
    assert doc["verification"]["ok"] is True
    assert doc["expected_platforms"] == ["linux/amd64", "linux/arm64"]
    assert {p["platform"]: p["mode"] for p in doc["platforms"]} == {
        "linux/amd64": "native", "linux/arm64": "emulated"}
    assert [s["kind"] for s in doc["sources"]] == ["descriptor", "descriptor"]
    for key in ("merge_seconds", "verify_seconds", "tag_seconds"):
        assert doc["timings"][key] >= 0

    index = raw_manifest(ref)
    # Exactly the tags asked for (the parts were pushed without any).
    assert sorted(registry_tags(*split(split_repo))) == ["1.0", "latest"]
    assert raw_manifest(f"{split_repo}:latest") == index
    plat = {m["platform"]["architecture"]: m for m in index["manifests"]
            if m["platform"]["os"] == "linux"}
    # The very manifests the two engines pushed, unchanged.
    assert plat["amd64"]["digest"] == amd_d["manifests"]["linux/amd64"]
    assert plat["arm64"]["digest"] == arm_d["manifests"]["linux/arm64"]
    # Attestations the parts carry are kept and still point at their platform's manifest.
    in_parts = [m for d in (amd_d, arm_d) for m in raw_manifest(d["reference"]).get("manifests", [])
                if m["platform"]["os"] == "unknown"]
    att = [m for m in index["manifests"] if m["platform"]["os"] == "unknown"]
    assert len(att) == len(in_parts)
    subjects = {m["annotations"]["vnd.docker.reference.digest"] for m in att}
    assert subjects <= {plat["amd64"]["digest"], plat["arm64"]["digest"]}
    assert all(m["annotations"]["vnd.docker.reference.type"] == "attestation-manifest"
               for m in att)

    assert docker_run(ref, "linux/amd64", "uname", "-m") == "x86_64"
    assert docker_run(ref, "linux/arm64", "uname", "-m") == "aarch64"
    assert docker_run(ref, "linux/arm64", "cat", "/built-on") == "aarch64"

    # polyarch's own verify agrees.
    v = polyarch("verify", ref, "--platform", "linux/amd64,linux/arm64")
    assert v.code == 0, v.err


def test_merge_refuses_duplicate_platform(descriptors: tuple[Path, Path], context: Path,
                                          split_repo: str, tmp_path: Path) -> None:
    # A second, different linux/amd64 image (another build argument, another digest).
    other = stage(context, split_repo, "linux/amd64", tmp_path / "amd64-b.json",
                  extra=("--label", "variant=b"))
    assert other["digest"] != json.loads(descriptors[0].read_text())["digest"]
    run = polyarch("merge", "-t", f"{split_repo}:dup", str(descriptors[0]), str(descriptors[1]),
                   str(tmp_path / "amd64-b.json"))
    assert run.code == 2, run.err
    line = last_error_line(run)
    assert "duplicate platform linux/amd64" in line
    assert str(descriptors[0]) in line and str(tmp_path / "amd64-b.json") in line
    assert "dup" not in registry_tags(*split_repo.split("/", 1))


def test_merge_refuses_one_source_given_twice(descriptors: tuple[Path, Path],
                                             split_repo: str) -> None:
    """``merge A A`` would publish a one-platform index: refused (exit 2), also with the
    other platform's part given."""
    a, b = (str(p) for p in descriptors)
    for sources in ((a, a), (a, a, b)):
        run = polyarch("merge", "-t", f"{split_repo}:twice", "--platform", "linux/amd64",
                       *sources)
        assert run.code == 2, run.text
        line = last_error_line(run)
        assert f"sources {a!r} and {a!r} are the same image" in line
    assert "twice" not in registry_tags(*split(split_repo))


def test_merge_refuses_missing_expected_platform(descriptors: tuple[Path, Path],
                                                 split_repo: str, tmp_path: Path) -> None:
    run = polyarch("merge", "-t", f"{split_repo}:partial", "--platform",
                   "linux/amd64,linux/arm64", str(descriptors[0]))
    assert run.code == 5, run.err
    assert "missing expected platform linux/arm64" in last_error_line(run)
    # The same from the config file's platforms.
    (tmp_path / "polyarch.toml").write_text('platforms = ["linux/amd64", "linux/arm64"]\n')
    run = polyarch("merge", "-t", f"{split_repo}:partial", str(descriptors[0]), cwd=tmp_path)
    assert run.code == 5, run.err
    assert "missing expected platform linux/arm64" in last_error_line(run)
    # And from the default platforms, the same as publish's (no --platform, no config).
    empty = tmp_path / "no-config"
    empty.mkdir()
    run = polyarch("merge", "-t", f"{split_repo}:partial", str(descriptors[0]), cwd=empty)
    assert run.code == 5, run.err
    assert "missing expected platform linux/arm64" in last_error_line(run)
    assert "partial" not in registry_tags(*split(split_repo))


def test_merge_refuses_unexpected_platform(descriptors: tuple[Path, Path],
                                           split_repo: str) -> None:
    run = polyarch("merge", "-t", f"{split_repo}:extra", "--platform", "linux/amd64",
                   str(descriptors[0]), str(descriptors[1]))
    assert run.code == 5, run.err
    line = last_error_line(run)
    assert "unexpected platform linux/arm64" in line and str(descriptors[1]) in line


def test_merge_source_that_does_not_exist(descriptors: tuple[Path, Path], split_repo: str,
                                          tmp_path: Path) -> None:
    run = polyarch("merge", "-t", f"{split_repo}:x", str(descriptors[0]), f"{split_repo}:nope")
    assert run.code == 4, run.err
    assert f"source {split_repo}:nope: no such image" in last_error_line(run)

    missing = tmp_path / "arm64.json"
    run = polyarch("merge", "-t", f"{split_repo}:x", str(descriptors[0]), str(missing))
    assert run.code == 2, run.err
    assert f"source {missing}: no such descriptor file" in last_error_line(run)

    # A descriptor whose image is gone (another repository than it says).
    doc = json.loads(descriptors[1].read_text())
    doc["repository"] = doc["repository"] + "-gone"
    moved = tmp_path / "gone.json"
    moved.write_text(json.dumps(doc))
    run = polyarch("merge", "-t", f"{split_repo}:x", str(descriptors[0]), str(moved))
    assert run.code == 4, run.err
    line = last_error_line(run)
    assert f"source {moved}" in line and "not in the registry" in line
    assert "x" not in registry_tags(*split_repo.split("/", 1))


def test_merge_plain_buildx_images(context: Path, registry: str) -> None:
    """Two single-platform images pushed with plain ``docker buildx build --push`` to two
    other repositories: one an index with a provenance attestation, one a bare manifest.
    merge copies both into the target repository and references them by digest."""
    base = f"{registry}/plain/{uuid.uuid4().hex[:10]}"
    amd, arm, target = f"{base}-amd:x", f"{base}-arm:x", f"{base}-app"
    for ref, plat, extra in ((amd, "linux/amd64", []), (arm, "linux/arm64", ["--provenance=false"])):
        r = subprocess.run(["docker", "buildx", "build", "--platform", plat, "-t", ref, "--push",
                            *extra, str(context)], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
    arm_manifest = raw_manifest(arm)
    assert "manifests" not in arm_manifest  # a single-platform manifest, no index around it
    arm_digest = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--format",
                                 "{{.Digest}}", f"docker://{arm}"], capture_output=True,
                                text=True, check=True).stdout.strip()

    run = polyarch("merge", "-t", f"{target}:1", "--json", amd, f"{base}-arm@{arm_digest}")
    assert run.code == 0, run.err
    doc = run.json()
    assert [s["kind"] for s in doc["sources"]] == ["reference", "reference"]
    index = raw_manifest(f"{target}:1")
    plats = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]
             if m["platform"]["os"] == "linux"}
    assert plats["arm64"] == arm_digest
    assert len([m for m in index["manifests"] if m["platform"]["os"] == "unknown"]) == 1
    # Everything is in the target repository now: readable by digest there.
    for d in plats.values():
        raw_manifest(f"{target}@{d}")
    assert docker_run(f"{target}:1", "linux/arm64", "uname", "-m") == "aarch64"
    assert docker_run(f"{target}:1", "linux/amd64", "uname", "-m") == "x86_64"


def test_build_dry_run(context: Path, split_repo: str, tmp_path: Path) -> None:
    out = tmp_path / "d.json"
    run = polyarch("build", "--platform", "linux/arm64", "--stage", "--dry-run", "-t",
                   f"{split_repo}:1", "--descriptor", str(out), str(context))
    assert run.code == 0, run.err
    line = next(ln for ln in run.out.splitlines() if ln.startswith("docker buildx build"))
    assert "--platform linux/arm64 " in line
    assert "--output 'type=oci,tar=false,dest=<cache>/builds/<new>'" in line
    assert "--tag" not in line.split() and "polyarch-staging" not in run.out
    assert f"push it by digest to {split_repo}" in run.out
    assert not out.exists()


def test_build_needs_a_target(context: Path) -> None:
    run = polyarch("build", "--platform", "linux/amd64", "--stage", str(context),
                   cwd=context)
    assert run.code == 2, run.err
    assert "--push needs a name" in last_error_line(run)


@pytest.mark.parametrize("engine", ["docker", pytest.param("podman", marks=needs_podman)])
def test_split_build_then_merge(engine: str, tmp_path: Path, registry: str) -> None:
    """One part per platform pushed by digest, then merge: a two-platform index under
    the one tag asked for, and no other tag in the repository."""
    ctx = make_context(tmp_path / "ctx", dockerfile=COPY_ONLY)
    repo = f"{registry}/split/{uuid.uuid4().hex[:12]}"
    parts = []
    for plat in ("linux/amd64", "linux/arm64"):
        d = tmp_path / f"{plat.replace('/', '-')}.json"
        stage(ctx, repo, plat, d, extra=("--engine", engine))
        parts.append(str(d))
    assert registry_tags(*split(repo)) == []
    run = polyarch("merge", "-t", f"{repo}:1", "--json", *parts)
    assert run.code == 0, run.text
    host, name = split(repo)
    assert registry_tags(host, name) == ["1"]
    index = manifest(host, name, "1")
    assert sorted(platform_manifests(index)) == ["linux/amd64", "linux/arm64"]
    assert run.json()["promoted"] is True
    assert manifest_digest(host, name, "1") == run.json()["index"]["digest"]
    for plat, part in zip(("linux/amd64", "linux/arm64"), parts, strict=True):
        described = json.loads(Path(part).read_text())["manifests"][plat]
        assert platform_manifests(index)[plat] == described


def git_repo(path: Path) -> str:
    """Commit everything under ``path`` (a fresh repository); returns the commit."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com",
                               *args], cwd=path, check=True, capture_output=True,
                              text=True).stdout.strip()
    git("init", "-q", "-b", "main")
    git("add", ".")
    git("commit", "-qm", "one")
    return git("rev-parse", "HEAD")


def test_split_builds_with_tags_from_git_on_two_engines(engine2: str, tmp_path: Path,
                                                        registry: str) -> None:
    """The matrix recipe of docs/split-builds.md: each engine builds its one platform with
    tags from git (POLYARCH_IMAGES/POLYARCH_TAG_SPECS), then merge. BuildKit refuses index
    annotations for one platform: they go on each manifest, and the merged index gets
    them from the descriptors (or from the merge's own tag rules)."""
    ctx = make_context(tmp_path / "ctx", dockerfile=COPY_ONLY)
    sha = git_repo(ctx)
    repo = f"{registry}/split/{uuid.uuid4().hex[:12]}"
    host, name = split(repo)
    env = {"POLYARCH_IMAGES": repo, "POLYARCH_TAG_SPECS": "type=sha\ntype=raw,value=1",
           **{k: "" for k in ("GITHUB_ACTIONS", "GITLAB_CI", "GITHUB_REF", "CI_COMMIT_TAG")}}
    parts: dict[str, Path] = {}
    for plat, docker_host in (("linux/amd64", None), ("linux/arm64", engine2)):
        parts[plat] = tmp_path / f"{plat.replace('/', '-')}.json"
        run = polyarch("build", "--platform", plat, "--push", "--descriptor", str(parts[plat]),
                       ".", cwd=ctx, env={**env, **({"DOCKER_HOST": docker_host}
                                                     if docker_host else {})})
        assert run.code == 0, run.err
        doc = json.loads(parts[plat].read_text())
        assert doc["repository"] == repo
        assert doc["annotations"]["org.opencontainers.image.revision"] == sha
        # The platform's manifest carries them itself.
        m = manifest(host, name, doc["manifests"][plat])
        assert m["annotations"]["org.opencontainers.image.revision"] == sha
        assert m["annotations"]["org.opencontainers.image.version"] == "1"
    assert registry_tags(host, name) == []

    run = polyarch("merge", "--json", str(parts["linux/amd64"]), str(parts["linux/arm64"]),
                   cwd=ctx, env=env)
    assert run.code == 0, run.err
    assert sorted(run.json()["tags"]) == sorted([f"{repo}:sha-{sha[:7]}", f"{repo}:1"])
    assert sorted(registry_tags(host, name)) == sorted(["1", f"sha-{sha[:7]}"])
    index = raw_manifest(f"{repo}:1")
    ann = index["annotations"]
    assert ann["org.opencontainers.image.revision"] == sha
    assert ann["org.opencontainers.image.version"] == "1"
    assert ann["org.opencontainers.image.created"]
    for plat, arch in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
        described = json.loads(parts[plat].read_text())["manifests"][plat]
        assert platform_manifests(index)[plat] == described
        assert docker_run(f"{repo}:1", plat, "uname", "-m") == arch
        cfg = subprocess.run(["skopeo", "inspect", "--config", "--tls-verify=false",
                              "--override-arch", plat.split("/")[1], f"docker://{repo}:1"],
                             capture_output=True, text=True, check=True).stdout
        assert json.loads(cfg)["config"]["Labels"]["org.opencontainers.image.revision"] == sha

    # A merge with plain tags (no tag rules of its own) takes what the descriptors agree
    # on; the two builds' creation times differ, so that one is left out, with a warning.
    run = polyarch("merge", "-t", f"{repo}:plain", str(parts["linux/amd64"]),
                   str(parts["linux/arm64"]), cwd=tmp_path)
    assert run.code == 0, run.err
    ann = raw_manifest(f"{repo}:plain")["annotations"]
    assert ann["org.opencontainers.image.revision"] == sha
    assert "org.opencontainers.image.created" not in ann
    assert "org.opencontainers.image.created differs between sources" in run.err
