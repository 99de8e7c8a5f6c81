"""publish against the real engine and the loopback registry: exactly the requested tags,
one index digest under all of them, every variant runs as its platform."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import polyarch
from conftest import make_context, registry_catalog, registry_tags

from .helpers import COPY_ONLY, echoed_build, manifest_digest, needs_podman, split


def docker_run(ref: str, platform: str, *cmd: str) -> str:
    r = subprocess.run(["docker", "run", "--rm", "--pull", "always", "--platform", platform, ref,
                        *cmd], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_publish_two_platforms(hello_context: Path, repo: str) -> None:
    ref = f"{repo}:1.0"
    run = polyarch("publish", "-t", ref, "-t", f"{repo}:latest", "--json", str(hello_context))
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["schema"] == 2
    assert doc["index"]["digest"].startswith("sha256:")
    assert doc["tags"] == [ref, f"{repo}:latest"]
    assert doc["promoted"] is True
    assert doc["push"]["repositories"] == [repo] and doc["push"]["digest"] == doc["index"]["digest"]
    assert doc["verification"]["ok"] is True
    for key in ("build_seconds", "verify_seconds", "push_seconds", "tag_seconds"):
        assert doc["timings"][key] >= 0
    assert sorted(p["platform"] for p in doc["platforms"]) == ["linux/amd64", "linux/arm64"]
    modes = {p["platform"]: p["mode"] for p in doc["platforms"]}
    assert modes == {"linux/amd64": "native", "linux/arm64": "emulated"}

    # Read the index back with an independent client.
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                         capture_output=True, text=True, check=True).stdout
    index = json.loads(raw)
    plats = sorted(
        f"{m['platform']['os']}/{m['platform']['architecture']}"
        for m in index["manifests"] if m["platform"]["os"] != "unknown"
    )
    assert plats == ["linux/amd64", "linux/arm64"]
    digests = {p["platform"]: p["digest"] for p in doc["platforms"]}
    for m in index["manifests"]:
        key = f"{m['platform']['os']}/{m['platform']['architecture']}"
        if key in digests:
            assert m["digest"] == digests[key]
    latest = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                             f"docker://{repo}:latest"], capture_output=True, check=True).stdout
    assert json.loads(latest) == index

    # Each variant runs natively or under QEMU as its own architecture.
    assert docker_run(ref, "linux/arm64", "uname", "-m") == "aarch64"
    assert docker_run(ref, "linux/amd64", "uname", "-m") == "x86_64"
    # The RUN step ran as the target architecture too.
    assert docker_run(ref, "linux/arm64", "cat", "/built-on") == "aarch64"


def test_publish_human_output(hello_context: Path, repo: str) -> None:
    run = polyarch("publish", "-t", f"{repo}:h", "--platform", "linux/amd64,linux/arm64",
                   str(hello_context))
    assert run.code == 0, run.err
    assert "index   sha256:" in run.out
    assert "linux/arm64" in run.out and "emulated" in run.out
    assert f"tag     {repo}:h" in run.out
    # The exact buildx command is echoed.
    line = echoed_build(run.err)
    assert line is not None and " build --platform linux/amd64,linux/arm64 " in line, run.err


@pytest.mark.parametrize("engine", ["docker", pytest.param("podman", marks=needs_podman)])
def test_exactly_the_requested_tags(engine: str, tmp_path: Path, repo: str,
                                    registry: str) -> None:
    """No other tag (no polyarch-staging-*) is ever written, and every tag names the same
    index, the one the JSON document reports."""
    ctx = make_context(tmp_path / "ctx", dockerfile=COPY_ONLY)
    tags = ("1.2.3", "1.2", "latest")
    run = polyarch("publish", "--engine", engine, *[a for t in tags for a in ("-t", f"{repo}:{t}")],
                   "--json", str(ctx))
    assert run.code == 0, run.text
    digest = run.json()["index"]["digest"]
    host, name = split(repo)
    assert name in registry_catalog(host)
    assert sorted(registry_tags(host, name)) == sorted(tags)
    assert {manifest_digest(host, name, t) for t in tags} == {digest}


def test_dry_run_changes_nothing(hello_context: Path, repo: str, registry: str) -> None:
    run = polyarch("publish", "--dry-run", "-t", f"{repo}:dry", "--build-arg", "A=1",
                   str(hello_context))
    assert run.code == 0, run.err
    line = next(ln for ln in run.out.splitlines() if ln.startswith("docker buildx build"))
    assert "--platform linux/amd64,linux/arm64" in line
    # The build writes a layout on local disk; only verified content is pushed, by polyarch.
    assert "--output 'type=oci,tar=false,dest=<cache>/builds/<new>'" in line
    assert "--tag" not in line.split() and "--push" not in line.split()
    assert "polyarch-staging" not in run.out
    assert "--build-arg A=1" in line
    assert f"push it by digest to {repo}, then tag {repo}:dry" in run.out
    assert registry_tags(registry, repo.split("/", 1)[1]) == []


def test_config_file_drives_publish(hello_context: Path, repo: str) -> None:
    (hello_context / "polyarch.toml").write_text(
        f'platforms = ["arm64"]\ntags = ["{repo}:cfg"]\nlabels = {{ team = "core" }}\n')
    run = polyarch("publish", "--json", ".", cwd=hello_context)
    assert run.code == 0, run.err
    assert [p["platform"] for p in run.json()["platforms"]] == ["linux/arm64"]
    cfg = subprocess.run(["skopeo", "inspect", "--config", "--tls-verify=false",
                          "--override-arch", "arm64", f"docker://{repo}:cfg"],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(cfg)["config"]["Labels"]["team"] == "core"


@pytest.fixture
def container_builder() -> Iterator[str]:
    """A docker-container builder, created but never booted (its BuildKit image cannot be
    pulled here): enough for preflight and --dry-run to see its driver."""
    name = f"pa-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "buildx", "create", "--name", name, "--driver",
                    "docker-container"], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["docker", "buildx", "rm", name], capture_output=True)


def test_container_builder_writes_a_layout_too(hello_context: Path, repo: str,
                                               container_builder: str) -> None:
    """Whatever the builder's driver, the build goes to a layout on local disk; the engine
    never pushes."""
    run = polyarch("publish", "--dry-run", "--builder", container_builder, "-t", f"{repo}:1",
                   str(hello_context))
    assert run.code == 0, run.err
    line = next(ln for ln in run.out.splitlines() if ln.startswith("docker buildx build"))
    assert f"--builder {container_builder}" in line
    assert "--output 'type=oci,tar=false,dest=<cache>/builds/<new>'" in line
    assert "push" not in line and "--tag" not in line.split()
