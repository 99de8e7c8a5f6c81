"""Cold publish vs warm publish with the registry cache, and tagging speed.

Fixture: a busybox base, an expensive "compile" step that runs on every platform
(arm64 under QEMU), then a last layer that changes. Before each publish the builder's
local cache is pruned, so the warm run can only reuse what the registry cache holds.
The builds run on a docker-container builder of the benchmark's own (created here,
removed afterwards), so only its cache is pruned.

    .venv/bin/python benchmarks/cache.py [--registry 127.0.0.1:5000] [--mib 400]

Needs `scripts/engine up`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${{TARGETARCH}}/ /
RUN for i in 1 2 3 4; do busybox dd if=/dev/zero bs=1M count={mib} 2>/dev/null \\
    | busybox sha256sum; done > /compiled
COPY last.txt /last.txt
"""


def publish(ctx: Path, ref: str, builder: str) -> float:
    subprocess.run(["docker", "buildx", "prune", "--builder", builder, "-af"], check=True,
                   capture_output=True)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "polyarch", "publish", "--cache", "registry",
                        "--builder", builder, "-t", ref, str(ctx)], capture_output=True,
                       text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(r.stderr[-3000:])
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--registry", default="127.0.0.1:5000")
    ap.add_argument("--mib", type=int, default=100)
    a = ap.parse_args()

    builder = f"polyarch-bench-{uuid.uuid4().hex[:6]}"
    # The builder reaches the loopback registry through the host's network.
    subprocess.run(["docker", "buildx", "create", "--name", builder, "--driver",
                    "docker-container", "--driver-opt", "network=host", "--bootstrap"],
                   check=True, capture_output=True)
    try:
        cold, warm, repo = run_both(a.registry, a.mib, builder)
    finally:
        subprocess.run(["docker", "buildx", "rm", builder], capture_output=True)
    report(cold, warm, repo)


def run_both(registry: str, mib: int, builder: str) -> tuple[float, float, str]:
    with tempfile.TemporaryDirectory(prefix="polyarch-bench-") as tmp:
        ctx = Path(tmp)
        subprocess.run([str(ROOT / "scripts/make-rootfs"), str(ctx)], check=True)
        (ctx / "Dockerfile").write_text(DOCKERFILE.format(mib=mib))
        repo = f"{registry}/bench/cache-{uuid.uuid4().hex[:8]}"
        (ctx / "last.txt").write_text("1\n")
        cold = publish(ctx, f"{repo}:cold", builder)
        (ctx / "last.txt").write_text("2\n")
        warm = publish(ctx, f"{repo}:warm", builder)
    return cold, warm, repo


def report(cold: float, warm: float, repo: str) -> None:
    from polyarch.pipeline.tag import move_tags
    from polyarch.refs import parse_ref
    from polyarch.registry import RegistryClient

    print(f"cold publish (empty caches)            {cold:7.2f} s")
    print(f"warm publish (registry cache, last layer changed) {warm:7.2f} s")
    print(f"warm/cold                               {warm / cold:7.3f}   (goal <= 0.1)")

    src = parse_ref(f"{repo}:warm")
    times = []
    with RegistryClient() as client:
        index = client.get_manifest(src)
        for i in range(5):
            targets = [src.with_tag(f"p{i}-{n}") for n in ("1.0", "1", "latest")]
            t0 = time.perf_counter()
            move_tags(client, index.data, index.media_type, targets)
            times.append(time.perf_counter() - t0)
    print(f"move 3 tags to one pushed index, median of 5: {statistics.median(times) * 1000:.1f}"
          " ms   (goal < 500 ms)")


if __name__ == "__main__":
    main()
