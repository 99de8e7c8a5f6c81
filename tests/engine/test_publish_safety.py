"""Final tags move only to a complete, verified index, pushed by digest first; a failed
tag write puts back every tag already moved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cli_helpers import last_error_line, polyarch
from conftest import make_context, registry_tags
from faultproxy import Fault, FaultProxy, LocalRegistry

from .helpers import WRONG_ARCH, split


def tag_digest(ref: str) -> str | None:
    """The digest a tag points at, read with skopeo (independent of polyarch)."""
    r = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                       capture_output=True)
    if r.returncode != 0:
        # Only a tag that does not exist is None; any other failure fails the test.
        assert b"manifest unknown" in r.stderr, r.stderr
        return None
    import hashlib

    return "sha256:" + hashlib.sha256(r.stdout).hexdigest()


def test_wrong_arch_v2_leaves_v1(hello_context: Path, tmp_path: Path, repo: str) -> None:
    ref = f"{repo}:stable"
    v1 = polyarch("publish", "-t", ref, "--json", str(hello_context))
    assert v1.code == 0, v1.err
    d1 = v1.json()["index"]["digest"]
    assert v1.json()["verification"]["ok"] is True
    assert v1.json()["promoted"] is True
    assert tag_digest(ref) == d1

    bad = make_context(tmp_path / "bad", dockerfile=WRONG_ARCH)
    v2 = polyarch("publish", "-t", ref, "--json", str(bad))
    assert v2.code == 5, v2.err
    line = last_error_line(v2)
    assert "verification failed" in line and "linux/arm64" in line and "nothing was pushed" in line
    assert "bin/busybox" in v2.err  # the offending file is named
    doc = v2.json()
    assert doc["promoted"] is False
    arm = next(p for p in doc["verification"]["platforms"] if p["platform"] == "linux/arm64")
    assert arm["checks"]["binaries"] == "fail"
    # The tag users pull did not move, and no other tag appeared.
    assert tag_digest(ref) == d1
    assert registry_tags(*split(repo)) == ["stable"]


def test_no_verify_says_so(tmp_path: Path, repo: str) -> None:
    bad = make_context(tmp_path / "bad", dockerfile=WRONG_ARCH)
    run = polyarch("publish", "--no-verify", "-t", f"{repo}:unchecked", str(bad))
    assert run.code == 0, run.err
    assert "verification skipped (--no-verify)" in run.err
    assert tag_digest(f"{repo}:unchecked") is not None


def test_promote_to_several_repositories(hello_context: Path, repo: str, registry: str) -> None:
    other = f"{registry}/mirror/{repo.rsplit('/', 1)[1]}"
    tags = [f"{repo}:1.0", f"{repo}:1", f"{other}:1.0"]
    args = [a for t in tags for a in ("-t", t)]
    run = polyarch("publish", *args, "--json", str(hello_context))
    assert run.code == 0, run.err
    digest = run.json()["index"]["digest"]
    for t in tags:
        assert tag_digest(t) == digest, t
    # The copied repository holds the whole image: both variants run from it.
    for plat, uname in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
        out = subprocess.run(["docker", "run", "--rm", "--pull", "always", "--platform", plat,
                              f"{other}:1.0", "uname", "-m"], capture_output=True, text=True)
        assert out.stdout.strip() == uname, out.stderr
    # Each repository has exactly its tags; the second got its blobs by mounting them
    # from the first (same registry), not by a second upload.
    assert sorted(registry_tags(*split(repo))) == ["1", "1.0"]
    assert registry_tags(*split(other)) == ["1.0"]
    push = run.json()["push"]
    assert push["repositories"] == [repo, other]
    assert push["blobs"]["mounted"] > 0


def test_faults_during_promotion_are_survived(tmp_path: Path, hello_context: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    try:
        with FaultProxy(reg.address) as proxy:
            ref = f"{proxy.address}/team/app"
            proxy.add(Fault.status(503), times=2, method="PUT", match="/manifests/1.0")
            proxy.add(Fault.status(429, retry_after=1), times=1, method="PUT",
                      match="/manifests/latest")
            proxy.add(Fault.reset(), times=1, method="PUT", match="/manifests/latest")
            run = polyarch("publish", "-t", f"{ref}:1.0", "-t", f"{ref}:latest", "--json",
                           str(hello_context))
            assert run.code == 0, run.err
            assert proxy.faults_injected == 4
            digest = run.json()["index"]["digest"]
            assert tag_digest(f"{reg.address}/team/app:1.0") == digest
            assert tag_digest(f"{reg.address}/team/app:latest") == digest
    finally:
        reg.stop()


def test_faults_beyond_budget_promote_nothing(tmp_path: Path, hello_context: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    try:
        old = polyarch("publish", "-t", f"{reg.address}/team/app:1.0", "--json",
                       str(hello_context))
        assert old.code == 0, old.err
        d_old = old.json()["index"]["digest"]
        changed = make_context(tmp_path / "v2", dockerfile=(
            "FROM scratch\nARG TARGETARCH\nCOPY rootfs-${TARGETARCH}/ /\nRUN echo v2 > /v\n"))
        with FaultProxy(reg.address) as proxy:
            # The second tag can never be written: the first must be moved back.
            proxy.add(Fault.status(503), times=None, method="PUT", match="/manifests/latest")
            run = polyarch("publish", "-t", f"{proxy.address}/team/app:1.0",
                           "-t", f"{proxy.address}/team/app:latest", str(changed))
        assert run.code == 4, run.err
        line = last_error_line(run)
        assert "latest" in line and "moved back" in line
        assert tag_digest(f"{reg.address}/team/app:1.0") == d_old
        assert tag_digest(f"{reg.address}/team/app:latest") is None
    finally:
        reg.stop()


def test_concurrent_publishes_of_one_tag(tmp_path: Path, repo: str) -> None:
    ref = f"{repo}:race"
    ctxs = [make_context(tmp_path / f"c{i}", dockerfile=(
        f"FROM scratch\nARG TARGETARCH\nCOPY rootfs-${{TARGETARCH}}/ /\nRUN echo {i} > /which\n"))
        for i in (1, 2)]
    procs = [subprocess.Popen([sys.executable, "-m", "polyarch", "publish", "-t", ref, "--json",
                               str(c)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in ctxs]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    digests = {json.loads(out)["index"]["digest"] for out, _ in results}
    assert len(digests) == 2
    final = tag_digest(ref)
    assert final in digests
    # The tag names one complete index that verifies.
    check = polyarch("verify", ref, "--json")
    assert check.code == 0, check.err
    assert check.json()["index_digest"] == final


def test_transient_push_failures_are_retried(tmp_path: Path, hello_context: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    try:
        with FaultProxy(reg.address) as proxy:
            # polyarch's own push: blob uploads and by-digest manifest writes get 503s and
            # dropped connections, within the client's retry budget.
            proxy.add(Fault.status(503), times=2, method="PUT", match="/blobs/uploads/")
            proxy.add(Fault.reset(), times=1, method="POST", match="/blobs/uploads/")
            proxy.add(Fault.status(503), times=2, method="PUT", match="/manifests/sha256:")
            run = polyarch("publish", "-t", f"{proxy.address}/team/app:1", "--json",
                           str(hello_context))
            assert run.code == 0, run.err
            assert proxy.faults_injected == 5
            assert tag_digest(f"{reg.address}/team/app:1") == run.json()["index"]["digest"]
            assert registry_tags(reg.address, "team/app") == ["1"]
    finally:
        reg.stop()


CACHED_DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
RUN busybox dd if=/dev/zero bs=1M count=24 2>/dev/null | busybox sha256sum > /expensive && echo TOKEN
COPY last.txt /last.txt
"""


def test_registry_cache_survives_a_cold_builder(tmp_path: Path, repo: str, engine2: str) -> None:
    """The second publish runs on the second engine (the tests' own, with a build cache of
    its own that has never seen this Dockerfile: the token is new): only the registry cache
    can make its expensive step cached. No build cache is pruned anywhere."""
    import uuid

    ctx = make_context(tmp_path / "ctx", dockerfile=CACHED_DOCKERFILE.replace(
        "TOKEN", uuid.uuid4().hex))
    (ctx / "last.txt").write_text("one\n")
    first = polyarch("publish", "--cache", "registry", "-t", f"{repo}:1", str(ctx))
    assert first.code == 0, first.err
    assert "RUN busybox dd" in first.err and "exporting cache to registry ... done" in first.err
    (ctx / "last.txt").write_text("two\n")
    second = polyarch("publish", "--cache", "registry", "-t", f"{repo}:2", str(ctx),
                      env={"DOCKER_HOST": engine2})
    assert second.code == 0, second.err
    # The build itself; the cache-only export after verification comes from it.
    build_lines = second.err.split("--output type=cacheonly")[0].splitlines()
    assert "--output type=cacheonly" in second.err
    expensive = [ln for ln in build_lines if "RUN busybox dd" in ln]
    assert expensive and all(ln.endswith("cached") for ln in expensive), expensive
    last = [ln for ln in build_lines if "COPY last.txt" in ln]
    assert last and not any(ln.endswith("cached") for ln in last), last
    tags = registry_tags(repo.split("/", 1)[0], repo.split("/", 1)[1])
    assert "buildcache-linux-amd64-linux-arm64" in tags


def test_a_lost_answer_to_a_tag_write_is_rolled_back(tmp_path: Path, hello_context: Path) -> None:
    """The registry stores the new index under a tag, but the answer never arrives: that tag
    has moved although the write looked failed. It is put back."""
    from polyarch.registry import RegistryClient

    reg = LocalRegistry(tmp_path / "reg")
    try:
        old = polyarch("publish", "-t", f"{reg.address}/team/app:1.0", "-t",
                       f"{reg.address}/team/app:latest", "--json", str(hello_context))
        assert old.code == 0, old.err
        d_old = old.json()["index"]["digest"]
        changed = make_context(tmp_path / "v2", dockerfile=(
            "FROM scratch\nARG TARGETARCH\nCOPY rootfs-${TARGETARCH}/ /\nRUN echo v2 > /v\n"))
        with FaultProxy(reg.address) as proxy:
            # Every attempt the client makes within its retry budget is stored, then lost.
            attempts = RegistryClient().retries + 1
            proxy.add(Fault.lose(), times=attempts, method="PUT", match="/manifests/1.0")
            run = polyarch("publish", "-t", f"{proxy.address}/team/app:1.0",
                           "-t", f"{proxy.address}/team/app:latest", str(changed))
            assert proxy.faults_injected == attempts
        assert run.code == 4, run.err
        assert "moved back" in last_error_line(run) and "1.0" in last_error_line(run)
        assert tag_digest(f"{reg.address}/team/app:1.0") == d_old
        assert tag_digest(f"{reg.address}/team/app:latest") == d_old
    finally:
        reg.stop()
