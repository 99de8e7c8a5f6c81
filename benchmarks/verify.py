"""Benchmark ``verify``: index-only latency and deep-verify throughput.

Builds a 2-platform image with a few hundred MB of gzip layers (generated data, text
and real busybox binaries of each platform), pushes it with polyarch's registry client
to a registry process of its own on loopback (storage in a temporary directory,
removed afterwards), then measures:

* index-only verify (``deep=False``), in process with a warm connection and as a
  fresh ``polyarch verify --no-deep`` process;
* deep verify throughput, in MB/s of compressed layer data.

Usage: ``python benchmarks/verify.py [--mb 300] [--layers 4] [--runs 3] [--workers 4]``.
Needs ``docker-registry`` on PATH and the busybox-static packages the test fixtures use
(``POLYARCH_FIXTURES``).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from polyarch.checks.verify import verify
from polyarch.platforms import parse_platforms
from polyarch.refs import parse_ref
from polyarch.registry import RegistryClient

WORDS = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
    "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
    "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "container",
    "image", "layer", "platform", "verify", "registry", "manifest", "index", "digest",
]


def fixtures() -> Path:
    env = os.environ.get("POLYARCH_FIXTURES")
    if env:
        return Path(env)
    state = Path(os.environ.get("POLYARCH_STATE_DIR", "/var/lib/polyarch-engine"
                                if os.geteuid() == 0 else Path.home() / ".cache/polyarch-engine"))
    return state / "fixtures"


def busybox(arch: str, tmp: Path) -> bytes:
    out = tmp / f"bb-{arch}"
    subprocess.run(["dpkg-deb", "-x", str(fixtures() / f"busybox-static_{arch}.deb"), str(out)],
                   check=True)
    return (out / "bin" / "busybox").read_bytes()


def text_blob(rng: random.Random, size: int) -> bytes:
    parts: list[str] = []
    n = 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(12)) + f" {rng.random():.12f}\n"
        parts.append(line)
        n += len(line)
    return "".join(parts).encode()[:size]


def make_layer(seed: int, target: int, binary: bytes, small: bool = False) -> tuple[bytes, str]:
    """A gzip layer of about ``target`` compressed bytes (``small``: many small files)."""
    rng = random.Random(seed)
    hi_bin, hi_text = (20_000, 8_000) if small else (2_000_000, 400_000)
    buf = io.BytesIO()
    raw_budget = int(target * 1.5)
    written = 0
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        i = 0
        while written < raw_budget:
            kind = i % 10
            if kind == 0:
                data, name = binary, f"usr/bin/tool{seed}_{i}"
            elif kind < 5:
                data, name = rng.randbytes(rng.randint(1_000, hi_bin)), f"srv/data/{seed}/{i}.bin"
            else:
                data = text_blob(rng, rng.randint(200, hi_text))
                name = f"usr/share/doc/{seed}/{i}.txt"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tf.addfile(info, io.BytesIO(data))
            written += len(data)
            i += 1
    raw = buf.getvalue()
    import hashlib

    return gzip.compress(raw, compresslevel=1, mtime=0), "sha256:" + hashlib.sha256(raw).hexdigest()


def cpu_seconds(registry_pid: int) -> float:
    """User+system CPU seconds of this process (all threads) and of the registry."""
    own = os.times()
    total = own.user + own.system
    try:
        fields = Path(f"/proc/{registry_pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        pass
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_registry(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    addr = f"127.0.0.1:{port}"
    cfg = tmp / "registry.yml"
    cfg.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                   f"    rootdirectory: {tmp / 'data'}\nhttp:\n  addr: {addr}\n")
    exe = shutil.which("docker-registry") or shutil.which("registry")
    if exe is None:
        sys.exit("docker-registry not found on PATH")
    proc = subprocess.Popen([exe, "serve", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            httpx.get(f"http://{addr}/v2/", timeout=1)
            return proc, addr
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    sys.exit("registry did not start")


def push(client: RegistryClient, ref_text: str, per_platform: dict[str, list[tuple[bytes, str]]]
         ) -> None:
    import hashlib

    ref = parse_ref(ref_text)
    descs = []
    for plat, layers in per_platform.items():
        os_, arch = plat.split("/")
        config = json.dumps({"os": os_, "architecture": arch,
                             "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]},
                             "config": {"Env": ["PATH=/usr/bin"]}}).encode()
        blobs = [config] + [b for b, _ in layers]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda b: client.upload_blob(
                ref, "sha256:" + hashlib.sha256(b).hexdigest(), b), blobs))
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": "sha256:" + hashlib.sha256(b).hexdigest(), "size": len(b)}
                       for b, _ in layers]}).encode()
        digest = client.put_manifest(ref.untagged().with_digest(
            "sha256:" + hashlib.sha256(manifest).hexdigest()), manifest,
            "application/vnd.oci.image.manifest.v1+json")
        descs.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "digest": digest, "size": len(manifest),
                      "platform": {"os": os_, "architecture": arch}})
    index = json.dumps({"schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": descs}).encode()
    client.put_manifest(ref, index, "application/vnd.oci.image.index.v1+json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=300, help="total compressed MB (both platforms)")
    ap.add_argument("--layers", type=int, default=4, help="layers per platform")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--small-files", action="store_true",
                    help="many small files (1-20 kB) instead of large ones")
    args = ap.parse_args()
    platforms = parse_platforms("linux/amd64,linux/arm64")
    with tempfile.TemporaryDirectory(prefix="polyarch-bench-") as tmp_s:
        tmp = Path(tmp_s)
        proc, addr = start_registry(tmp)
        try:
            t0 = time.perf_counter()
            per_layer = args.mb * 1_000_000 // (2 * args.layers)
            per_platform: dict[str, list[tuple[bytes, str]]] = {}
            with ThreadPoolExecutor(2) as pool:
                for n, arch in enumerate(("amd64", "arm64")):
                    bb = busybox(arch, tmp)
                    per_platform[f"linux/{arch}"] = list(pool.map(
                        lambda i, bb=bb, n=n: make_layer(n * 100 + i, per_layer, bb,
                                                         args.small_files),
                        range(args.layers)))
            compressed = sum(len(b) for ls in per_platform.values() for b, _ in ls)
            ref = f"{addr}/bench/app:1"
            with RegistryClient() as client:
                push(client, ref, per_platform)
            del per_platform
            files = "small files" if args.small_files else "large files"
            print(f"image ({files}): 2 platforms x {args.layers} layers,"
                  f" {compressed / 1e6:.0f} MB"
                  f" compressed (built and pushed in {time.perf_counter() - t0:.1f} s)")

            with RegistryClient() as client:
                verify(ref, platforms, deep=False, client=client)
                times = []
                for _ in range(10):
                    t = time.perf_counter()
                    r = verify(ref, platforms, deep=False, client=client)
                    times.append(time.perf_counter() - t)
                    assert r.ok
            print(f"index-only verify, in process (warm): median {statistics.median(times)*1e3:.1f}"
                  f" ms, max {max(times)*1e3:.1f} ms")
            cli = []
            for _ in range(3):
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "polyarch", "verify", ref, "--no-deep",
                                "--json"], check=True, capture_output=True)
                cli.append(time.perf_counter() - t)
            print(f"index-only verify, fresh CLI process: median {statistics.median(cli):.2f} s")

            rates = []
            cpu_rates = []
            cores = os.cpu_count() or 1
            for _ in range(args.runs):
                with RegistryClient() as client:
                    c0 = cpu_seconds(proc.pid)
                    t = time.perf_counter()
                    r = verify(ref, platforms, client=client, workers=args.workers)
                    dt = time.perf_counter() - t
                    cpu = cpu_seconds(proc.pid) - c0
                assert r.ok, json.dumps(r.to_json())[:2000]
                checked = sum(p.files_checked for p in r.platforms)
                mb = r.compressed_bytes / 1e6
                rates.append(mb / dt)
                # CPU time of verify and of the registry serving it: what the run would take
                # on otherwise idle cores (the wall clock suffers from other work on the box).
                cpu_rates.append(mb / max(cpu / cores, 1e-9))
                print(f"deep verify: {mb:.0f} MB in {dt:.2f} s = {rates[-1]:.0f} MB/s wall;"
                      f" {cpu:.2f} CPU-s (verify + registry) = {cpu_rates[-1]:.0f} MB/s on"
                      f" {cores} idle cores ({checked} ELF files checked)")
            print(f"deep verify throughput: median {statistics.median(rates):.0f} MB/s wall,"
                  f" best {max(rates):.0f} MB/s; CPU-bound estimate on {cores} idle cores:"
                  f" {statistics.median(cpu_rates):.0f} MB/s (workers: {args.workers},"
                  f" load average now {os.getloadavg()[0]:.1f})")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    zlib.crc32(b"")  # fail early if zlib is missing
    main()
