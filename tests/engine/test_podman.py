"""The podman engine: unit tests of its command lines and output parsing, then real
builds with podman (Debian's package, QEMU through binfmt_misc) against the loopback
registry, and the ``auto`` engine choice."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import last_error_line, polyarch
from conftest import IN_CI, free_port, make_context, registry_tags

from polyarch import config
from polyarch.engines import BuildRequest, StepEvent
from polyarch.engines.podman import (
    PodmanEngine,
    StepLog,
    build_failure,
    build_reason,
    push_failure,
    unsupported,
)
from polyarch.errors import BuildError, ConfigError, RegistryError, UsageError
from polyarch.platforms import parse_platforms
from polyarch.refs import parse_ref

AMD64_ARM64 = parse_platforms("linux/amd64,linux/arm64")


def request(tmp: Path, **kw: object) -> BuildRequest:
    base: dict[str, object] = {
        "context": tmp, "dockerfile": tmp / "Dockerfile", "platforms": AMD64_ARM64,
        "push_to": (parse_ref("127.0.0.1:5000/a/b:1"),),
    }
    base.update(kw)
    return BuildRequest(**base)  # type: ignore[arg-type]


# -- unit: command lines ----------------------------------------------------------------

def test_build_commands_map_every_option(tmp_path: Path) -> None:
    eng = PodmanEngine(list_name="localhost/polyarch-build:t1",
                       insecure_registries=["registry.lan:5000"])
    req = request(
        tmp_path,
        push_to=(parse_ref("127.0.0.1:5000/a/b:1"), parse_ref("registry.lan:5000/a/b:2"),
                 parse_ref("ghcr.io/o/b:3")),
        build_args={"A": "1"}, labels={"org.example": "x y"}, annotations={"k": "v"},
        target="final", secrets=("id=npmrc,src=/s/npmrc", "id=tok,env=TOKEN"),
        no_cache=True, pull=True,
    )
    cmds = [shlex.join(c) for c in eng.build_commands(req, Path("/t/metadata.json"))]
    assert cmds == [
        f"podman build --platform linux/amd64,linux/arm64 --manifest localhost/polyarch-build:t1"
        f" --file {tmp_path}/Dockerfile --build-arg A=1 --label 'org.example=x y'"
        " --annotation k=v --target final --secret id=npmrc,src=/s/npmrc"
        " --secret id=tok,env=TOKEN --no-cache --pull=always --logfile /t/build.log"
        f" {tmp_path}",
        "podman manifest push --all --format oci --digestfile /t/digest-0 --tls-verify=false"
        " localhost/polyarch-build:t1 docker://127.0.0.1:5000/a/b:1",
        "podman manifest push --all --format oci --digestfile /t/digest-1 --tls-verify=false"
        " localhost/polyarch-build:t1 docker://registry.lan:5000/a/b:2",
        "podman manifest push --all --format oci --digestfile /t/digest-2"
        " localhost/polyarch-build:t1 docker://ghcr.io/o/b:3",
        "podman manifest rm localhost/polyarch-build:t1",
    ]


def test_each_engine_gets_its_own_list_name() -> None:
    a, b = PodmanEngine(), PodmanEngine()
    assert a.list_name != b.list_name
    assert a.list_name.startswith("localhost/polyarch-build:")


@pytest.mark.parametrize(("field", "value", "words"), [
    ("provenance", True, "provenance"),
    ("sbom", True, "SBOM"),
    ("cache_from", ("type=registry,ref=x",), "cache"),
    ("build_contexts", {"base": "docker-image://x"}, "named build contexts"),
])
def test_unsupported_options_are_refused(tmp_path: Path, field: str, value: object,
                                         words: str) -> None:
    with pytest.raises(UsageError, match=words) as e:
        unsupported(request(tmp_path, **{field: value}))
    assert e.value.exit_code == 2
    # provenance=False / sbom=False are what podman does anyway.
    unsupported(request(tmp_path, provenance=False, sbom=False))


def test_run_argv_pulls_the_platform_over_http_for_loopback() -> None:
    argv = PodmanEngine().run_argv("127.0.0.1:5000/a/b:1", AMD64_ARM64[1], ["uname", "-m"])
    assert argv[:7] == ["podman", "run", "--rm", "--pull", "always", "--platform",
                        "linux/arm64"]
    assert "--tls-verify=false" in argv
    assert argv[-3:] == ["127.0.0.1:5000/a/b:1", "uname", "-m"]
    remote = PodmanEngine().run_argv("ghcr.io/o/b:1", AMD64_ARM64[1], ["true"])
    assert "--tls-verify=false" not in remote


# -- unit: output parsing ----------------------------------------------------------------

MULTI_LOG = """\
[linux/arm64] STEP 1/3: FROM scratch
[linux/arm64] STEP 2/3: COPY rootfs-arm64/ /
--> Using cache 007757d21b0d45660da717f3129411f9f91d7e2d784226fe08ffc1c2cdcf73a2
--> 007757d21b0
[linux/arm64] STEP 3/3: RUN ./configure
checking for gcc... no
configure: error: no C compiler
[linux/amd64] STEP 1/3: FROM scratch
"""


def test_step_log_events_per_platform() -> None:
    events: list[StepEvent] = []
    log = StepLog(AMD64_ARM64, events.append)
    for line in MULTI_LOG.splitlines():
        log.feed(line)
    log.finish("building at STEP \"RUN ./configure\": while running runtime: exit status 1")
    states = [(e.platform, e.name.split(":")[0], e.state) for e in events]
    assert states == [
        ("linux/arm64", "STEP 1/3", "started"),
        ("linux/arm64", "STEP 1/3", "done"),
        ("linux/arm64", "STEP 2/3", "started"),
        ("linux/arm64", "STEP 2/3", "cached"),
        ("linux/arm64", "STEP 3/3", "started"),
        ("linux/amd64", "STEP 1/3", "started"),
        ("linux/arm64", "STEP 3/3", "error"),
        ("linux/amd64", "STEP 1/3", "error"),
    ]
    plat, name, out = log.failed_step() or (None, "", "")
    assert (plat, name) == ("linux/arm64", "STEP 3/3: RUN ./configure")
    assert out == "checking for gcc... no\nconfigure: error: no C compiler"


def test_single_platform_steps_have_no_prefix() -> None:
    events: list[StepEvent] = []
    log = StepLog(AMD64_ARM64[:1], events.append)
    log.feed("STEP 1/2: FROM scratch")
    log.feed("STEP 2/2: RUN true")
    log.finish(None)
    assert {e.platform for e in events} == {"linux/amd64"}
    assert [e.state for e in events] == ["started", "done", "started", "done"]


def test_build_failure_carries_podmans_text() -> None:
    stderr = ('Error: 2 errors occurred:\n\t* building at STEP "RUN ./configure": while'
              ' running runtime: exit status 1\n\t* building at STEP "RUN ./configure":'
              ' while running runtime: exit status 1\n')
    log = StepLog(AMD64_ARM64, None)
    for line in MULTI_LOG.splitlines():
        log.feed(line)
    log.finish(build_reason(stderr))
    err = build_failure(stderr, log)
    assert isinstance(err, BuildError) and err.exit_code == 1
    assert err.message == ('build failed (linux/arm64): building at STEP "RUN ./configure":'
                           ' while running runtime: exit status 1')
    assert err.detail is not None
    assert "configure: error: no C compiler" in err.detail
    assert "Error: 2 errors occurred:" in err.detail


def test_push_failure_is_a_registry_error_with_a_hint() -> None:
    text = ('Getting image list signatures\nError: copying image 1/2 from manifest list:'
            ' pinging container registry reg.lan:5000: Get "https://reg.lan:5000/v2/":'
            ' http: server gave HTTP response to HTTPS client\n')
    err = push_failure(parse_ref("reg.lan:5000/a/b:1"), text, insecure_hint=True)
    assert isinstance(err, RegistryError) and err.exit_code == 4
    assert err.message.startswith("push to reg.lan:5000/a/b:1 failed: copying image 1/2")
    assert err.hint == "the registry speaks plain HTTP: pass --insecure-registry reg.lan:5000"


def test_engine_option_in_the_cascade(tmp_path: Path) -> None:
    assert config.load({}, env={}, cwd=tmp_path).engine == "docker"
    assert config.load({}, env={"POLYARCH_ENGINE": "podman"}, cwd=tmp_path).engine == "podman"
    (tmp_path / "polyarch.toml").write_text('engine = "auto"\n')
    assert config.load({}, env={}, cwd=tmp_path).engine == "auto"
    assert config.load({"engine": "docker"}, env={"POLYARCH_ENGINE": "podman"},
                       cwd=tmp_path).engine == "docker"
    (tmp_path / "polyarch.toml").write_text('engine = "rkt"\n')
    with pytest.raises(ConfigError, match="engine must be one of docker, podman, auto"):
        config.load({}, env={}, cwd=tmp_path)


# -- real podman ---------------------------------------------------------------------------

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
def test_podman_push_failure_is_a_registry_error(podman: str, hello_context: Path) -> None:
    # A port nobody listens on: the build succeeds, the push is refused.
    ref = parse_ref(f"127.0.0.1:{free_port()}/test/nowhere:1")
    eng = PodmanEngine()
    with pytest.raises(RegistryError) as e:
        eng.build(BuildRequest(hello_context, hello_context / "Dockerfile", AMD64_ARM64, (ref,)))
    assert e.value.exit_code == 4
    assert e.value.message.startswith(f"push to {ref} failed:")
    assert "connection refused" in (e.value.detail or "").lower()
    exists = subprocess.run([podman, "manifest", "exists", eng.list_name], capture_output=True)
    assert exists.returncode == 1


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
    staging = re.fullmatch(
        rf"podman manifest push --all --format oci --digestfile '<tmp>/digest-0'"
        rf" --tls-verify=false {re.escape(name)} docker://{re.escape(repo)}"
        r":(polyarch-staging-[0-9a-f-]+)", lines[1])
    assert staging, lines[1]
    assert lines[2] == f"podman manifest rm {name}"
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
def test_podman_smoke_runs_through_podman(podman: str, hello_context: Path, repo: str,
                                         tmp_path: Path) -> None:
    """With --engine podman the smoke runs go through podman: they pass although no docker
    engine answers."""
    dead = {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    run = polyarch("publish", "--engine", "podman", "--smoke", "cat /built-on", "-t",
                   f"{repo}:smoke", "--json", str(hello_context), env=dead)
    assert run.code == 0, run.err
    smoke = {p["platform"]: p["checks"]["smoke"] for p in run.json()["verification"]["platforms"]}
    assert smoke == {"linux/amd64": "pass", "linux/arm64": "pass"}
