"""buildx's build flags through polyarch: each reaches the buildx command line
unchanged (dry run, which probes the engine), a named context substitutes a base image
in a real build (buildx and podman), and an index annotation is in the pushed index."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import httpx
import pytest
from cli_helpers import polyarch
from conftest import IN_CI, make_context

from .helpers import echoed_build

OCI_INDEX = "application/vnd.oci.image.index.v1+json"

FLAGS = [
    ("--build-context", "base=docker-image://127.0.0.1:5000/t/base@sha256:" + "a" * 64),
    ("--ssh", "default"),
    ("--annotation", "index:org.opencontainers.image.description=two words, one comma"),
    ("--annotation", "manifest[linux/arm64]:org.example.arch=arm64"),
    ("--attest", "type=provenance,mode=max"),
    ("--cache-from", "type=registry,ref=127.0.0.1:5000/t/app:cache"),
    ("--cache-to", "type=registry,ref=127.0.0.1:5000/t/app:cache,mode=max"),
    ("--network", "host"),
    ("--shm-size", "128m"),
    ("--ulimit", "nofile=1024:2048"),
]


def buildx_argv(run_out: str) -> list[str]:
    import json

    doc = json.loads(run_out)
    cmd = next(c for c in doc["commands"] if c.startswith("docker buildx build"))
    return shlex.split(cmd)


def pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


@pytest.fixture
def copy_context(tmp_path: Path) -> Path:
    """Two platforms, no RUN step: nothing runs under emulation."""
    return make_context(tmp_path / "ctx", "FROM scratch\nARG TARGETARCH\nCOPY rootfs-${TARGETARCH}/ /\n")


@pytest.mark.parametrize("command", ["publish", "build"])
def test_each_flag_reaches_the_buildx_argv(command: str, copy_context: Path, repo: str) -> None:
    args = [a for pair in FLAGS for a in pair]
    run = polyarch(command, "--dry-run", "--json", "-t", f"{repo}:1", *args,
                   "--allow-entitlement", "network.host", "--provenance",
                   "--sbom", "generator=docker/buildkit-syft-scanner", str(copy_context))
    assert run.code == 0, run.err
    argv = buildx_argv(run.out)
    for flag in dict(FLAGS):
        if flag == "--cache-to":
            continue
        assert pairs(argv, flag) == [v for f, v in FLAGS if f == flag], flag
    # The cache holds the image's layers: it leaves in a second, cache-only build run
    # after verification, never with the build itself.
    assert pairs(argv, "--cache-to") == []
    export = [shlex.split(c) for c in run.json()["commands"] if "type=cacheonly" in c]
    assert len(export) == 1
    assert pairs(export[0], "--cache-to") == [v for f, v in FLAGS if f == "--cache-to"]
    assert pairs(argv, "--allow") == ["network.host"]
    assert "--sbom=generator=docker/buildkit-syft-scanner" in argv
    assert "--provenance=true" in argv


def test_flags_from_the_environment_and_an_image_entry(tmp_path: Path, repo: str) -> None:
    ctx = make_context(tmp_path / "ctx", "FROM scratch\nARG TARGETARCH\nCOPY rootfs-${TARGETARCH}/ /\n",
                       arches=("amd64",))
    (tmp_path / "polyarch.toml").write_text(f"""
platforms = ["linux/amd64"]
[[image]]
name = "app"
context = "ctx"
tags = ["{repo}:1"]
build-contexts = {{ base = "docker-image://127.0.0.1:5000/t/base:1" }}
annotations = ["index:org.example.from=image-entry"]
shm-size = "1g"
ulimits = ["nproc=4096"]
""")
    run = polyarch("publish", "--dry-run", "--json", cwd=tmp_path,
                   env={"POLYARCH_SSH": "default", "POLYARCH_NETWORK": "none"})
    assert run.code == 0, run.err
    import json

    doc = json.loads(run.out)
    argv = shlex.split(next(c for c in doc["images"][0]["commands"]
                            if c.startswith("docker buildx build")))
    assert pairs(argv, "--build-context") == ["base=docker-image://127.0.0.1:5000/t/base:1"]
    # One platform: BuildKit makes no index (and refuses index annotations), so the
    # index annotation goes on the manifest.
    assert pairs(argv, "--annotation") == ["manifest:org.example.from=image-entry"]
    assert pairs(argv, "--shm-size") == ["1g"] and pairs(argv, "--ulimit") == ["nproc=4096"]
    assert pairs(argv, "--ssh") == ["default"] and pairs(argv, "--network") == ["none"]
    assert str(ctx) in argv[-1]


def test_bad_flag_value_is_one_line_exit_2(copy_context: Path, repo: str) -> None:
    run = polyarch("publish", "-t", f"{repo}:1", "--ulimit", "nofiles=1", str(copy_context))
    assert run.code == 2
    assert run.err.strip().splitlines() == [
        "polyarch: error: 'ulimits': ulimit 'nofiles=1': unknown limit 'nofiles' (one of core,"
        " cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime,"
        " sigpending, stack)"]


BASE = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
COPY marker /base-marker
"""

SERVICE = """\
FROM base
RUN test "$(cat /base-marker)" = "from the substituted base" && cp /base-marker /service-marker
"""


def publish_base(tmp_path: Path, repo: str, *extra: str) -> str:
    ctx = make_context(tmp_path / "base", BASE, arches=("amd64",))
    (ctx / "marker").write_text("from the substituted base\n")
    run = polyarch("publish", "--json", "--platform", "linux/amd64", "-t", f"{repo}-base:1",
                   *extra, str(ctx))
    assert run.code == 0, run.err
    import json

    digest = json.loads(run.out)["index"]["digest"]
    assert digest.startswith("sha256:")
    return f"{repo}-base@{digest}"


def test_named_context_substitutes_the_base_image(tmp_path: Path, repo: str) -> None:
    """'FROM base' names no image anyone could pull: the build succeeds only because
    --build-context base=docker-image://... stands in for it, and the smoke run reads
    the file the base brought."""
    pinned = publish_base(tmp_path, repo)
    svc = tmp_path / "svc"
    svc.mkdir()
    (svc / "Dockerfile").write_text(SERVICE)
    run = polyarch("publish", "--json", "--platform", "linux/amd64", "-t", f"{repo}:1",
                   "--build-context", f"base=docker-image://{pinned}",
                   "--smoke", "/bin/cat /service-marker", str(svc))
    assert run.code == 0, run.err
    import json

    doc = json.loads(run.out)
    assert doc["promoted"] is True
    assert f"--build-context base=docker-image://{pinned}" in run.err
    # The smoke command ran in the image and found the file the RUN step copied.
    (plat,) = doc["verification"]["platforms"]
    assert plat["checks"]["smoke"] == "pass", plat


def test_index_annotation_is_in_the_pushed_index(copy_context: Path, repo: str,
                                                 registry: str) -> None:
    note = "built by polyarch, read back with httpx"
    run = polyarch("publish", "-t", f"{repo}:1",
                   "--annotation", f"index:org.opencontainers.image.description={note}",
                   "--annotation", "index:org.example.ticket=42", str(copy_context))
    assert run.code == 0, run.err
    name = repo.split("/", 1)[1]
    r = httpx.get(f"http://{registry}/v2/{name}/manifests/1", timeout=30,
                  headers={"Accept": OCI_INDEX})
    r.raise_for_status()
    index = r.json()
    assert index["mediaType"] == OCI_INDEX
    assert index["annotations"]["org.opencontainers.image.description"] == note
    assert index["annotations"]["org.example.ticket"] == "42"
    plats = {m["platform"]["architecture"] for m in index["manifests"]
             if m["platform"]["os"] == "linux"}
    assert plats == {"amd64", "arm64"}


@pytest.fixture
def podman() -> str:
    path = shutil.which("podman")
    if path is None:
        if IN_CI:
            pytest.fail("CI=true but podman is not installed (scripts/engine up installs it)")
        pytest.skip("podman is not installed; run scripts/engine up")
    return path


def test_podman_named_context_substitutes_the_base_image(podman: str, tmp_path: Path,
                                                         repo: str) -> None:
    pinned = publish_base(tmp_path, repo)
    svc = tmp_path / "svc"
    svc.mkdir()
    (svc / "Dockerfile").write_text(SERVICE)
    run = polyarch("publish", "--engine", "podman", "--platform", "linux/amd64",
                   "-t", f"{repo}:podman", "--build-context", f"base=docker-image://{pinned}",
                   "--network", "none", "--ulimit", "nofile=1024:1024", str(svc))
    assert run.code == 0, run.err
    assert f"--build-context base=docker-image://{pinned}" in run.err
    assert "--network none" in run.err


def test_podman_refuses_attestations_by_flag(podman: str, copy_context: Path, repo: str) -> None:
    run = polyarch("publish", "--engine", "podman", "-t", f"{repo}:1",
                   "--attest", "type=sbom", str(copy_context))
    assert run.code == 2
    assert run.err.strip().splitlines()[-1] == (
        "polyarch: error: the podman engine does not support attestations (--attest)"
        " (drop the option, or use --engine docker)")


ENTRYPOINT_IMAGE = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
ENTRYPOINT ["/bin/false"]
"""


def test_smoke_entrypoint_replaces_the_images(tmp_path: Path, repo: str) -> None:
    """With ENTRYPOINT ["/bin/false"], the smoke words are arguments to /bin/false and
    fail; smoke-entrypoint runs them with /bin/sh instead."""
    ctx = make_context(tmp_path / "ctx", ENTRYPOINT_IMAGE, arches=("amd64",))
    common = ("--platform", "linux/amd64", "--smoke", "-c 'test -x /bin/busybox'", str(ctx))
    run = polyarch("publish", "-t", f"{repo}:without", *common)
    assert run.code == 5, run.err
    assert "smoke command" in run.text
    run = polyarch("publish", "-t", f"{repo}:with", "--smoke-entrypoint", "/bin/sh", *common)
    assert run.code == 0, run.err


def test_skip_prebuild_leaves_the_prebuild_commands_out(tmp_path: Path, repo: str) -> None:
    make_context(tmp_path / "ctx", "FROM scratch\nARG TARGETARCH\nCOPY rootfs-${TARGETARCH}/ /\n",
                 arches=("amd64",))
    (tmp_path / "polyarch.toml").write_text(f"""
platforms = ["linux/amd64"]
[[image]]
name = "app"
context = "ctx"
tags = ["{repo}:1"]
prebuild = ["touch prebuild-ran"]
""")
    run = polyarch("publish", "--skip-prebuild", cwd=tmp_path)
    assert run.code == 0, run.err
    assert "prebuild skipped" in run.text
    assert not (tmp_path / "prebuild-ran").exists()
    run = polyarch("publish", cwd=tmp_path)
    assert run.code == 0, run.err
    assert (tmp_path / "prebuild-ran").exists()


def test_repository_publishes_a_name_from_image_elsewhere(tmp_path: Path, registry: str) -> None:
    """The package.json names a registry out of reach; --repository sends the image to
    the test registry under the same path and tag (a mirror, a test registry)."""
    import json
    import uuid

    from conftest import registry_tags

    path = f"test/{uuid.uuid4().hex[:12]}/sandbox"
    make_context(tmp_path / "ctx", "FROM scratch\nARG TARGETARCH\nCOPY rootfs-${TARGETARCH}/ /\n",
                 arches=("amd64",))
    (tmp_path / "package.json").write_text(json.dumps(
        {"version": "0.1.1", "config": {"sandboxImageUri": f"registry.invalid/{path}:0.1.1"}}))
    (tmp_path / "polyarch.toml").write_text("""
platforms = ["linux/amd64"]
[[image]]
name = "sandbox"
context = "ctx"
name-from = { file = "package.json", field = "config.sandboxImageUri" }
""")
    out = tmp_path / "image-ref.txt"
    run = polyarch("publish", "--repository", registry, "--output-file", str(out), cwd=tmp_path)
    assert run.code == 0, run.err
    assert "0.1.1" in registry_tags(registry, path)
    assert out.read_text().startswith(f"{registry}/{path}:0.1.1@sha256:")  # one image: bare
    # The file is there now: a second run refuses to replace it, before building.
    run = polyarch("publish", "--repository", registry, "--output-file", str(out), cwd=tmp_path)
    assert run.code == 2 and "exists" in run.err and echoed_build(run.err) is None


LAYOUT_SERVICE = """\
FROM base
RUN test "$(cat /base-marker)" = "from the substituted base" && uname -m > /built-on
"""


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_oci_layout_context_substitutes_the_base_image(engine: str, tmp_path: Path, repo: str,
                                                       registry: str) -> None:
    """A base image as an OCI layout on disk (an air-gapped mirror, or the verified build
    of a project's dependency), pinned by digest, for both platforms; podman reads it
    through its oci: transport."""
    import json
    import subprocess

    if engine == "podman" and shutil.which("podman") is None:
        if IN_CI:
            pytest.fail("CI=true but podman is not installed")
        pytest.skip("podman is not installed")
    base = make_context(tmp_path / "base", BASE)
    (base / "marker").write_text("from the substituted base\n")
    run = polyarch("publish", "-t", f"{repo}-base:1", str(base))
    assert run.code == 0, run.err
    layout = tmp_path / "layout"
    subprocess.run(["skopeo", "copy", "-q", "--all", "--src-tls-verify=false",
                    f"docker://{repo}-base:1", f"oci:{layout}:base"], check=True, timeout=120)
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    svc = tmp_path / "svc"
    svc.mkdir()
    (svc / "Dockerfile").write_text(LAYOUT_SERVICE)
    run = polyarch("publish", "--engine", engine, "-t", f"{repo}:{engine}",
                   "--build-context", f"base=oci-layout://{layout}@{entry['digest']}", str(svc))
    assert run.code == 0, run.err
    name = repo.split("/", 1)[1]
    r = httpx.get(f"http://{registry}/v2/{name}/manifests/{engine}", timeout=30,
                  headers={"Accept": OCI_INDEX})
    r.raise_for_status()
    assert {m["platform"]["architecture"] for m in r.json()["manifests"]
            if m["platform"]["os"] == "linux"} == {"amd64", "arm64"}


ADD_HOST = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
RUN grep -E '^10\\.0\\.0\\.5[[:space:]]+cache\\.lan$' /etc/hosts > /hosts-seen
"""


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_add_host_is_in_etc_hosts_of_run_steps(engine: str, tmp_path: Path) -> None:
    """The RUN step fails unless /etc/hosts has the line --add-host asked for."""
    if engine == "podman" and shutil.which("podman") is None:
        if IN_CI:
            pytest.fail("CI=true but podman is not installed")
        pytest.skip("podman is not installed")
    ctx = make_context(tmp_path / "ctx", ADD_HOST, arches=("amd64",))
    # --no-cache: podman's layer cache does not key a RUN step on its extra hosts.
    args = ["build", "--engine", engine, "--platform", "linux/amd64", "--no-cache", str(ctx)]
    without = polyarch(*args)
    assert without.code == 1, without.err  # the RUN step failed: no such line
    run = polyarch(*args[:1], "--add-host", "cache.lan:10.0.0.5", *args[1:])
    assert run.code == 0, run.err
    assert "--add-host cache.lan:10.0.0.5" in run.err
