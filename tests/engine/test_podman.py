"""Real builds with podman (Debian's package, QEMU through binfmt_misc): publish through
the local-first pipeline against the loopback registry, failures, dry runs, and the
``auto`` engine choice."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import last_error_line, polyarch
from conftest import IN_CI, free_port, make_context, registry_tags

from polyarch.engines.podman import PodmanEngine
from polyarch.platforms import parse_platforms

from .helpers import COPY_ONLY, manifest_digest, split


@pytest.fixture
def podman() -> str:
    path = shutil.which("podman")
    if path is None:
        if IN_CI:
            pytest.fail("CI=true but podman is not installed (scripts/engine up installs it)")
        pytest.skip("podman is not installed; run scripts/engine up")
    return path


def skopeo_raw(ref: str, *extra: str) -> dict[str, object]:
    out = subprocess.run(["skopeo", "inspect", "--raw", *extra, "--tls-verify=false",
                          f"docker://{ref}"], capture_output=True, text=True, check=True).stdout
    data: dict[str, object] = json.loads(out)
    return data


def podman_names() -> set[str]:
    """Every name in podman's image store."""
    out = subprocess.run(["podman", "images", "--all", "--format", "{{.Repository}}:{{.Tag}}"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    return set(out.split())


def podman_run(ref: str, platform: str, *cmd: str) -> str:
    argv = PodmanEngine().run_argv(ref, parse_platforms(platform)[0], list(cmd))
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.engine
def test_podman_publishes_two_platforms(podman: str, hello_context: Path, repo: str) -> None:
    ref = f"{repo}:1.0"
    run = polyarch("publish", "--engine", "podman", "-t", ref, "-t", f"{repo}:latest",
                   "--json", str(hello_context))
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["promoted"] is True
    assert doc["index"]["mediaType"] == "application/vnd.oci.image.index.v1+json"
    modes = {p["platform"]: p["mode"] for p in doc["platforms"]}
    assert modes == {"linux/amd64": "native", "linux/arm64": "emulated"}

    # The index, read back with an independent client.
    index = skopeo_raw(ref)
    entries = index["manifests"]
    assert isinstance(entries, list)
    plats = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
             for m in entries}
    assert sorted(plats) == ["linux/amd64", "linux/arm64"]
    assert skopeo_raw(f"{repo}:latest") == index
    # Each variant's own config says what it is.
    for plat, arch in (("linux/arm64", "arm64"), ("linux/amd64", "amd64")):
        cfg = skopeo_raw(f"{repo}@{plats[plat]}", "--config")
        assert (cfg["architecture"], cfg["os"]) == (arch, "linux")

    # The variants run as their architecture (arm64 under QEMU), and the RUN step did too.
    assert podman_run(ref, "linux/arm64", "uname", "-m") == "aarch64"
    assert podman_run(ref, "linux/arm64", "cat", "/built-on") == "aarch64"
    assert podman_run(ref, "linux/amd64", "uname", "-m") == "x86_64"

    # Exactly the requested tags, both naming the index that was verified.
    host, name = split(repo)
    assert sorted(registry_tags(host, name)) == ["1.0", "latest"]
    assert {manifest_digest(host, name, t) for t in ("1.0", "latest")} == {doc["index"]["digest"]}

    # The exact podman commands were echoed, and the local manifest list is gone.
    m = re.search(r"^\+ podman manifest rm (localhost/polyarch-build:[0-9a-f]+)$", run.err, re.M)
    assert m, run.err
    assert f"+ podman build --platform linux/amd64,linux/arm64 --manifest {m.group(1)}" in run.err
    exists = subprocess.run([podman, "manifest", "exists", m.group(1)], capture_output=True)
    assert exists.returncode == 1


FAILING_DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
RUN echo "about to break on $(uname -m)" && ls /polyarch-no-such-dir
"""


@pytest.mark.engine
def test_podman_failing_run_step(podman: str, tmp_path: Path, repo: str, registry: str) -> None:
    ctx = make_context(tmp_path / "ctx", FAILING_DOCKERFILE)
    run = polyarch("publish", "--engine", "podman", "-t", f"{repo}:broken", str(ctx))
    assert run.code == 1, run.text
    line = last_error_line(run)
    assert "build failed" in line
    assert 'building at STEP "RUN echo' in line
    # Podman's own text: the step's output and podman's error.
    assert "ls: /polyarch-no-such-dir: No such file or directory" in run.err
    assert "about to break on" in run.err
    assert "while running runtime: exit status 1" in run.err
    # Nothing was pushed, and no manifest list is left behind.
    assert registry_tags(registry, repo.split("/", 1)[1]) == []
    m = re.search(r"--manifest (localhost/polyarch-build:[0-9a-f]+)", run.err)
    assert m, run.err
    exists = subprocess.run([podman, "manifest", "exists", m.group(1)], capture_output=True)
    assert exists.returncode == 1


@pytest.mark.engine
def test_podman_publish_to_a_registry_nobody_answers(podman: str, tmp_path: Path) -> None:
    """The push check comes before the build: exit 4, and podman built nothing."""
    ctx = make_context(tmp_path / "ctx", dockerfile=COPY_ONLY)
    ref = f"127.0.0.1:{free_port()}/test/nowhere:1"
    run = polyarch("publish", "--engine", "podman", "-t", ref, str(ctx))
    assert run.code == 4, run.text
    line = last_error_line(run)
    assert "127.0.0.1:" in line and "Connection refused" in line
    assert "podman build" not in run.err


@pytest.mark.engine
def test_podman_dry_run_prints_the_exact_commands(podman: str, hello_context: Path, repo: str,
                                                  registry: str) -> None:
    secret = hello_context.parent / "token.txt"
    secret.write_text("s3cret\n")
    run = polyarch("publish", "--dry-run", "--engine", "podman", "-t", f"{repo}:dry",
                   "--build-arg", "A=1", "--label", "team=core", "--secret",
                   f"id=tok,src={secret}", "--no-cache", "--pull", str(hello_context))
    assert run.code == 0, run.err
    lines = [ln for ln in run.out.splitlines() if ln.startswith("podman ")]
    assert len(lines) == 3, run.out
    m = re.fullmatch(r"podman build .* --manifest (localhost/polyarch-build:[0-9a-f]{12}) .*",
                     lines[0])
    assert m, lines[0]
    name = m.group(1)
    assert lines[0] == (
        f"podman build --platform linux/amd64,linux/arm64 --manifest {name}"
        f" --file {hello_context}/Dockerfile --build-arg A=1 --label team=core"
        f" --secret id=tok,src={secret} --no-cache --pull=always"
        f" --logfile '<tmp>/build.log' {hello_context}"
    )
    # podman writes an OCI layout in the cache; polyarch pushes it after verification.
    assert lines[1] == (f"podman manifest push --all --format oci --digestfile '<tmp>/digest'"
                        f" {name} 'oci:<cache>/builds/<new>'")
    assert lines[2] == f"podman manifest rm {name}"
    assert "polyarch-staging" not in run.out
    assert f"push it by digest to {repo}, then tag {repo}:dry" in run.out
    assert registry_tags(registry, repo.split("/", 1)[1]) == []


@pytest.mark.engine
def test_auto_picks_docker_when_docker_answers(hello_context: Path, repo: str) -> None:
    run = polyarch("publish", "--dry-run", "--engine", "auto", "-t", f"{repo}:a",
                   str(hello_context))
    assert run.code == 0, run.err
    assert any(ln.startswith("docker buildx build ") for ln in run.out.splitlines()), run.out
    assert not any(ln.startswith("podman ") for ln in run.out.splitlines())
    doc = polyarch("doctor", "--json", "--engine", "auto", str(hello_context)).json()
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["engine choice"]["detail"] == "docker (auto: the Docker engine answers)"
    assert checks["engine"]["detail"].startswith("Docker ")


@pytest.mark.engine
def test_auto_picks_podman_when_docker_is_dead(podman: str, hello_context: Path, repo: str,
                                               tmp_path: Path) -> None:
    dead = {"DOCKER_HOST": f"unix://{tmp_path}/dead-docker.sock"}
    run = polyarch("publish", "--dry-run", "--engine", "auto", "-t", f"{repo}:a",
                   str(hello_context), env=dead)
    assert run.code == 0, run.err
    assert any(ln.startswith("podman build ") for ln in run.out.splitlines()), run.out
    assert not any(ln.startswith("docker ") for ln in run.out.splitlines())
    # The environment variable selects the same way.
    run = polyarch("publish", "--dry-run", "-t", f"{repo}:a", str(hello_context),
                   env={**dead, "POLYARCH_ENGINE": "auto"})
    assert run.code == 0, run.text
    assert any(ln.startswith("podman build ") for ln in run.out.splitlines()), run.text
    doc = polyarch("doctor", "--json", "--engine", "auto", str(hello_context), env=dead).json()
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["engine choice"]["detail"].startswith(
        "podman (auto: Docker does not answer (")
    assert checks["engine"]["detail"].startswith("Podman ")
    assert checks["platform linux/arm64"]["detail"] == "emulated (QEMU qemu-aarch64)"
    assert doc["ok"] is True


@pytest.mark.engine
def test_doctor_shows_podman(podman: str, hello_context: Path) -> None:
    run = polyarch("doctor", "--engine", "podman", str(hello_context))
    assert run.code == 0, run.text
    assert "Podman " in run.out and "emulated (QEMU qemu-aarch64)" in run.out
    assert "buildx" not in run.out


@pytest.mark.engine
@pytest.mark.parametrize("cache", [
    "plain",
    # The default cache directory is ~/.cache/polyarch: podman names an image it runs from
    # oci:PATH after PATH, and a path component starting with a dot is no valid name, so
    # polyarch reaches such a layout through a link at a path podman can name.
    "dotted",
])
def test_podman_smoke_runs_through_podman(podman: str, hello_context: Path, repo: str,
                                         tmp_path: Path, cache: str) -> None:
    """With --engine podman the smoke runs go through podman, from the local build: they
    pass although no docker engine answers."""
    cache_dir = tmp_path / ("polyarch-cache" if cache == "plain" else ".cache/polyarch")
    dead = {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",
            "POLYARCH_CACHE_DIR": str(cache_dir)}
    before = podman_names()
    run = polyarch("publish", "--engine", "podman", "--smoke", "cat /built-on", "-t",
                   f"{repo}:smoke", "--json", str(hello_context), env=dead)
    assert run.code == 0, run.err
    smoke = {p["platform"]: p["checks"]["smoke"] for p in run.json()["verification"]["platforms"]}
    assert smoke == {"linux/amd64": "pass", "linux/arm64": "pass"}
    # podman named the images it ran from the layout after the layout's path (this run's
    # cache, or a link to it): no such name is left to keep them in its store for good.
    left = podman_names() - before
    assert not {n for n in left if str(tmp_path).lstrip("/") in n or "polyarch-oci-" in n}, left


@pytest.mark.engine
def test_podman_smoke_runs_of_a_users_layout_leave_the_users_names(
        podman: str, hello_context: Path, tmp_path: Path) -> None:
    """``verify oci:DIR --smoke`` with podman: the name podman gives a pull of DIR that
    the user made before (``podman pull oci:DIR``) is the user's, and stays."""
    layout = tmp_path / "applayout"
    run = polyarch("build", "--engine", "podman", "-o", f"oci:{layout}", str(hello_context))
    assert run.code == 0, run.err
    theirs = f"localhost/{str(layout).lstrip('/')}:latest"
    subprocess.run(["podman", "pull", "-q", f"oci:{layout}"], check=True,
                   capture_output=True, timeout=300)
    try:
        assert theirs in podman_names()
        run = polyarch("verify", "--smoke", "cat /built-on", f"oci:{layout}",
                       env={"POLYARCH_ENGINE": "podman",
                            "POLYARCH_CACHE_DIR": str(tmp_path / "cache")})
        assert run.code == 0, run.err
        assert "smoke run linux/arm64" in run.out  # run, not known from before
        assert theirs in podman_names()
    finally:
        subprocess.run(["podman", "untag", theirs, theirs], capture_output=True, timeout=120)


@pytest.mark.engine
@pytest.mark.parametrize("flag", [True, False], ids=["insecure-registry", "loopback"])
def test_podman_builds_on_a_base_from_a_plain_http_registry(
        podman: str, tmp_path: Path, registry: str, repo: str, flag: bool) -> None:
    """The base -> service flow on podman with the loopback registry: the service's FROM
    pulls the base over plain HTTP (podman speaks HTTPS unless its registries.conf says
    otherwise; polyarch gives the build one of its own, and changes no file of the
    user's). ``--insecure-registry`` says so; a loopback registry is insecure anyway,
    as Docker treats it."""
    base = f"{repo}-busybox:latest"
    run = polyarch("publish", "--engine", "podman", "-t", base,
                   str(make_context(tmp_path / "base", dockerfile=COPY_ONLY)))
    assert run.code == 0, run.err
    confs = [Path("/etc/containers/registries.conf"),
             Path.home() / ".config/containers/registries.conf"]
    before = {p: p.read_bytes() if p.exists() else None for p in confs}
    hello = Path(__file__).resolve().parents[2] / "examples/hello"
    extra = ("--insecure-registry", registry) if flag else ()
    run = polyarch("publish", "--engine", "podman", *extra, "--build-arg", f"BASE={base}",
                   "-t", f"{repo}:1", "--json", str(hello))
    assert run.code == 0, run.err
    assert sorted(p["platform"] for p in run.json()["platforms"]) == ["linux/amd64",
                                                                      "linux/arm64"]
    assert podman_run(f"{repo}:1", "linux/arm64").splitlines() == [
        "hello from aarch64", "running on aarch64"]
    assert podman_run(f"{repo}:1", "linux/amd64").splitlines() == [
        "hello from x86_64", "running on x86_64"]
    assert {p: p.read_bytes() if p.exists() else None for p in confs} == before
