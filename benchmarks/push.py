"""Pushing an OCI layout: polyarch's push_layout vs `skopeo copy --all oci:DIR docker://`.

For every run, writes a 2-platform layout of new random (incompressible) gzip layers for
each tool, then alternates, N runs each after a warm-up:

- cold: push to a new repository (every blob uploaded);
- warm: push the same layout again (every blob found with a HEAD);

each as a fresh process: `python -c` running `push_layout` (jobs=4) and skopeo. Prints
medians, throughput, the time push_layout itself took (what a publish pays, the process
being up already) and polyarch's peak memory (the layers are streamed from disk, so it
should not grow with the layer size).

    .venv/bin/python benchmarks/push.py [--runs 5] [--layers 3] [--mib 16]
                                        [--registry HOST:PORT]

Pushes to a registry of its own (the docker-registry binary, on loopback, removed
afterwards) unless --registry names one. Needs skopeo for the comparison.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

# Peak memory from VmHWM (per address space): ru_maxrss would include the parent's
# peak, which a child inherits at fork.
CHILD = """
import json, re, sys
from pathlib import Path
from polyarch.refs import parse_ref
from polyarch.registry import OCILayout, RegistryClient, push_layout
with RegistryClient() as client:
    res = push_layout(client, OCILayout(Path(sys.argv[1])), parse_ref(sys.argv[2]), jobs=4)
out = res.to_json()
status = Path("/proc/self/status")
m = re.search(r"VmHWM:\\s+(\\d+) kB", status.read_text()) if status.exists() else None
out["max_rss_kib"] = int(m.group(1)) if m else 0
print(json.dumps(out))
"""


def make_layout(directory: Path, layers: int, mib: int) -> int:
    """A 2-platform OCI layout of gzip layers holding random data; returns its bytes.

    Real gzip (of incompressible data), so that no tool recompresses on the way.
    Written one layer at a time: the benchmark itself stays small in memory.
    """
    blobdir = directory / "blobs" / "sha256"
    blobdir.mkdir(parents=True)
    total = 0

    def put(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobdir / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    descs = []
    for platform in ("linux/amd64", "linux/arm64"):
        layer_descs, diff_ids = [], []
        for n in range(layers):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tf:
                info = tarfile.TarInfo(f"data/{n}.bin")
                info.size = mib * 1024 * 1024
                tf.addfile(info, io.BytesIO(os.urandom(info.size)))
            raw = buf.getvalue()
            diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
            blob = gzip.compress(raw, compresslevel=1, mtime=0)
            del raw, buf
            layer_descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                **put(blob)})
            total += len(blob)
        os_, arch = platform.split("/")
        config = json.dumps({"architecture": arch, "os": os_, "config": {},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(config)},
            "layers": layer_descs}).encode()
        descs.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                      **put(manifest), "platform": {"os": os_, "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": descs}).encode()
    root = put(index)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", **root}]}))
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
    ap.add_argument("--layers", type=int, default=3, help="layers per platform")
    ap.add_argument("--mib", type=int, default=16, help="MiB per layer")
    ap.add_argument("--registry", default=None,
                    help="push there (default: a registry of the benchmark's own on loopback)")
    a = ap.parse_args()
    if not shutil.which("skopeo"):
        sys.exit("skopeo is needed for the comparison")
    from registries import LocalRegistry

    with tempfile.TemporaryDirectory(prefix="polyarch-bench-") as tmp:
        own = None if a.registry else LocalRegistry(Path(tmp) / "registry")
        registry = a.registry or own.address  # type: ignore[union-attr]
        try:
            report(a, Path(tmp), registry)
        finally:
            if own is not None:
                own.stop()


def report(a: argparse.Namespace, tmp: Path, registry: str) -> None:
    base = f"{registry}/bench/push-{uuid.uuid4().hex[:8]}"

    def polyarch(lay: Path, ref: str) -> tuple[float, dict[str, object]]:
        dt, out = run([sys.executable, "-c", CHILD, str(lay), ref])
        return dt, json.loads(out)

    def skopeo(lay: Path, ref: str) -> float:
        # Every run pushes layers no registry has seen: skopeo remembers where blobs
        # were pushed before (its blob-info cache) and would mount them otherwise.
        return run(["skopeo", "copy", "--all", "--quiet", "--dest-tls-verify=false",
                    f"oci:{lay}", f"docker://{ref}"])[0]

    def fresh_layout(name: str) -> tuple[Path, int]:
        lay = tmp / name
        return lay, make_layout(lay, a.layers, a.mib)

    warm_p, _ = fresh_layout("warmup-p")
    polyarch(warm_p, f"{base}-warmup-p")
    warm_s, _ = fresh_layout("warmup-s")
    skopeo(warm_s, f"{base}-warmup-s:x")
    times: dict[str, list[float]] = {k: [] for k in
                                     ("polyarch cold", "skopeo cold", "polyarch warm",
                                      "skopeo warm")}
    rss: list[int] = []
    inside: dict[str, list[float]] = {"cold": [], "warm": []}
    total = 0
    load = os.getloadavg()[0]
    for i in range(a.runs):
        lay_p, total = fresh_layout(f"p{i}")
        lay_s, _ = fresh_layout(f"s{i}")
        dt, res = polyarch(lay_p, f"{base}-p{i}")
        assert res["blobs_uploaded"] == 2 * a.layers + 2, res
        times["polyarch cold"].append(dt)
        inside["cold"].append(float(str(res["seconds"])))
        rss.append(int(str(res["max_rss_kib"])))
        times["skopeo cold"].append(skopeo(lay_s, f"{base}-s{i}:x"))
        dt, res = polyarch(lay_p, f"{base}-p{i}")
        assert res["blobs_uploaded"] == 0, res
        times["polyarch warm"].append(dt)
        inside["warm"].append(float(str(res["seconds"])))
        times["skopeo warm"].append(skopeo(lay_s, f"{base}-s{i}:x"))
        shutil.rmtree(lay_p)
        shutil.rmtree(lay_s)
    mb = total / 1e6
    print(f"layout: 2 platforms x {a.layers} layers x {a.mib} MiB = {mb:.0f} MB; {a.runs}"
          f" alternating runs; load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")
    for name, ts in times.items():
        med = statistics.median(ts)
        rate = f", {mb / med:.0f} MB/s" if "cold" in name else ""
        print(f"  {name:14s} median {med:.3f} s (min {min(ts):.3f}, max {max(ts):.3f}){rate}")
    for kind in ("cold", "warm"):
        ratio = statistics.median(times[f"polyarch {kind}"]) / statistics.median(
            times[f"skopeo {kind}"])
        print(f"  polyarch/skopeo {kind}: {ratio:.2f}x")
    for kind, ts in inside.items():
        print(f"  push_layout itself ({kind}, without process start-up): median"
              f" {statistics.median(ts):.3f} s")
    print(f"  polyarch peak memory: {max(rss) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
