"""Projects with several images, built and published for real: dependency order, each
dependent built on the verified layout of what it depends on, nothing pushed until every
image passed, sandbox parity."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import last_error_line, polyarch
from conftest import IN_CI, registry_tags, unpack_busybox
from faultproxy import LocalRegistry

from .helpers import (
    NPMRC,
    assert_registry_empty,
    image_config,
    manifest,
    manifest_digest,
    platform_manifests,
    split,
)

BASE = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
RUN echo "base built on $(uname -m)" > /etc/base-release
"""

SERVICE = """\
FROM base
ARG SERVICE
RUN echo "$SERVICE on $(cat /etc/base-release)" > /srv.txt
CMD ["cat", "/srv.txt"]
"""


def write_project(root: Path, registry_repo: str, service: str = SERVICE) -> Path:
    (root / "base").mkdir(parents=True)
    for a in ("amd64", "arm64"):
        unpack_busybox(a, root / "base" / f"rootfs-{a}")
    (root / "base/Dockerfile").write_text(BASE)
    for s in ("api", "worker"):
        (root / s).mkdir()
        (root / s / "Dockerfile").write_text(service)
        (root / s / "npmrc").write_text(NPMRC)
    (root / "polyarch.toml").write_text(f"""
platforms = ["linux/amd64", "linux/arm64"]

[[image]]
name = "base"
context = "base"
tags = ["{registry_repo}/base:1"]

[[image]]
name = "api"
context = "api"
depends-on = ["base"]
tags = ["{registry_repo}/api:1"]
build-args = {{ SERVICE = "api" }}

[[image]]
name = "worker"
context = "worker"
depends-on = ["base"]
tags = ["{registry_repo}/worker:1"]
build-args = {{ SERVICE = "worker" }}
""")
    return root


def config_labels(ref: str, arch: str = "arm64") -> dict[str, str]:
    out = subprocess.run(["skopeo", "inspect", "--config", "--tls-verify=false",
                          "--override-arch", arch, f"docker://{ref}"],
                         capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out)["config"].get("Labels") or {})


@pytest.mark.engine
def test_base_and_two_services(tmp_path: Path, repo: str, registry: str) -> None:
    root = write_project(tmp_path / "proj", repo)
    run = polyarch("publish", "--json", "--output-file", "out/images.txt", cwd=root)
    assert run.code == 0, run.err
    doc = run.json()
    assert [i["name"] for i in doc["images"]] == ["base", "api", "worker"]
    base_digest = doc["images"][0]["index"]["digest"]
    for svc in ("api", "worker"):
        labels = config_labels(f"{repo}/{svc}:1")
        assert labels["org.opencontainers.image.base.digest"] == base_digest
        assert labels["io.polyarch.depends.base"] == f"{repo}/base@{base_digest}"
        out = subprocess.run(["docker", "run", "--rm", "--pull", "always", "--platform",
                              "linux/arm64", f"{repo}/{svc}:1"], capture_output=True, text=True)
        assert out.stdout.strip() == f"{svc} on base built on aarch64", out.stderr
    lines = (root / "out/images.txt").read_text().splitlines()
    assert lines[0] == f"base={repo}/base:1@{base_digest}"
    assert [ln.split("=")[0] for ln in lines] == ["base", "api", "worker"]

    # The services were built FROM the base's verified layout on local disk, pinned by
    # digest (not pulled from the registry): their layers begin with the base's.
    assert "base=oci-layout://" in run.err and f"@{base_digest}" in run.err
    host, name = split(repo)
    base_index = manifest(host, f"{name}/base", "1")
    for svc in ("api", "worker"):
        svc_index = manifest(host, f"{name}/{svc}", "1")
        for plat, digest in platform_manifests(base_index).items():
            base_layers = [x["digest"] for x in manifest(host, f"{name}/base", digest)["layers"]]
            svc_digest = platform_manifests(svc_index)[plat]
            svc_layers = [x["digest"] for x in manifest(host, f"{name}/{svc}", svc_digest)["layers"]]
            assert svc_layers[:len(base_layers)] == base_layers, (svc, plat)
            assert len(svc_layers) > len(base_layers)
    # Each repository holds exactly its tag.
    for image in ("base", "api", "worker"):
        assert registry_tags(host, f"{name}/{image}") == ["1"]

    # One image and what it depends on, not the rest.
    repo2 = repo + "-b"
    write_project(tmp_path / "proj2", repo2)
    run = polyarch("publish", "api", "--json", cwd=tmp_path / "proj2")
    assert run.code == 0, run.err
    assert [i["name"] for i in run.json()["images"]] == ["base", "api"]
    name = repo2.split("/", 1)[1]
    assert registry_tags(registry, f"{name}/worker") == []


# A service that ships an npm token: fails verification after the base passed.
LEAKY_SERVICE = SERVICE + "COPY npmrc /root/.npmrc\n"


@pytest.mark.engine
def test_a_failing_second_image_pushes_nothing_of_either(tmp_path: Path,
                                                         own_registry: LocalRegistry) -> None:
    root = write_project(tmp_path / "proj", f"{own_registry.address}/team", LEAKY_SERVICE)
    run = polyarch("publish", "api", "--json", cwd=root)
    assert run.code == 5, run.text
    line = last_error_line(run)
    assert "nothing of the project was pushed" in line
    assert "/root/.npmrc" in run.err
    # The base built and verified, but was not pushed either: no repository, no blob.
    assert_registry_empty(own_registry, "team/base", "team/api")


@pytest.mark.engine
def test_rerun_of_a_project_moves_tags_in_order(tmp_path: Path, own_registry: LocalRegistry) -> None:
    """The base is published under its tag before the service's tag moves, and both name
    what was verified in this run."""
    root = write_project(tmp_path / "proj", f"{own_registry.address}/team")
    run = polyarch("publish", "api", "--json", cwd=root)
    assert run.code == 0, run.text
    images = {i["name"]: i for i in run.json()["images"]}
    assert list(images) == ["base", "api"]
    tag_lines = [ln for ln in run.err.splitlines() if ln.startswith("tag ")]
    assert tag_lines == [f"tag {own_registry.address}/team/base:1",
                         f"tag {own_registry.address}/team/api:1"]
    for name, img in images.items():
        assert manifest_digest(own_registry.address, f"team/{name}", "1") == img["index"]["digest"]
    cfg = image_config(own_registry.address, "team/api",
                       platform_manifests(manifest(own_registry.address, "team/api", "1"))
                       ["linux/arm64"])
    assert cfg["config"]["Labels"]["io.polyarch.depends.base"] == \
        f"{own_registry.address}/team/base@{images['base']['index']['digest']}"


def test_project_exports_the_registry_build_cache(tmp_path: Path,
                                                   own_registry: LocalRegistry) -> None:
    """`cache = "registry"` in a project writes each image's cache to the registry after
    verification, as publish does for one image."""
    root = write_project(tmp_path / "proj", f"{own_registry.address}/team")
    toml = root / "polyarch.toml"
    toml.write_text('cache = "registry"\n' + toml.read_text())
    run = polyarch("publish", "api", cwd=root)
    assert run.code == 0, run.text
    assert run.err.count("exporting cache to registry ... done") >= 2, run.err
    for name in ("base", "api"):
        tags = registry_tags(own_registry.address, f"team/{name}")
        assert any(t.startswith("buildcache") for t in tags), (name, tags)


SANDBOX_DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
ARG CLI_VERSION
COPY rootfs-${TARGETARCH}/ /
COPY dist/cli.sh /bin/sandbox-cli
RUN echo "$CLI_VERSION" > /etc/cli-version
"""


@pytest.mark.engine
def test_sandbox_style_project_takes_name_version_and_tag_env(tmp_path: Path, registry: str,
                                                              repo: str) -> None:
    root = tmp_path / "sandbox"
    root.mkdir()
    for a in ("amd64", "arm64"):
        unpack_busybox(a, root / f"rootfs-{a}")
    (root / "Dockerfile").write_text(SANDBOX_DOCKERFILE)
    name = f"{repo}/sandbox"  # registry with a port: 'host:port/x' must not split on ':'
    (root / "package.json").write_text(json.dumps(
        {"name": "sandbox-cli", "version": "0.56.0", "config": {"sandboxImageUri": name}}))
    (root / "polyarch.toml").write_text("""
[[image]]
name = "sandbox"
prebuild = [
  "mkdir -p dist",
  "echo building the cli",
  "printf '#!/bin/sh\\necho sandbox-cli 0.56.0\\n' > dist/cli.sh",
  "chmod +x dist/cli.sh",
]
version = { from = "package.json", field = "version" }
name-from = { file = "package.json", field = "config.sandboxImageUri" }
tag-env = "SANDBOX_IMAGE_TAG"
build-args = { CLI_VERSION = "{version}" }
smoke = "sandbox-cli --version"
""")
    run = polyarch("publish", "--json", "--output-file", "uri.txt", cwd=root,
                   env={"SANDBOX_IMAGE_TAG": ""})
    assert run.code == 0, run.err
    # The prebuild output reaches the user: shown as it runs, or kept in a log file whose
    # path is shown.
    lines = run.err.splitlines()
    logs = [Path(ln.split("output in ", 1)[1].strip()) for ln in lines if "output in " in ln]
    assert "building the cli" in lines or any(
        "building the cli" in p.read_text() for p in logs if p.is_file()), run.err
    img = run.json()["images"][0]
    assert img["tags"] == [f"{name}:0.56.0"]
    smoke = {p["platform"]: p["checks"]["smoke"] for p in img["verification"]["platforms"]}
    assert smoke == {"linux/amd64": "pass", "linux/arm64": "pass"}
    # One image: the bare reference, as the sandbox's own scripts read it.
    assert (root / "uri.txt").read_text() == f"{name}:0.56.0@{img['index']['digest']}\n"

    # The environment variable overrides the tag.
    run = polyarch("publish", "--json", cwd=root, env={"SANDBOX_IMAGE_TAG": "pr-17"})
    assert run.code == 0, run.err
    assert run.json()["images"][0]["tags"] == [f"{name}:pr-17"]
    assert "undefined" not in registry_tags(registry, name.split("/", 1)[1])


@pytest.mark.engine
def test_failing_prebuild_stops_with_its_output(tmp_path: Path, repo: str) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / "polyarch.toml").write_text(f"""
[[image]]
name = "app"
tags = ["{repo}:1"]
prebuild = ["echo npm ERR! missing script: pack >&2; exit 3"]
""")
    run = polyarch("publish", cwd=root)
    assert run.code == 1, run.err
    # The command's own output is shown (not just the echo of the command line).
    assert "npm ERR! missing script: pack" in [ln.strip() for ln in run.err.splitlines()]
    assert "prebuild command" in last_error_line(run) and "exit status 3" in last_error_line(run)


@pytest.mark.engine
def test_podman_builds_a_service_on_its_verified_base_or_refuses(tmp_path: Path, own_registry: LocalRegistry,
                                                                 cache_dir: Path) -> None:
    """base -> service with podman: the service is built on the base's verified layout,
    or, where this podman engine takes no named build contexts, the project is refused
    (exit 2) after the base verified, and nothing of it is pushed."""
    if shutil.which("podman") is None and not IN_CI:
        pytest.skip("podman is not installed; run scripts/engine up")
    from polyarch.engines import podman as podman_engine

    # A build layout under a path podman can name (see test_podman_smoke_runs_through_podman).
    assert "/." not in str(cache_dir)
    reg = own_registry.address
    root = write_project(tmp_path / "proj", f"{reg}/team")
    names = ["podman", "images", "--all", "--format", "{{.Repository}}:{{.Tag}}"]
    before = set(subprocess.run(names, capture_output=True, text=True, check=True,
                                timeout=120).stdout.split())
    run = polyarch("publish", "api", "--engine", "podman", "--json", cwd=root)
    # podman named the base's layout it built the service on after its path (this run's
    # cache): that name is gone again, not keeping the image in podman's store for good.
    left = set(subprocess.run(names, capture_output=True, text=True, check=True,
                              timeout=120).stdout.split()) - before
    assert not {n for n in left if str(cache_dir).lstrip("/") in n}, left
    if not hasattr(podman_engine, "oci_layout_context"):
        assert run.code == 2, run.text
        assert "named build contexts" in last_error_line(run)
        assert_registry_empty(own_registry, "team/base", "team/api")
        return
    assert run.code == 0, run.text
    images = {i["name"]: i for i in run.json()["images"]}
    base_index = manifest(reg, "team/base", "1")
    api_index = manifest(reg, "team/api", "1")
    for plat, digest in platform_manifests(base_index).items():
        base_layers = [x["digest"] for x in manifest(reg, "team/base", digest)["layers"]]
        api = manifest(reg, "team/api", platform_manifests(api_index)[plat])
        assert [x["digest"] for x in api["layers"]][:len(base_layers)] == base_layers, plat
    cfg = image_config(reg, "team/api", platform_manifests(api_index)["linux/arm64"])
    assert cfg["config"]["Labels"]["io.polyarch.depends.base"] == \
        f"{reg}/team/base@{images['base']['index']['digest']}"


@pytest.mark.engine
def test_a_prebuild_background_child_does_not_outlive_polyarch(tmp_path: Path,
                                                               repo: str) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    pidfile = tmp_path / "pid"
    (root / "polyarch.toml").write_text(f"""
platforms = ["linux/amd64"]
[[image]]
name = "app"
tags = ["{repo}:1"]
prebuild = ["(sleep 3602 >/dev/null 2>&1 & echo $! > {pidfile})"]
""")
    run = polyarch("publish", cwd=root)
    assert run.code == 0, run.err
    assert "prebuild command '(sleep 3602" in run.err and "they were stopped" in run.err
    pid = int(pidfile.read_text())
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except ProcessLookupError:
        state = "gone"
    assert state in ("gone", "Z"), f"the prebuild's background child {pid} still runs"
