"""One engine vs two: the same 2-platform fixture published from one engine, and built
split over two engines (linux/amd64 on the first, linux/arm64 on the second, at the same
time) then joined with ``polyarch merge``.

Fixture: a busybox base and a "compile" step (hashing N MiB, four times) that runs on
every platform, arm64 under QEMU. Every run builds without cache and with a fresh build
argument, so nothing is reused between runs or between the two ways.

    .venv/bin/python benchmarks/split.py [--registry 127.0.0.1:5000] [--mib 50] [--runs 3]

Needs `scripts/engine up` and `scripts/engine2 up` (started here when down).

On one machine both engines share the CPU and arm64 is emulated in both layouts, so
the split cannot win by running arm64 natively here; what it shows is the overhead of the
split path (two builds, two pushes, the merge) and the merge time itself. The merge time
is reported twice: wall time of the `polyarch merge` process (interpreter start, imports,
every registry request) and the in-process time of its three steps from --json
(merge: resolve sources and push the index; verify; tag).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${{TARGETARCH}}/ /
ARG NONCE
RUN echo "$NONCE" > /nonce && for i in 1 2 3 4; do busybox dd if=/dev/zero bs=1M \\
    count={mib} 2>/dev/null | busybox sha256sum; done > /compiled
CMD ["/bin/sh", "-c", "uname -m"]
"""


def polyarch(*args: str, host: str | None = None) -> tuple[float, str]:
    import os

    env = dict(os.environ)
    if host:
        env["DOCKER_HOST"] = host
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "polyarch", *args], capture_output=True,
                       text=True, env=env)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"polyarch {' '.join(args)} failed:\n{r.stderr[-3000:]}")
    return dt, r.stdout


def engine2() -> str:
    r = subprocess.run([str(ROOT / "scripts/engine2"), "up"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"scripts/engine2 up failed:\n{r.stderr}")
    return next(ln.split("=", 1)[1] for ln in r.stdout.splitlines()
                if ln.startswith("DOCKER_HOST="))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--registry", default="127.0.0.1:5000")
    ap.add_argument("--mib", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    host2 = engine2()

    one: list[float] = []
    split_build: list[float] = []
    split_total: list[float] = []
    merge_wall: list[float] = []
    merge_steps: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="polyarch-bench-") as tmp:
        ctx = Path(tmp) / "ctx"
        subprocess.run([str(ROOT / "scripts/make-rootfs"), str(ctx)], check=True)
        (ctx / "Dockerfile").write_text(DOCKERFILE.format(mib=a.mib))
        repo = f"{a.registry}/bench/split-{uuid.uuid4().hex[:8]}"
        for i in range(a.runs):
            nonce = uuid.uuid4().hex
            dt, _ = polyarch("publish", "--no-cache", "--build-arg", f"NONCE=one-{nonce}",
                             "-t", f"{repo}:one-{i}", str(ctx))
            one.append(dt)

            def stage(plat: str, host: str | None, out: Path, nonce: str = nonce) -> float:
                return polyarch("build", "--push", "--no-cache", "--platform", plat,
                                "--build-arg", f"NONCE=split-{nonce}", "-t", f"{repo}:split",
                                "--descriptor", str(out), str(ctx), host=host)[0]

            d1, d2 = Path(tmp) / f"amd64-{i}.json", Path(tmp) / f"arm64-{i}.json"
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=2) as pool:
                f1 = pool.submit(stage, "linux/amd64", None, d1)
                f2 = pool.submit(stage, "linux/arm64", host2, d2)
                f1.result()
                f2.result()
            built = time.perf_counter() - t0
            dt, out = polyarch("merge", "--json", "-t", f"{repo}:split-{i}", "-t",
                               f"{repo}:split-{i}-latest", str(d1), str(d2))
            doc: dict[str, Any] = json.loads(out)
            assert doc["verification"]["ok"] and doc["promoted"]
            split_build.append(built)
            split_total.append(built + dt)
            merge_wall.append(dt)
            merge_steps.append({k: float(doc["timings"][k]) for k in
                                ("merge_seconds", "verify_seconds", "tag_seconds")})

    med = statistics.median
    steps = {k: med(s[k] for s in merge_steps) for k in merge_steps[0]}
    inproc = sum(steps.values())
    print(f"fixture: 2 platforms, {4 * a.mib} MiB hashed per platform, no cache;"
          f" median of {a.runs} runs")
    print(f"one engine   polyarch publish (build both, verify, push, tag)   {med(one):7.2f} s")
    print(f"two engines  polyarch build --push x2, in parallel            {med(split_build):7.2f} s")
    print(f"             + polyarch merge (wall, new process)             {med(merge_wall):7.2f} s")
    print(f"             = split total                                    {med(split_total):7.2f} s")
    print(f"merge in-process: resolve+push index {steps['merge_seconds'] * 1000:6.0f} ms,"
          f" verify {steps['verify_seconds'] * 1000:5.0f} ms,"
          f" tag 2 tags {steps['tag_seconds'] * 1000:5.0f} ms,"
          f" sum {inproc * 1000:5.0f} ms   (goal < 1000 ms)")


if __name__ == "__main__":
    main()
