"""publish against the real engine and the loopback registry."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import polyarch
from conftest import registry_tags

pytestmark = pytest.mark.engine


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
    assert doc["schema"] == 1
    assert doc["index"]["digest"].startswith("sha256:")
    assert doc["tags"] == [ref, f"{repo}:latest"]
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
    assert "+ docker buildx build --platform linux/amd64,linux/arm64" in run.err


def test_dry_run_changes_nothing(hello_context: Path, repo: str, registry: str) -> None:
    run = polyarch("publish", "--dry-run", "-t", f"{repo}:dry", "--build-arg", "A=1",
                   str(hello_context))
    assert run.code == 0, run.err
    line = next(ln for ln in run.out.splitlines() if ln.startswith("docker buildx build"))
    assert "--platform linux/amd64,linux/arm64" in line
    # The build pushes to a staging tag only; the final tag moves after verification.
    assert f"--tag {repo}:polyarch-staging-" in line
    assert f"{repo}:dry" not in line
    assert "--build-arg A=1" in line and "--push" in line
    assert f"promote it to {repo}:dry" in run.out
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


def test_container_builder_pushes_by_digest(hello_context: Path, repo: str,
                                            container_builder: str) -> None:
    run = polyarch("publish", "--dry-run", "--builder", container_builder, "-t", f"{repo}:1",
                   str(hello_context))
    assert run.code == 0, run.err
    line = next(ln for ln in run.out.splitlines() if ln.startswith("docker buildx build"))
    assert f"--builder {container_builder}" in line
    assert (f"--output type=image,name={repo},push-by-digest=true,name-canonical=true,push=true"
            in line)
    assert "--tag" not in line and "--push" not in line.split()
    assert "delete the staging tag" not in run.out
