"""What signing adds to a publish: the same two-platform image published with and
without ``--sign-key`` (cosign key pair, transparency log off, loopback registry),
alternated, N runs each after a warm-up.

Prints the median of the sign step as the publish reports it (``timings.sign_seconds``:
``cosign sign`` + ``cosign attest`` of the index by digest) and the median wall time of
each kind of publish. The build is cached and the blobs are already in the registry
after the warm-up, so the difference is the signing itself.

    .venv/bin/python benchmarks/signing.py [--runs 5] [--registry 127.0.0.1:5000]

Needs `scripts/engine up` (which installs cosign).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
CMD ["/bin/sh", "-c", "uname -m"]
"""


def publish(argv: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"command failed: {' '.join(argv)}\n{r.stderr[-2000:]}")
    doc: dict[str, Any] = json.loads(r.stdout)
    return dt, doc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--registry", default="127.0.0.1:5000")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="polyarch-bench-") as tmp:
        ctx = Path(tmp) / "ctx"
        ctx.mkdir()
        subprocess.run([str(ROOT / "scripts/make-rootfs"), str(ctx)], check=True)
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        keys = Path(tmp) / "keys"
        keys.mkdir()
        env = {**os.environ, "COSIGN_PASSWORD": "bench-password"}
        subprocess.run(["cosign", "generate-key-pair"], cwd=keys, env=env, check=True,
                       capture_output=True, timeout=60)
        repo = f"{a.registry}/bench/signing-{uuid.uuid4().hex[:8]}"
        base = [sys.executable, "-m", "polyarch", "publish", "--json"]
        signed = ["--sign-key", str(keys / "cosign.key")]

        def run(sign: bool, i: int) -> tuple[float, dict[str, Any]]:
            tag = f"{repo}:{'s' if sign else 'u'}{i}"
            return publish([*base, "-t", tag, *(signed if sign else []), str(ctx)], env)

        run(False, 0)  # warm-up: build cache, blobs in the registry
        run(True, 0)
        plain: list[float] = []
        with_sign: list[float] = []
        sign_step: list[float] = []
        for i in range(1, a.runs + 1):
            dt, _ = run(False, i)
            plain.append(dt)
            dt, doc = run(True, i)
            with_sign.append(dt)
            sign_step.append(doc["timings"]["sign_seconds"])
        med = statistics.median
        print(f"runs: {a.runs} each (alternated, after a warm-up), repository {repo}")
        print(f"sign step (cosign sign + cosign attest, by digest): median"
              f" {med(sign_step):.2f} s (min {min(sign_step):.2f}, max {max(sign_step):.2f})")
        print(f"publish without signing: median {med(plain):.2f} s")
        print(f"publish with --sign-key: median {med(with_sign):.2f} s")
        print(f"difference of the medians: {med(with_sign) - med(plain):+.2f} s")


if __name__ == "__main__":
    main()
