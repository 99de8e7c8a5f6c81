"""Cold publish vs warm publish with the registry cache, and tagging speed.

Fixture: a busybox base, an expensive "compile" step that runs on every platform
(arm64 under QEMU), then a last layer that changes. Before each publish the builder's
local cache records of this run's steps (found by a token in their description, one
per run) are pruned, so the warm run can only reuse what the registry cache holds;
nothing else in the builder's cache is touched.

    .venv/bin/python benchmarks/cache.py [--registry 127.0.0.1:5000] [--mib 400]

Needs `scripts/engine up`.
"""

from __future__ import annotations

import argparse
import re
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
    | busybox sha256sum; done > /compiled-{token}
COPY last.txt /last-{token}.txt
"""


def prune_own(token: str) -> None:
    """Prune the build cache records whose description holds ``token`` (this run's
    RUN and last COPY steps, and so everything built on them)."""
    for _ in range(5):
        du = subprocess.run(["docker", "buildx", "du", "--verbose"], check=True,
                            capture_output=True, text=True).stdout
        ids = [m.group(1) for m in re.finditer(r"^ID:\s+(\S+)\n(?:(?!ID:).*\n)*?Description:[^\n]*"
                                               + re.escape(token), du, re.M)]
        if not ids:
            return
        for i in ids:
            subprocess.run(["docker", "buildx", "prune", "-f", "--filter", f"id={i}"],
                           check=True, capture_output=True)


def publish(ctx: Path, ref: str, token: str) -> float:
    prune_own(token)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "polyarch", "publish", "--cache", "registry",
                        "-t", ref, str(ctx)], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(r.stderr[-3000:])
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--registry", default="127.0.0.1:5000")
    ap.add_argument("--mib", type=int, default=100)
    a = ap.parse_args()

    token = f"bench{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory(prefix="polyarch-bench-") as tmp:
        ctx = Path(tmp)
        subprocess.run([str(ROOT / "scripts/make-rootfs"), str(ctx)], check=True)
        (ctx / "Dockerfile").write_text(DOCKERFILE.format(mib=a.mib, token=token))
        repo = f"{a.registry}/bench/cache-{uuid.uuid4().hex[:8]}"
        (ctx / "last.txt").write_text("1\n")
        cold = publish(ctx, f"{repo}:cold", token)
        (ctx / "last.txt").write_text("2\n")
        warm = publish(ctx, f"{repo}:warm", token)
        prune_own(token)
    report(cold, warm, repo)


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
