"""verify_source on the OCI layout buildx writes to disk (nothing pushed): prebuilt
binaries for several platforms, a wrong prebuild, a deleted token, the per-layer cache
across a rebuild."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import make_context

from polyarch.checks.cache import LayerCache
from polyarch.checks.verify import verify_source
from polyarch.platforms import parse_platforms
from polyarch.registry import OCILayout

BOTH = parse_platforms("linux/amd64,linux/arm64")
TOKEN = "npm_9fQx2LrTzV7wKbY3HcN8sPjD5mE1aGuR0oXt"

# A package shipping prebuilds for both platforms (node-gyp-build layout); the busybox
# binaries of each architecture stand in for the .node files.
PREBUILDS = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
COPY rootfs-amd64/bin/busybox /app/node_modules/addon/prebuilds/linux-x64/addon.node
COPY rootfs-arm64/bin/busybox /app/node_modules/addon/prebuilds/linux-arm64/addon.node
COPY top.txt /app/top.txt
"""

# The same, but the arm64 prebuild is an x86-64 file: what node loads on arm64.
WRONG_PREBUILD = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
COPY rootfs-amd64/bin/busybox /app/node_modules/addon/prebuilds/linux-x64/addon.node
COPY rootfs-amd64/bin/busybox /app/node_modules/addon/prebuilds/linux-arm64/addon.node
"""

# A token written by one step and deleted by the next: gone from the filesystem, still
# in the first step's layer.
DELETED_TOKEN = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
COPY npmrc /root/.npmrc
RUN ["/bin/busybox", "rm", "/root/.npmrc"]
"""


def build_layout(ctx: Path, dockerfile: str, dest: Path) -> OCILayout:
    (ctx / "Dockerfile.t").write_text(dockerfile)
    shutil.rmtree(dest, ignore_errors=True)
    r = subprocess.run(["docker", "buildx", "build", "--platform", "linux/amd64,linux/arm64",
                        "-f", str(ctx / "Dockerfile.t"),
                        "--output", f"type=oci,tar=false,dest={dest}", str(ctx)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return OCILayout(dest)


def layer_list(lay: OCILayout, i: int) -> list[str]:
    desc = lay.root().json["manifests"][i]
    return [str(d["digest"]) for d in lay.manifest(str(desc["digest"])).json["layers"]]


def layers(lay: OCILayout) -> set[str]:
    return set(layer_list(lay, 0)) | set(layer_list(lay, 1))


class Counting:
    """Counts the layer blobs read from a layout (the platforms' layers: attestation
    manifests' blobs are read on every verification, the cache holds layers)."""

    def __init__(self, inner: OCILayout) -> None:
        self.inner, self.read = inner, []
        self.description, self.ref = inner.description, inner.ref
        self.root, self.manifest, self.blob = inner.root, inner.manifest, inner.blob

    @property
    def reads(self) -> int:
        return sum(d in layers(self.inner) for d in self.read)

    def iter_blob(self, digest: str):  # type: ignore[no-untyped-def]
        self.read.append(digest)
        return self.inner.iter_blob(digest)


def test_prebuilds_for_several_platforms_and_the_cache(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx")
    (ctx / "top.txt").write_text("one\n")
    cache = LayerCache(tmp_path / "cache")
    first = Counting(build_layout(ctx, PREBUILDS, tmp_path / "v1"))
    report = verify_source(first, BOTH, cache=cache)
    assert report.ok, report.errors()
    for p in report.platforms:
        other = "arm64" if p.platform == "linux/amd64" else "x64"
        assert p.inert == [f"/app/node_modules/addon/prebuilds/linux-{other}/addon.node"]
        assert any(f.kind == "inert" and f.severity == "info" for f in p.findings)
    assert first.reads == report.layers_read > 0

    (ctx / "top.txt").write_text("two\n")  # only the last layer of each platform changes
    second = Counting(build_layout(ctx, PREBUILDS, tmp_path / "v2"))
    # As the pipeline verifies the layout its build has just written.
    warm = verify_source(second, BOTH, cache=cache, check_cached=False)
    assert warm.ok
    new = layers(second.inner) - layers(first.inner)
    tops = {str(layer_list(second.inner, i)[-1]) for i in (0, 1)}
    assert new == tops  # only the top layer changed (per platform, or one shared)
    assert second.reads == warm.layers_read == len(new)
    assert warm.layers_cached == len(layers(second.inner)) - len(new) > 0
    # As verify oci:PATH reads a layout from elsewhere: every cached blob read again.
    third = Counting(second.inner)
    again = verify_source(third, BOTH, cache=cache)
    assert again.ok and again.layers_read == 0
    assert third.reads == len(layers(second.inner))


def test_wrong_prebuild_for_the_own_platform_fails(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx")
    report = verify_source(build_layout(ctx, WRONG_PREBUILD, tmp_path / "l"), BOTH, cache=None)
    assert not report.ok
    errs = [(plat, f.path) for plat, f in report.errors()]
    assert errs == [("linux/arm64", "/app/node_modules/addon/prebuilds/linux-arm64/addon.node")]


def test_deleted_token_is_still_shipped(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx")
    (ctx / "npmrc").write_text(f"//registry.npmjs.org/:_authToken={TOKEN}\n")
    report = verify_source(build_layout(ctx, DELETED_TOKEN, tmp_path / "l"), BOTH, cache=None)
    assert not report.ok
    found = {(plat, f.kind, f.path) for plat, f in report.errors()}
    assert found == {(p, "deleted-but-shipped", "/root/.npmrc")
                     for p in ("linux/amd64", "linux/arm64")}
    assert TOKEN not in str(report.to_json())



def test_worker_processes_find_what_threads_find(tmp_path: Path) -> None:
    from polyarch.checks import parallel
    from polyarch.errors import RegistryError

    ctx = make_context(tmp_path / "ctx")
    (ctx / "npmrc").write_text(f"//registry.npmjs.org/:_authToken={TOKEN}\n")
    lay = build_layout(ctx, DELETED_TOKEN +
                       "COPY rootfs-amd64/bin/busybox /usr/local/bin/helper\n", tmp_path / "l")
    threads = verify_source(lay, BOTH, cache=None, processes=0)
    started: list[parallel.WorkerProcess] = []

    def spawn() -> parallel.WorkerProcess:
        started.append(parallel.spawn_worker())  # python -m polyarch.checks.worker
        return started[-1]

    procs = verify_source(lay, BOTH, cache=None, processes=2, spawn=spawn)
    assert len(started) == 2
    assert all(p.poll() is not None for p in started)  # no worker left running
    assert [p.to_json() for p in procs.platforms] == [p.to_json() for p in threads.platforms]
    assert {f.kind for _, f in procs.errors()} == {"deleted-but-shipped", "wrong-machine"}
    # A damaged blob is reported as with threads: the parent checks the digest.
    blob = max((tmp_path / "l" / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    data = bytearray(blob.read_bytes())
    data[-20] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(RegistryError):
        verify_source(OCILayout(tmp_path / "l"), BOTH, cache=None, processes=2)


CTRL_C_SCRIPT = """\
import os, sys, time
from pathlib import Path
from polyarch.checks import parallel
from polyarch.checks.verify import verify_source
from polyarch.platforms import parse_platforms
from polyarch.registry import OCILayout

class Slow(OCILayout):
    def iter_blob(self, digest):
        for chunk in super().iter_blob(digest):
            for i in range(0, len(chunk), 1024):
                time.sleep(0.05)  # a slow source: the workers wait for their data
                yield chunk[i:i + 1024]

def spawn():
    p = parallel.spawn_worker()
    print(p.pid, flush=True)
    return p

verify_source(Slow(Path(sys.argv[1])), parse_platforms("linux/amd64,linux/arm64"),
              cache=None, processes=2, spawn=spawn)
"""


def test_ctrl_c_stops_the_worker_processes(tmp_path: Path) -> None:
    import os
    import signal
    import sys
    import time

    ctx = make_context(tmp_path / "ctx")
    (ctx / "top.txt").write_text("v1\n")
    build_layout(ctx, PREBUILDS, tmp_path / "l")
    script = tmp_path / "verify_slowly.py"
    script.write_text(CTRL_C_SCRIPT)
    p = subprocess.Popen([sys.executable, str(script), str(tmp_path / "l")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    pids = [int(p.stdout.readline()), int(p.stdout.readline())]
    time.sleep(1)  # the workers are reading
    assert p.poll() is None
    p.send_signal(signal.SIGINT)
    _out, err = p.communicate(timeout=60)
    assert p.returncode != 0 and "KeyboardInterrupt" in err
    for pid in pids:  # the workers were killed and reaped: no such process
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
