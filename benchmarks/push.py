"""Pushing an OCI layout: polyarch's push_layout vs `skopeo copy --all oci:DIR docker://`.

Writes a 2-platform layout of random (incompressible) layers to a temporary directory,
then alternates, N runs each after a warm-up:

- cold: push to a new repository (every blob uploaded);
- warm: push the same layout again (every blob found with a HEAD);

each as a fresh process: `python -c` running `push_layout` (jobs=4) and skopeo. Prints
medians, throughput and polyarch's peak memory (the layers are streamed from disk, so
it should not grow with the layer size).

    .venv/bin/python benchmarks/push.py [--runs 5] [--layers 4] [--mib 16]
                                        [--registry 127.0.0.1:5000]

Needs a registry on loopback (`scripts/engine up`) and skopeo for the comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

CHILD = """
import json, resource, sys
from polyarch.refs import parse_ref
from polyarch.registry import OCILayout, RegistryClient, push_layout
with RegistryClient() as client:
    res = push_layout(client, OCILayout(__import__("pathlib").Path(sys.argv[1])),
                      parse_ref(sys.argv[2]), jobs=4)
out = res.to_json()
out["max_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(out))
"""


def make_layout(directory: Path, layers: int, mib: int) -> int:
    from faultproxy import write_oci_layout

    total = 0
    variants = []
    for platform in ("linux/amd64", "linux/arm64"):
        blobs = []
        for _ in range(layers):
            # Stored as "none" layers (the tar itself): random data does not compress.
            import hashlib

            raw = os.urandom(mib * 1024 * 1024)
            blobs.append((raw, "sha256:" + hashlib.sha256(raw).hexdigest(), "none"))
            total += len(raw)
        variants.append((platform, blobs))
    write_oci_layout(directory, variants)
    return total


def run(argv: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"command failed: {' '.join(argv[:4])}\n{r.stderr[-2000:]}")
    return dt, r.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--layers", type=int, default=4, help="layers per platform")
    ap.add_argument("--mib", type=int, default=16, help="MiB per layer")
    ap.add_argument("--registry", default="127.0.0.1:5000")
    a = ap.parse_args()
    if not shutil.which("skopeo"):
        sys.exit("skopeo is needed for the comparison")
    with tempfile.TemporaryDirectory(prefix="polyarch-bench-") as tmp:
        lay = Path(tmp) / "layout"
        total = make_layout(lay, a.layers, a.mib)

        def polyarch(ref: str) -> tuple[float, dict[str, object]]:
            dt, out = run([sys.executable, "-c", CHILD, str(lay), ref])
            return dt, json.loads(out)

        def skopeo(ref: str) -> float:
            return run(["skopeo", "copy", "--all", "--quiet", "--dest-tls-verify=false",
                        f"oci:{lay}", f"docker://{ref}"])[0]

        base = f"{a.registry}/bench/push-{uuid.uuid4().hex[:8]}"
        polyarch(f"{base}-warmup-p")
        skopeo(f"{base}-warmup-s:x")
        times: dict[str, list[float]] = {k: [] for k in
                                         ("polyarch cold", "skopeo cold", "polyarch warm",
                                          "skopeo warm")}
        rss: list[int] = []
        for i in range(a.runs):
            dt, res = polyarch(f"{base}-p{i}")
            assert res["blobs_uploaded"] == 2 * a.layers + 2, res
            times["polyarch cold"].append(dt)
            rss.append(int(str(res["max_rss_kib"])))
            times["skopeo cold"].append(skopeo(f"{base}-s{i}:x"))
            dt, res = polyarch(f"{base}-p{i}")
            assert res["blobs_uploaded"] == 0, res
            times["polyarch warm"].append(dt)
            times["skopeo warm"].append(skopeo(f"{base}-s{i}:x"))
    mb = total / 1e6
    print(f"layout: 2 platforms x {a.layers} layers x {a.mib} MiB = {mb:.0f} MB;"
          f" {a.runs} alternating runs; load average {os.getloadavg()[0]:.2f}")
    for name, ts in times.items():
        med = statistics.median(ts)
        rate = f", {mb / med:.0f} MB/s" if "cold" in name else ""
        print(f"  {name:14s} median {med:.3f} s (min {min(ts):.3f}, max {max(ts):.3f}){rate}")
    for kind in ("cold", "warm"):
        ratio = statistics.median(times[f"polyarch {kind}"]) / statistics.median(
            times[f"skopeo {kind}"])
        print(f"  polyarch/skopeo {kind}: {ratio:.2f}x")
    print(f"  polyarch peak memory: {max(rss) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
