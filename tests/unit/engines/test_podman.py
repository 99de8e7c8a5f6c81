"""The podman engine: its command lines, output parsing and errors (pure logic)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from polyarch import config
from polyarch.config.table import BY_NAME
from polyarch.engines import BuildRequest, StepEvent
from polyarch.engines.podman import PodmanEngine, unsupported
from polyarch.engines.podman_progress import StepLog, build_failure, build_reason
from polyarch.errors import BuildError, UsageError
from polyarch.pipeline.build import engine_args
from polyarch.platforms import parse_platforms

AMD64_ARM64 = parse_platforms("linux/amd64,linux/arm64")


def request(tmp: Path, **kw: object) -> BuildRequest:
    """A request; the passthrough options (``target=...``) reach it as the build step
    puts them there, from the option table."""
    passthrough = {k: kw.pop(k) for k in list(kw) if k in BY_NAME and BY_NAME[k].engine}
    base: dict[str, object] = {
        "context": tmp, "dockerfile": tmp / "Dockerfile", "platforms": AMD64_ARM64,
        "output": tmp / "layout",
        "args": engine_args(config.override(config.Options(platforms=()), passthrough, "test")),
    }
    base.update(kw)
    return BuildRequest(**base)  # type: ignore[arg-type]


# -- unit: command lines ----------------------------------------------------------------

def test_build_commands_map_every_option(tmp_path: Path) -> None:
    eng = PodmanEngine(list_name="localhost/polyarch-build:t1",
                       insecure_registries=["registry.lan:5000"])
    req = request(
        tmp_path,
        build_args={"A": "1"}, labels={"org.example": "x y"}, annotations={"k": "v"},
        target="final", secrets=("id=npmrc,src=/s/npmrc", "id=tok,env=TOKEN"),
        no_cache=True, pull=True,
    )
    cmds = [shlex.join(c) for c in eng.build_commands(req, Path("/t/metadata.json"))]
    # Build into a local manifest list, write every image of it as an OCI layout (what
    # polyarch verifies and pushes itself), then drop the list. podman never pushes.
    # The insecure registry is plain HTTP to the build too, through a registries.conf of
    # its own.
    assert cmds == [
        "env CONTAINERS_REGISTRIES_CONF=/t/registries.conf"
        f" podman build --platform linux/amd64,linux/arm64 --manifest localhost/polyarch-build:t1"
        f" --file {tmp_path}/Dockerfile --build-arg A=1 --label 'org.example=x y'"
        " --annotation k=v --target final --secret id=npmrc,src=/s/npmrc"
        " --secret id=tok,env=TOKEN --no-cache --pull=always --logfile /t/build.log"
        f" {tmp_path}",
        "podman manifest push --all --format oci --digestfile /t/digest"
        f" localhost/polyarch-build:t1 oci:{tmp_path}/layout",
        "podman manifest rm localhost/polyarch-build:t1",
    ]


def test_build_needs_a_layout_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="needs a directory to write the OCI layout to"):
        PodmanEngine().build(request(tmp_path, output=None))


def test_each_engine_gets_its_own_list_name() -> None:
    a, b = PodmanEngine(), PodmanEngine()
    assert a.list_name != b.list_name
    assert a.list_name.startswith("localhost/polyarch-build:")


@pytest.mark.parametrize(("field", "value", "words"), [
    ("provenance", True, "provenance"),
    ("sbom", True, "SBOM"),
    ("cache_from", ("type=registry,ref=x",), "cache"),
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


def test_a_layout_path_podman_cannot_name_is_reached_through_a_lowercase_link(
        tmp_path: Path) -> None:
    from polyarch.engines.podman_layout import oci_layout_context, oci_path

    layout = tmp_path / ".cache" / "Builds" / "x"
    layout.mkdir(parents=True)
    (layout / "index.json").write_text('{"manifests": [{"digest": "sha256:' + "a" * 64 + '"}]}')
    alias = oci_path(layout)
    assert alias != str(layout)
    assert re.fullmatch(r"(/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+", alias), alias
    assert Path(alias).resolve() == layout.resolve()
    # One link per layout: podman names what it pulls after the path it read.
    assert oci_path(layout) == alias
    ctx = oci_layout_context(f"oci-layout://{layout}@sha256:{'a' * 64}")
    assert ctx.startswith("container-image://oci:/") and ".cache" not in ctx
    clean = Path("/srv/polyarch/layout")
    assert oci_path(clean) == str(clean)


@pytest.mark.parametrize(("ref", "name"), [
    # What podman 4.3 named the images its smoke runs pulled (seen in its store).
    ("oci:/tmp/polyarch-oci-50587cf76ecc/layout",
     "localhost/tmp/polyarch-oci-50587cf76ecc/layout:latest"),
    ("oci:/srv/cache/builds/20261207-054413-publish-da9ae7",
     "localhost/srv/cache/builds/20261207-054413-publish-da9ae7:latest"),
    # A ref name after the path picks the entry; the name is the path's all the same.
    ("oci:/srv/layout:base", "localhost/srv/layout:latest"),
    ("127.0.0.1:5000/app@sha256:" + "a" * 64, None),
])
def test_the_name_a_run_from_a_layout_leaves_is_the_layouts_path(ref: str,
                                                                   name: str | None) -> None:
    from polyarch.engines.podman_layout import pulled_name

    assert pulled_name(ref) == name
