"""The smoke step of publish: results cached per platform manifest, only the platforms
to run loaded into the engine, both platforms run concurrently, a deadline of its own,
and where the time went in --json."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_helpers import polyarch
from conftest import make_context

# Each platform copies a file of its own: changing changed-arm64.txt changes that
# platform's manifest alone.
DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
COPY changed-${TARGETARCH}.txt /changed
"""


def context(path: Path) -> Path:
    ctx = make_context(path, dockerfile=DOCKERFILE)
    for arch in ("amd64", "arm64"):
        (ctx / f"changed-{arch}.txt").write_text("one\n")
    return ctx


def smoke_images() -> set[str]:
    out = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return {ln for ln in out.split() if ln.startswith("polyarch-smoke-")}


def test_unchanged_platforms_are_not_smoked_again(tmp_path: Path, repo: str, cache_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Reproducible builds: a rebuild after the engine's cache lost a step (another build's
    # garbage collection) still gives the same manifests.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    ctx = context(tmp_path / "ctx")
    before = smoke_images()
    first = polyarch("publish", "--smoke", "/bin/true", "-t", f"{repo}:1", "--json", str(ctx))
    assert first.code == 0, first.err
    t1 = first.json()["timings"]
    assert (t1["smoke_ran"], t1["smoke_cached"]) == (2, 0)
    assert t1["load_seconds"] > 0 and t1["smoke_seconds"] > 0
    assert t1["scan_seconds"] <= t1["verify_seconds"]

    # Same bytes, same command: nothing is loaded or run.
    again = polyarch("publish", "--smoke", "/bin/true", "-t", f"{repo}:2", "--json", str(ctx))
    assert again.code == 0, again.err
    t2 = again.json()["timings"]
    assert (t2["smoke_ran"], t2["smoke_cached"], t2["load_seconds"]) == (2 - 2, 2, 0)
    for plat in ("linux/amd64", "linux/arm64"):
        assert f"smoke {plat}: passed before for sha256:" in again.err
    assert "smoke run linux/" not in again.err
    # The human output says where the time went, the smoke step included.
    text = polyarch("publish", "--smoke", "/bin/true", "-t", f"{repo}:2", str(ctx))
    assert text.code == 0, text.err
    (timing,) = [ln for ln in (text.out + text.err).splitlines() if ln.startswith("time    ")]
    assert timing.startswith("time    build ") and ", scan " in timing and ", smoke " in timing
    assert "2 platform(s) smoke-tested before, not run again" in timing

    # Only arm64 changed: only arm64 runs; amd64's result is known.
    (ctx / "changed-arm64.txt").write_text("two\n")
    changed = polyarch("publish", "--smoke", "/bin/true", "-t", f"{repo}:3", "--json",
                       str(ctx))
    assert changed.code == 0, changed.err
    t3 = changed.json()["timings"]
    assert (t3["smoke_ran"], t3["smoke_cached"]) == (1, 1)
    assert "smoke run linux/arm64" in changed.err and "smoke run linux/amd64" not in changed.err

    # Another command is another key; a failing command is run again next time.
    failing = polyarch("publish", "--smoke", "/bin/false", "-t", f"{repo}:4", "--json", str(ctx))
    assert failing.code == 5, failing.err
    failing2 = polyarch("publish", "--smoke", "/bin/false", "-t", f"{repo}:4", "--json", str(ctx))
    assert failing2.code == 5 and "smoke run linux/amd64" in failing2.err
    # Every temporary image is gone again.
    assert smoke_images() == before


def test_the_smoke_deadline_is_a_setting(tmp_path: Path, repo: str, cache_dir: Path) -> None:
    ctx = context(tmp_path / "ctx")
    run = polyarch("publish", "--platform", "linux/amd64", "--smoke", "sleep 30",
                   "--smoke-timeout", "3", "-t", f"{repo}:1", str(ctx), timeout=120)
    assert run.code == 5, run.err
    assert "smoke command 'sleep 30'" in run.err
    # Nothing was pushed: the tag does not exist.
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                          f"http://{repo.split('/', 1)[0]}/v2/{repo.split('/', 1)[1]}"
                          "/manifests/1"], capture_output=True, text=True, timeout=30).stdout
    assert out == "404"
    bad = polyarch("publish", "--smoke", "true", "--smoke-timeout", "soon", "-t",
                   f"{repo}:1", "--dry-run", str(ctx))
    assert bad.code == 2 and "smoke-timeout" in bad.err, bad.err
