"""polyarch publish vs the equivalent raw `docker buildx build --push`.

On the same 2-platform fixture (busybox base, one RUN step doing real work on each
platform, arm64 under QEMU), alternate the two, N runs each after a warm-up, and
print medians and the ratio. Each run passes a fresh build argument so the RUN step
really runs (the layers below it stay cached: "warm"). Also times `polyarch --help`.

    .venv/bin/python benchmarks/overhead.py [--runs 5] [--registry 127.0.0.1:5000]

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

DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${{TARGETARCH}}/ /
ARG NONCE
RUN echo "$NONCE" > /nonce && busybox dd if=/dev/zero bs=1M count={mib} 2>/dev/null \\
    | busybox sha256sum > /sum
"""


def timed(argv: list[str], **kw: object) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"command failed: {' '.join(argv)}\n{r.stderr[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--registry", default="127.0.0.1:5000")
    ap.add_argument("--extra", default="", help="extra polyarch publish flags, e.g. --no-verify")
    ap.add_argument("--mib", type=int, default=48,
                    help="work of the RUN step (MiB hashed per platform; arm64 under QEMU)")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="polyarch-bench-") as tmp:
        ctx = Path(tmp)
        subprocess.run([str(ROOT / "scripts/make-rootfs"), str(ctx)], check=True)
        (ctx / "Dockerfile").write_text(DOCKERFILE.format(mib=a.mib))
        repo = f"{a.registry}/bench/overhead-{uuid.uuid4().hex[:8]}"
        plats = "linux/amd64,linux/arm64"
        polyarch = [sys.executable, "-m", "polyarch"]

        def run_polyarch(i: int) -> float:
            return timed([*polyarch, "publish", "-t", f"{repo}:p{i}", "--platform", plats,
                          "--build-arg", f"NONCE=p{i}-{uuid.uuid4().hex}", *a.extra.split(),
                          str(ctx)])

        def run_raw(i: int) -> float:
            return timed(["docker", "buildx", "build", "--platform", plats, "-t", f"{repo}:r{i}",
                          "--build-arg", f"NONCE=r{i}-{uuid.uuid4().hex}", "--push",
                          "--progress=quiet", str(ctx)])

        run_raw(-1)
        run_polyarch(-1)  # warm-up: base layers cached for both
        ours, raw = [], []
        for i in range(a.runs):
            raw.append(run_raw(i))
            ours.append(run_polyarch(i))
        help_times = [timed([str(ROOT / ".venv/bin/polyarch"), "--help"]) for _ in range(10)]

    mo, mr = statistics.median(ours), statistics.median(raw)
    print(f"runs: {a.runs} each, platforms {plats}, RUN step hashes {a.mib} MiB per platform")
    print(f"raw buildx build --push   median {mr:.3f} s  ({', '.join(f'{x:.2f}' for x in raw)})")
    print(f"polyarch publish {a.extra:<8} median {mo:.3f} s  ({', '.join(f'{x:.2f}' for x in ours)})")
    print(f"ratio polyarch/raw        {mo / mr:.3f}   (goal <= 1.05)")
    print(f"polyarch --help           median {statistics.median(help_times):.3f} s  (goal < 0.2)")


if __name__ == "__main__":
    main()
