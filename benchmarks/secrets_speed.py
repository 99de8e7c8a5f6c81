"""Benchmark secret scanning: layer throughput with and without content scanning.

Installs a real node_modules tree with npm (or takes ``--tree DIR``), packs it as one
gzip layer the way BuildKit writes them (in memory), then alternates three ways of
reading that layer, ``--runs`` times each, and prints medians:

* ``walk``: the layer walker without content scanning (``layers.scan_layer``: gunzip,
  tar headers, the first bytes of every file for ELF headers);
* ``read``: the walker handing every file's whole content to a sink that only counts it
  (the floor for any content check);
* ``scan``: ``read`` plus :class:`ContentScanner` over the files :func:`content_wanted`
  selects (in a node_modules tree, the install records and files with credential
  names; not skipped by :func:`skip_by_magic`);
* ``all``: ``read`` plus a scanner over every file not skipped by magic: what deep
  verification does (:func:`layers.content_scanner`), the content scanner's raw speed.

Figures are MB/s of compressed layer data and of uncompressed file content, on one
core (the regex engine holds the GIL), from the CPU time of the process (the work is
single-threaded; CPU time stays steady on a machine other jobs share, wall time does
not). Memory: the peak allocation of one scanner fed
``--big-mb`` MB of the tree's text in 64 KiB chunks (flat: one block plus overlap).

Usage: ``python benchmarks/secrets_speed.py [--runs 5] [--tree DIR] [--big-mb 200]``.
Needs ``npm`` unless ``--tree`` is given.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

from polyarch.checks import layers
from polyarch.checks.secrets import ContentScanner, SecretHit, content_wanted, skip_by_magic

PACKAGES = ["typescript@5.6", "eslint@9", "webpack@5", "@babel/core@7", "lodash@4",
            "rxjs@7", "express@4", "aws-sdk@2"]


def install_tree(cache: Path) -> Path:
    tree = cache / "node_modules"
    if tree.is_dir():
        return tree
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "package.json").write_text('{"name": "bench", "version": "1.0.0"}\n')
    subprocess.run(["npm", "install", "--no-save", "--ignore-scripts", "--no-audit", "--no-fund",
                    "--loglevel=error", *PACKAGES], cwd=cache, check=True)
    return tree


def pack(tree: Path) -> tuple[bytes, int, int]:
    """One gzip tar layer of ``tree`` (as /app/node_modules), its file bytes and files."""
    raw = io.BytesIO()
    total = files = 0
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for root, dirs, names in os.walk(tree):
            dirs.sort()
            for name in sorted(names):
                p = Path(root, name)
                if p.is_symlink() or not p.is_file():
                    continue
                arc = "app/node_modules/" + str(p.relative_to(tree))
                tar.add(str(p), arcname=arc, recursive=False)
                total += p.stat().st_size
                files += 1
    return gzip.compress(raw.getvalue(), compresslevel=6), total, files


def chunks(blob: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    for i in range(0, len(blob), size):
        yield blob[i:i + size]


def walk(blob: bytes) -> int:
    scan = layers.scan_layer("sha256:x", chunks(blob), lambda _path, _head: None)
    return scan.entries


class _Count:
    """A sink that only counts (``read``), or counts and scans."""

    def __init__(self, scanner: ContentScanner | None) -> None:
        self.scanner = scanner
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.scanner is not None:
            self.scanner.feed(chunk)

    def finish(self) -> list[SecretHit]:
        return self.scanner.finish() if self.scanner is not None else []


def read_all(blob: bytes, mode: str) -> tuple[int, int, list[SecretHit]]:
    """Every file's content through the layer walker; with mode ``scan`` or ``all``
    through a ContentScanner. Returns content bytes read, bytes scanned, findings."""
    sinks: list[_Count] = []

    def hook(path: str, head: bytes) -> _Count:
        scanner = None
        if mode != "read" and not skip_by_magic(head[:16]) and (
                mode == "all" or content_wanted(path)):
            scanner = ContentScanner(path)
        sinks.append(_Count(scanner))
        return sinks[-1]

    scan = layers.scan_layer("sha256:x", chunks(blob), hook)
    read = sum(s.size for s in sinks)
    scanned = sum(s.size for s in sinks if s.scanner is not None)
    return read, scanned, [h for hits in scan.secrets.values() for h in hits]


def memory_peak(tree: Path, mb: int) -> tuple[int, float]:
    text = b"".join(p.read_bytes() for p in sorted(tree.rglob("*.js"))[:4000] if p.is_file())
    target = mb << 20
    pieces = [text[i:i + 65536] for i in range(0, len(text), 65536)]

    def feed_all() -> int:
        s = ContentScanner("/app/big.log")
        fed = 0
        while fed < target:
            for p in pieces:
                s.feed(p)
            fed += len(text)
        s.finish()
        return fed

    t0 = time.process_time()
    fed = feed_all()  # timed without tracemalloc (it slows every allocation)
    dt = time.process_time() - t0
    tracemalloc.start()
    feed_all()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, fed / dt / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tree", type=Path, help="a node_modules directory (default: npm install)")
    ap.add_argument("--cache", type=Path,
                    default=Path(tempfile.gettempdir()) / "polyarch-bench-secrets")
    ap.add_argument("--big-mb", type=int, default=200)
    args = ap.parse_args()

    tree = args.tree or install_tree(args.cache)
    blob, total, files = pack(tree)
    print(f"layer: {files} files, {total / 1e6:.1f} MB of content, {len(blob) / 1e6:.1f} MB gzip"
          f" ({tree})")

    times: dict[str, list[float]] = {"walk": [], "read": [], "scan": [], "all": []}
    scanned: dict[str, int] = {}
    hits: dict[str, list[SecretHit]] = {}
    for _ in range(args.runs):  # alternate, so load changes hit every mode alike
        for mode in times:
            t0 = time.process_time()
            if mode == "walk":
                walk(blob)
            else:
                _, scanned[mode], hits[mode] = read_all(blob, mode)
            times[mode].append(time.process_time() - t0)
    for mode, ts in times.items():
        med = statistics.median(ts)
        print(f"{mode:5} median {med:.2f} s CPU: {len(blob) / med / 1e6:6.0f} MB/s compressed,"
              f" {total / med / 1e6:6.0f} MB/s content (runs: {', '.join(f'{t:.2f}' for t in ts)})")
    read_med = statistics.median(times["read"])
    for mode in ("scan", "all"):
        med = statistics.median(times[mode])
        extra = max(med - read_med, 1e-9)
        print(f"{mode}: {scanned[mode] / 1e6:.1f} MB content-scanned in {extra:.2f} s more than"
              f" read = {scanned[mode] / extra / 1e6:.0f} MB/s; {med / read_med:.2f}x read time;"
              f" {len(hits[mode])} findings"
              f" ({sum(h.severity == 'error' for h in hits[mode])} errors)")
    for h in hits["all"][:10]:
        print(f"  {h.severity}: {h.describe()}")
    peak, rate = memory_peak(tree, args.big_mb)
    print(f"one scanner fed {args.big_mb} MB in 64 KiB chunks: peak {peak / 1e6:.2f} MB allocated,"
          f" {rate:.0f} MB/s")


if __name__ == "__main__":
    sys.exit(main())
