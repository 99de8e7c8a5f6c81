"""Nothing unverified leaves the machine: an image that fails verification (a credential
in a layer, a binary of the wrong architecture) leaves no repository, no tag and no blob
in the registry, read back with plain HTTP and from the registry's own storage."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import last_error_line, polyarch
from conftest import make_context, registry_tags
from faultproxy import Fault, FaultProxy, LocalRegistry

from .helpers import (
    NPM_TOKEN,
    TOKEN_DELETED_LATER,
    WRONG_ARCH,
    assert_registry_empty,
    needs_podman,
    stored_blobs,
    token_context,
)

ENGINES = ["docker", pytest.param("podman", marks=needs_podman)]


@pytest.mark.parametrize("engine", ENGINES)
def test_token_in_the_final_layer_pushes_nothing(engine: str, tmp_path: Path,
                                                 own_registry: LocalRegistry) -> None:
    ctx = token_context(tmp_path / "ctx")
    ref = f"{own_registry.address}/team/app:1.0"
    run = polyarch("publish", "--engine", engine, "-t", ref, "-t",
                   f"{own_registry.address}/team/app:latest", "--json", str(ctx))
    assert run.code == 5, run.text
    line = last_error_line(run)
    assert "verification failed" in line and "nothing was pushed" in line
    assert "/root/.npmrc" in run.err  # the finding names the file ...
    assert NPM_TOKEN not in run.text  # ... never the token
    doc = run.json()
    assert doc["promoted"] is False and doc["push"] is None
    assert {p["checks"]["secrets"] for p in doc["verification"]["platforms"]} == {"fail"}
    assert_registry_empty(own_registry, "team/app")


@pytest.mark.parametrize("engine", ENGINES)
def test_wrong_arch_binary_pushes_nothing(engine: str, tmp_path: Path,
                                          own_registry: LocalRegistry) -> None:
    ctx = make_context(tmp_path / "ctx", dockerfile=WRONG_ARCH)
    run = polyarch("publish", "--engine", engine, "-t", f"{own_registry.address}/team/app:1",
                   "--json", str(ctx))
    assert run.code == 5, run.text
    line = last_error_line(run)
    assert "linux/arm64" in line and "nothing was pushed" in line
    arm = next(p for p in run.json()["verification"]["platforms"]
               if p["platform"] == "linux/arm64")
    if engine == "docker":
        assert "bin/busybox" in run.err, run.err
        assert arm["checks"]["binaries"] == "fail"
    else:
        # podman builds an amd64-only filesystem for arm64 as it sees fit: an arm64 entry
        # with an amd64 config, or one image for both (the arm64 entry is then missing).
        # Verification fails every form of it, and nothing is pushed.
        assert arm["status"] == "missing" or "fail" in (arm["checks"]["binaries"],
                                                         arm["checks"]["labels"]), arm
    assert_registry_empty(own_registry, "team/app")


def test_build_push_of_a_bad_part_pushes_nothing(tmp_path: Path,
                                                 own_registry: LocalRegistry) -> None:
    """The split-build path (``build --push``) checks before pushing too, and writes no
    descriptor for a part that failed."""
    ctx = token_context(tmp_path / "ctx")
    desc = tmp_path / "part.json"
    run = polyarch("build", "--platform", "linux/arm64", "--push", "-t",
                   f"{own_registry.address}/team/app:1", "--descriptor", str(desc), str(ctx))
    assert run.code == 5, run.text
    assert "nothing was written or pushed" in last_error_line(run)
    assert not desc.exists()
    assert_registry_empty(own_registry, "team/app")


def test_token_deleted_by_a_later_layer_fails_verification(tmp_path: Path,
                                                          own_registry: LocalRegistry) -> None:
    """The final filesystem has no .npmrc, but the layer that added it is a blob anyone
    could pull: verification reports it (kind deleted-but-shipped) and nothing is pushed."""
    ctx = token_context(tmp_path / "ctx", TOKEN_DELETED_LATER)
    run = polyarch("publish", "-t", f"{own_registry.address}/team/app:1", "--json", str(ctx))
    # Whatever the outcome, the token is never printed.
    assert NPM_TOKEN not in run.text
    assert run.code == 5, run.text
    assert "/root/.npmrc" in run.err
    assert "deleted-but-shipped" in run.text
    assert_registry_empty(own_registry, "team/app")


def test_registry_build_cache_leaves_only_after_verification(tmp_path: Path,
                                                             own_registry: LocalRegistry) -> None:
    """The registry build cache holds the layers too (the token among them): it is
    exported only once the image passed, so a failed run leaves no cache behind either."""
    bad = token_context(tmp_path / "bad")
    run = polyarch("publish", "--cache", "registry", "-t",
                   f"{own_registry.address}/team/app:1", str(bad))
    assert run.code == 5, run.text
    assert "--cache-to" not in run.err  # the build itself never writes the cache
    assert_registry_empty(own_registry, "team/app")

    good = make_context(tmp_path / "good", dockerfile=WRONG_ARCH.replace(
        "COPY rootfs-amd64/ /", "ARG TARGETARCH\nCOPY rootfs-${TARGETARCH}/ /"))
    run = polyarch("publish", "--cache", "registry", "-t",
                   f"{own_registry.address}/team/app:1", str(good))
    assert run.code == 0, run.text
    assert sorted(registry_tags(own_registry.address, "team/app")) == [
        "1", "buildcache-linux-amd64-linux-arm64"]
    # The cache export came after verification and the push.
    order = [ln for ln in run.out.splitlines() if ln.startswith("==> ")]
    assert order.index("==> export build cache") > next(
        i for i, ln in enumerate(order) if ln.startswith("==> push "))


# -- verification and push side by side (pipeline/overlap.py) ---------------------------

#: arm64 gets the amd64 busybox (an error); each platform also gets a layer of its own.
ONE_PLATFORM_FAILS = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-amd64/ /
COPY only-${TARGETARCH}/ /opt/
"""
BOTH_PASS = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
COPY only-${TARGETARCH}/ /opt/
"""


def _own_layers(ctx: Path) -> Path:
    for arch in ("amd64", "arm64"):
        (ctx / f"only-{arch}").mkdir()
        (ctx / f"only-{arch}" / f"marker-{arch}.txt").write_text(f"{arch}\n")
    return ctx


def _files_of(blob: Path) -> set[str]:
    """The regular files of a stored layer blob (empty for anything that is no tar)."""
    import tarfile

    try:
        with tarfile.open(blob, "r:*") as tf:
            return {m.name.lstrip("./") for m in tf.getmembers() if m.isfile()}
    except tarfile.TarError:
        return {"<not a layer>"}


def test_failing_platform_leaves_nothing_of_its_own_while_verified_layers_may(
        tmp_path: Path, own_registry: LocalRegistry) -> None:
    """The platforms are verified side by side and a platform's layers are pushed once it
    passed; arm64 fails (amd64's busybox): nothing arm64 references leaves, not even the
    busybox layer it shares with the amd64 platform that passed, and no config, manifest
    or tag does. At most amd64's own layer is in the registry, and the error says so."""
    ctx = _own_layers(make_context(tmp_path / "ctx", dockerfile=ONE_PLATFORM_FAILS,
                                   arches=("amd64",)))
    run = polyarch("publish", "-t", f"{own_registry.address}/team/app:1", "--json", str(ctx))
    assert run.code == 5, run.text
    assert "bin/busybox" in run.err
    root = own_registry.directory / "data/docker/registry/v2/blobs/sha256"
    stored = {b: _files_of(root / b[7:9] / b[7:] / "data") for b in stored_blobs(own_registry)}
    assert all(files == {"opt/marker-amd64.txt"} for files in stored.values()), stored
    assert registry_tags(own_registry.address, "team/app") == []
    revisions = (own_registry.directory
                 / "data/docker/registry/v2/repositories/team/app/_manifests/revisions")
    assert not revisions.exists() or not any(revisions.rglob("link"))
    line = last_error_line(run)
    if stored:
        assert "nothing of a failing platform was pushed (1 blob of platforms that passed" \
            " was, by digest: no manifest, no tag)" in line, line
    else:
        assert "nothing was pushed" in line, line
    assert run.json()["push"] is None


def test_platforms_that_pass_push_their_layers_during_verification(
        tmp_path: Path, own_registry: LocalRegistry) -> None:
    """Both platforms pass: their layers leave as each passes, the configs with the last
    one, manifests after the whole index passed; every blob is counted once and the tag
    names the index."""
    ctx = _own_layers(make_context(tmp_path / "ctx", dockerfile=BOTH_PASS))
    ref = f"{own_registry.address}/team/app:1"
    run = polyarch("publish", "-t", ref, "--json", str(ctx))
    assert run.code == 0, run.text
    # The first platform to pass: its two layers; the last: its two layers and both
    # configs (and the blobs of their attestations).
    each = [int(n) for n in re.findall(r"passed: pushing (\d+) verified blobs? by digest",
                                       run.err)]
    assert len(each) == 2 and each[0] == 2 and each[1] >= 4, run.err
    assert f"{sum(each)} verified blobs were pushed during verification" in run.err, run.err
    blobs = run.json()["push"]["blobs"]
    revisions = (own_registry.directory
                 / "data/docker/registry/v2/repositories/team/app/_manifests/revisions/sha256")
    manifests = len(list(revisions.iterdir()))  # the index, platforms, attestations
    # Every other stored blob was uploaded once (layers, configs, attestation blobs).
    assert blobs["uploaded"] == len(stored_blobs(own_registry)) - manifests, blobs
    assert blobs["skipped"] == blobs["mounted"] == 0
    assert registry_tags(own_registry.address, "team/app") == ["1"]


def test_an_index_that_fails_after_every_platform_passed_writes_no_manifest(
        tmp_path: Path, own_registry: LocalRegistry) -> None:
    """Both platforms pass on their own (their layers, configs and attestations leave
    early), then the whole index fails (a token in an index annotation): exit 5, no
    manifest and no tag, and the error says that every platform passed and what left."""
    ctx = _own_layers(make_context(tmp_path / "ctx", dockerfile=BOTH_PASS))
    run = polyarch("publish", "-t", f"{own_registry.address}/team/app:1", "--annotation",
                   f"index:org.opencontainers.image.description=deploy with {NPM_TOKEN}",
                   str(ctx))
    assert run.code == 5, run.text
    assert NPM_TOKEN not in run.text
    line = last_error_line(run)
    assert re.search(r"every platform passed on its own and \d+ blobs of theirs were"
                     r" pushed by digest, but the index failed: no manifest, no tag", line), line
    revisions = (own_registry.directory
                 / "data/docker/registry/v2/repositories/team/app/_manifests/revisions")
    assert not revisions.exists() or not any(revisions.rglob("link"))
    assert registry_tags(own_registry.address, "team/app") == []


def test_the_push_step_waits_for_the_early_layers_only_before_its_manifests(
        tmp_path: Path, own_registry: LocalRegistry) -> None:
    """The first layer sent during verification is held 2 s on its way: the push step
    (into a new repository: it asks for no manifest) waits for it at its first
    manifest, writes none before that layer is stored, and all of them right after."""
    ctx = _own_layers(make_context(tmp_path / "ctx", dockerfile=BOTH_PASS))
    with FaultProxy(own_registry.address) as proxy:
        # A layer's upload (over 100 kB: configs and attestations are a few kB, and the
        # push step sends no layer: the early push sent them all).
        proxy.add(Fault.delay(2), times=1, method="PUT", match="/blobs/uploads/",
                  min_length=100_000)
        run = polyarch("publish", "-t", f"{proxy.address}/team/app:1", "--json", str(ctx))
        log = list(proxy.log)
    assert run.code == 0, run.text
    assert "verified blobs were pushed during verification" in run.err, run.err
    held = max((r for r in log if r.method == "PUT" and "/blobs/uploads/" in r.path),
               key=lambda r: r.ended - r.began)
    assert held.ended - held.began >= 2, log
    # A new repository (its blobs were never pushed there): no manifest is asked for by
    # digest (the tag step reads its tag, later)...
    assert not [r for r in log if r.method == "HEAD" and "/manifests/sha256:" in r.path], log
    # ...and none written before that layer was stored; the first right after it.
    manifests = [r for r in log if r.method == "PUT" and "/manifests/" in r.path]
    assert manifests and held.ended <= min(r.began for r in manifests) < held.ended + 1, log
    assert registry_tags(own_registry.address, "team/app") == ["1"]


def test_a_layer_the_registry_refuses_during_verification_writes_no_manifest(
        tmp_path: Path, own_registry: LocalRegistry) -> None:
    """The registry refuses every layer sent during verification: the publish fails
    (exit 4, the registry's error) once the push step reaches its manifests, and no
    manifest or tag is written (the push step's own blobs, verified, may be there)."""
    ctx = _own_layers(make_context(tmp_path / "ctx", dockerfile=BOTH_PASS))
    with FaultProxy(own_registry.address) as proxy:
        proxy.add(Fault.status(400), times=None, method="PUT", match="/blobs/uploads/",
                  min_length=100_000)
        run = polyarch("publish", "-t", f"{proxy.address}/team/app:1", str(ctx))
        log = list(proxy.log)
    assert run.code == 4, run.text
    line = last_error_line(run)
    assert "team/app: upload blob sha256:" in line and "HTTP 400" in line, line
    assert [r for r in log if r.method == "PUT" and "/manifests/" in r.path] == [], log
    assert registry_tags(own_registry.address, "team/app") == []


def test_a_push_step_failure_is_said_once_the_early_layers_in_flight_ended(
        tmp_path: Path, own_registry: LocalRegistry) -> None:
    """The push fails (the registry refuses the small blobs: configs, attestations, which
    the early push sends beside the layers) while a layer sent during verification is
    still on its way (held 3 s): the error is said only once that upload ended, so that
    what the registry holds is settled when the user reads it."""
    ctx = _own_layers(make_context(tmp_path / "ctx", dockerfile=BOTH_PASS))
    with FaultProxy(own_registry.address) as proxy:
        proxy.add(Fault.delay(3), times=1, method="PUT", match="/blobs/uploads/",
                  min_length=100_000)
        proxy.add(Fault.status(400), times=None, method="PUT", match="/blobs/uploads/",
                  max_length=99_999)
        env = {k: v for k, v in os.environ.items() if k != "POLYARCH_DEBUG"}
        p = subprocess.Popen([sys.executable, "-m", "polyarch", "publish", "-t",
                              f"{proxy.address}/team/app:1", str(ctx)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True)
        assert p.stderr is not None
        said = None
        lines = []
        for line in p.stderr:
            lines.append(line)
            if line.startswith("polyarch: error:") and said is None:
                said = time.monotonic()
        assert p.wait(300) == 4, "".join(lines)
        log = list(proxy.log)
    assert said is not None, "".join(lines)
    assert "HTTP 400" in "".join(lines), "".join(lines)
    held = max((r for r in log if r.method == "PUT" and "/blobs/uploads/" in r.path),
               key=lambda r: r.ended - r.began)
    assert held.ended - held.began >= 3, log
    assert said >= held.ended, (said, held.ended)
    assert [r for r in log if r.method == "PUT" and "/manifests/" in r.path] == [], log
    assert registry_tags(own_registry.address, "team/app") == []
