"""Benchmark deep verification of OCI layouts on disk: cold, warm (top layer changed),
peak memory, side by side with the raw tools.

Two images are built once into ``--work DIR`` (reused by later runs), as OCI layouts of
gzip (level 6) layers, two platforms each:

``large``  large-file layers: tar of directories of this machine's /usr (shared
           libraries, executables, the JDK, documentation), about 250 MB compressed
           per platform;
``node``   a node_modules-heavy image: a base layer, then per platform a real
           ``node_modules`` tree (``npm install`` of real packages for x64 and, with
           ``--cpu=arm64``, for arm64: tens of thousands of small files), then a small
           top layer.

Each measurement runs in a fresh process, and runs alternate between this checkout's
polyarch, the previous code (``--baseline DIR``: the root of another checkout, for
example ``git worktree add --detach ../pa-main main``; its ``src`` is imported) and
the raw tools:

* cold: ``verify_source`` with an empty per-layer cache: every layer read;
* raw: for each layer ``sha256sum`` then ``gzip -dc | tar -t`` (listing every entry,
  what a shell script would do), two layers at a time;
* floor: what no verifier that reads every byte can skip, on the same layers in one
  process, one layer after the other: the SHA-256 of each blob, its ISA-L inflate, and
  one pass of the content scanner's prefilter (the optional ``hyperscan``) over the
  decompressed stream. No tar walk, no file judged, no process started; its CPU
  seconds divided by the cores is the fastest a deep verification with content
  scanning can be on this machine (``--floor``; skipped without ``isal`` and
  ``hyperscan``);
* warm: the same image with only its top layer changed, the cache filled by a cold run,
  as the pipeline verifies the layout its build has just written (cached layers not
  read); and as ``polyarch verify oci:PATH`` does for a layout from elsewhere (every
  cached layer read again to check its digest).

Throughput is compressed layer bytes per wall-clock second, and per CPU second
(worker processes included) divided by the cores (what the run takes on otherwise idle
cores; the wall clock suffers from other work on a shared machine); each as min /
median / max over the runs, with the load average before and after.

Memory is sampled every 10 ms from /proc: the peak of the SUM of the resident sizes of
the verifying process and its worker processes at the same moment, and the peak of
each process alone (``ru_maxrss`` of the parent and of the largest child as a check).

Usage: ``python benchmarks/verify.py --work /var/tmp/pa-bench [--runs 5] [--case node]
[--baseline ../pa-main]`` (needs ``npm``, ``tar``, ``gzip``, ``sha256sum``; the first
run builds the inputs).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Real npm packages of a node_modules-heavy image (a CLI, a web framework, build tools,
#: packages with prebuilt binaries for several platforms).
NPM_PACKAGES = ["@google/gemini-cli", "next", "react", "react-dom", "typescript", "eslint",
                "jest", "webpack", "@babel/core", "sharp", "esbuild", "rollup", "@swc/core",
                "lightningcss", "googleapis", "tree-sitter-bash", "bare-fs", "clipboardy"]
LARGE = {
    "amd64": [["usr/lib/x86_64-linux-gnu"], ["usr/sbin", "usr/libexec"], ["usr/share/doc"]],
    "arm64": [["usr/lib/jvm"], ["usr/lib/gcc", "usr/lib/python3.11"], ["usr/share/locale"]],
}
GZ = "application/vnd.oci.image.layer.v1.tar+gzip"


# -- inputs -------------------------------------------------------------------------------

def _blob(dest: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (dest / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def tar_layer(dest: Path, root: Path, paths: list[str], transform: str | None = None
              ) -> tuple[dict[str, object], str]:
    """``tar | gzip -6`` of ``paths`` under ``root`` into the layout's blobs; returns the
    descriptor and the diff_id."""
    tmp = dest / "blobs" / f"tmp-{os.getpid()}-{threading.get_ident()}.gz"
    argv = ["tar", "-C", str(root), "-cf", "-", "--sort=name"]
    if transform:
        argv += ["--transform", transform]
    tar = subprocess.Popen([*argv, *paths], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    with tmp.open("wb") as out:
        gz = subprocess.Popen(["gzip", "-6", "-n"], stdin=subprocess.PIPE, stdout=out)
        assert tar.stdout is not None and gz.stdin is not None
        raw = hashlib.sha256()
        while chunk := tar.stdout.read(1 << 20):
            raw.update(chunk)
            gz.stdin.write(chunk)
        gz.stdin.close()
        gz.wait()
        tar.wait()
    h = hashlib.sha256()
    with tmp.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    digest = h.hexdigest()
    size = tmp.stat().st_size
    tmp.rename(dest / "blobs" / "sha256" / digest)
    return {"mediaType": GZ, "digest": f"sha256:{digest}", "size": size}, \
        f"sha256:{raw.hexdigest()}"


def write_layout(dest: Path, platforms: dict[str, list[tuple[dict[str, object], str]]]) -> None:
    descs = []
    for arch, layers in platforms.items():
        config = json.dumps({"os": "linux", "architecture": arch,
                             "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]},
                             "config": {"Env": ["PATH=/usr/local/bin:/usr/bin"]}}).encode()
        cfg = _blob(dest, config)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
            "layers": [desc for desc, _ in layers]}).encode()
        m = _blob(dest, manifest)
        descs.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **m,
                      "platform": {"os": "linux", "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType":
                        "application/vnd.oci.image.index.v1+json", "manifests": descs}).encode()
    (dest / "index.json").write_bytes(index)
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def npm_tree(work: Path, arch: str) -> Path:
    d = work / f"npm-{arch}"
    if (d / "node_modules").is_dir():
        return d
    d.mkdir(parents=True, exist_ok=True)
    (d / "package.json").write_text('{"name": "bench-app", "version": "1.0.0"}')
    extra = [] if arch == "x64" else [f"--cpu={arch}", "--os=linux"]
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts",
                    "--loglevel=error", *extra, *NPM_PACKAGES], cwd=d, check=True)
    return d


def top_layer(dest: Path, work: Path, text: str) -> tuple[dict[str, object], str]:
    src = work / f"top-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    (src / "srv/app").mkdir(parents=True, exist_ok=True)
    (src / "srv/app/version.txt").write_text(text)
    return tar_layer(dest, src, ["srv"])


def build_inputs(work: Path, case: str) -> tuple[Path, Path]:
    """The image and the same image with only its top layer changed."""
    v1, v2 = work / f"{case}-v1", work / f"{case}-v2"
    if (v2 / "index.json").exists():
        return v1, v2
    for d in (v1, v2):
        shutil.rmtree(d, ignore_errors=True)
        (d / "blobs" / "sha256").mkdir(parents=True)
    t0 = time.perf_counter()
    layers: dict[str, list[tuple[dict[str, object], str]]] = {}
    if case == "large":
        with ThreadPoolExecutor(2) as pool:
            for arch, groups in LARGE.items():
                layers[arch] = list(pool.map(lambda g: tar_layer(v1, Path("/"), g), groups))
    else:
        # A Debian-like base: the C library (so prebuilds tagged glibc/musl are judged as
        # on Debian), Python's and Perl's libraries.
        base = tar_layer(v1, Path("/"), ["usr/lib/x86_64-linux-gnu/libc.so.6",
                                         "usr/lib/python3.11", "usr/share/perl"])
        for arch, npm_arch in (("amd64", "x64"), ("arm64", "arm64")):
            tree = npm_tree(work, npm_arch)
            nm = tar_layer(v1, tree, ["node_modules", "package.json"],
                           r"s,^,usr/local/lib/bench-app/,")
            layers[arch] = [base, nm]
    tops = [top_layer(v1, work, "version 1\n"), top_layer(v1, work, "version 2\n")]
    shutil.copytree(v1 / "blobs", v2 / "blobs", dirs_exist_ok=True)
    write_layout(v1, {a: [*ls, tops[0]] for a, ls in layers.items()})
    write_layout(v2, {a: [*ls, tops[1]] for a, ls in layers.items()})
    print(f"built {case} inputs in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return v1, v2


# -- one measured run (in a child process) ------------------------------------------------

class MemorySampler(threading.Thread):
    """Peak resident size of this process plus its children (sampled together) and of
    each process alone, from /proc (Linux)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.peak_sum = 0
        self.peak_parent = 0
        self.peak_child = 0
        self.children_seen = 0

    @staticmethod
    def _rss(pid: str) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError):
            pass
        return 0

    def run(self) -> None:
        seen: set[str] = set()
        while not self.stop.wait(0.01):
            kids: set[str] = set()
            for task in Path("/proc/self/task").iterdir():
                with contextlib.suppress(OSError):
                    kids.update((task / "children").read_text().split())
            seen |= kids
            mine = self._rss("self")
            theirs = [self._rss(k) for k in kids]
            self.peak_parent = max(self.peak_parent, mine)
            self.peak_child = max([self.peak_child, *theirs])
            self.peak_sum = max(self.peak_sum, mine + sum(theirs))
        self.children_seen = len(seen)


def child(root: str, layout: str, cache_dir: str | None, content: bool, recheck: bool) -> None:
    sys.path.insert(0, str(Path(root) / "src"))
    import inspect

    from polyarch.checks import layers
    from polyarch.checks.cache import LayerCache
    from polyarch.checks.verify import verify_source
    from polyarch.platforms import parse_platforms
    from polyarch.registry.source import OCILayout

    def children() -> float:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    extra: dict[str, object] = {}
    if not content:  # the walker, decompression and digests alone (in threads)
        layers.content_scanner = lambda _path, _head: None  # type: ignore[assignment]
        if "processes" in inspect.signature(verify_source).parameters:
            extra["processes"] = 0
    mem = MemorySampler()
    mem.start()
    c0, k0, t0 = time.process_time(), children(), time.perf_counter()
    report = verify_source(OCILayout(Path(layout)), parse_platforms("linux/amd64,linux/arm64"),
                           cache=LayerCache(Path(cache_dir)) if cache_dir else None,
                           check_cached=recheck, **extra)  # type: ignore[arg-type]
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0 + children() - k0
    mem.stop.set()
    mem.join()
    mib = 1 << 20
    print(json.dumps({"wall": wall, "cpu": cpu, "compressed": report.compressed_bytes,
                      "layers_read": report.layers_read,
                      "layers_cached": report.layers_cached,
                      "files": sum(p.files_checked for p in report.platforms),
                      "inert": sum(len(p.inert) for p in report.platforms),
                      "errors": len(report.errors()),
                      "findings": hashlib.sha256(json.dumps(
                          [p.to_json() for p in report.platforms], sort_keys=True
                      ).encode()).hexdigest()[:16],
                      "processes": mem.children_seen,
                      "mem_sum_mib": mem.peak_sum / mib,
                      "mem_parent_mib": mem.peak_parent / mib,
                      "mem_child_mib": mem.peak_child / mib,
                      "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "child_maxrss_mib":
                          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def floor_child(root: str, layout: str) -> None:
    """CPU seconds of SHA-256, inflate (polyarch's own: ISA-L where installed) and the
    prefilter pass over every layer, each timed on its own."""
    sys.path.insert(0, str(Path(root) / "src"))
    from polyarch.checks.secrets import prefilter
    from polyarch.checks.stream import decompress

    pre = prefilter.get()  # compiled outside the measurement, as a verification does once
    if pre is None:
        print(json.dumps({}))
        return
    cpu = {"sha256": 0.0, "inflate": 0.0, "prefilter": 0.0}
    compressed = places = 0

    def pieces(blob: Path) -> Iterator[bytes]:
        with blob.open("rb") as f:
            while piece := f.read(1 << 20):
                yield piece

    for d in _layers(Path(layout)):
        blob = Path(layout) / "blobs/sha256" / str(d["digest"])[7:]
        h = hashlib.sha256()
        for piece in pieces(blob):
            compressed += len(piece)
            c0 = time.process_time()
            h.update(piece)
            cpu["sha256"] += time.process_time() - c0
        if "sha256:" + h.hexdigest() != d["digest"]:
            raise SystemExit(f"{blob}: digest mismatch")
        c0 = time.process_time()
        for _ in decompress(pieces(blob))[1]:
            pass
        cpu["inflate"] += time.process_time() - c0
        for out in decompress(pieces(blob))[1]:
            c0 = time.process_time()
            places += len(pre.places(out, 0))
            cpu["prefilter"] += time.process_time() - c0
    print(json.dumps({**cpu, "cpu": sum(cpu.values()), "compressed": compressed,
                      "places": places}))


def floor(root: Path, layout: Path) -> dict[str, float]:
    argv = [sys.executable, __file__, "--root", str(root), "--floor", str(layout)]
    r = subprocess.run(argv, capture_output=True, text=True, check=True)
    doc: dict[str, float] = json.loads(r.stdout.strip().splitlines()[-1])
    return doc


def _layers(layout: Path) -> list[dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    index = json.loads((layout / "index.json").read_text())
    for m in index["manifests"]:
        doc = json.loads((layout / "blobs/sha256" / m["digest"][7:]).read_text())
        for d in doc["layers"]:
            out[d["digest"]] = d
    return list(out.values())


def measure(root: Path, layout: Path, cache_dir: Path | None, content: bool = True,
            recheck: bool = False) -> dict[str, float]:
    argv = [sys.executable, __file__, "--root", str(root), "--child", str(layout)]
    if recheck:
        argv.append("--recheck")
    if not content:
        argv.append("--no-content-scan")
    if cache_dir is not None:
        argv += ["--cache", str(cache_dir)]
    r = subprocess.run(argv, capture_output=True, text=True, check=True)
    doc: dict[str, float] = json.loads(r.stdout.strip().splitlines()[-1])
    return doc


def raw(layout: Path) -> dict[str, float]:
    """sha256sum and gzip -dc | tar -t of every layer, two at a time."""
    def one(d: dict[str, object]) -> None:
        blob = layout / "blobs/sha256" / str(d["digest"])[7:]
        subprocess.run(["sha256sum", str(blob)], check=True, capture_output=True)
        subprocess.run(f"gzip -dc {blob} | tar -t > /dev/null", shell=True, check=True)

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    layers = _layers(layout)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, layers))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": time.perf_counter() - t0,
            "cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
            "compressed": sum(int(str(d["size"])) for d in layers)}


def _mmm(values: list[float], fmt: str = "6.2f") -> str:
    return (f"{min(values):{fmt}} / {statistics.median(values):{fmt}} /"
            f" {max(values):{fmt}}")


def report_case(case: str, mb: float, cores: int, runs: int, load: tuple[float, float],
                rows: dict[str, list[dict[str, float]]]) -> None:
    first = rows["cold"][0]
    print(f"\n{case}: {mb:.0f} MB compressed over both platforms,"
          f" {int(first['files'])} ELF files checked ({int(first['inert'])} inert,"
          f" {int(first['errors'])} errors), {runs} alternating runs, {cores} cores,"
          f" load average {load[0]:.1f} before, {load[1]:.1f} after"
          f" (figures: min / median / max)")
    for name, key in (("polyarch cold", "cold"), ("previous cold", "base_cold"),
                      ("raw sha256sum + gzip -dc | tar -t", "raw"),
                      ("polyarch cold, no content scan", "bare"),
                      ("previous cold, no content scan", "base_bare")):
        got = rows.get(key)
        if not got:
            continue
        walls = [r["wall"] for r in got]
        cpus = [r["cpu"] for r in got]
        print(f"  {name:36s} wall {_mmm(walls)} s = {_mmm([mb / w for w in walls], '4.0f')}"
              f" MB/s; CPU {_mmm(cpus)} s = {_mmm([mb / (c / cores) for c in cpus], '4.0f')}"
              f" MB/s on {cores} idle cores")
    got = [r for r in rows.get("floor", []) if r]
    if got:
        cpus = [r["cpu"] for r in got]
        parts = ", ".join(f"{k} {statistics.median([r[k] for r in got]):.2f}"
                          for k in ("sha256", "inflate", "prefilter"))
        print(f"  {'floor: digest + inflate + prefilter':36s} CPU {_mmm(cpus)} s ="
              f" {_mmm([mb / (c / cores) for c in cpus], '4.0f')} MB/s on {cores} idle cores"
              f" at best ({parts} s; no tar walk, no file judged)")
    for name, key in (("polyarch warm (top layer changed)", "warm"),
                      ("previous warm", "base_warm"),
                      ("polyarch warm, verify oci:PATH", "checked"),
                      ("previous warm, verify oci:PATH", "base_checked")):
        got = rows.get(key)
        if got:
            print(f"  {name:36s} wall {_mmm([r['wall'] for r in got])} s,"
                  f" {int(got[0]['layers_read'])} layer read,"
                  f" {int(got[0]['layers_cached'])} from the cache")
    for name, key in (("polyarch cold", "cold"), ("previous cold", "base_cold"),
                      ("polyarch warm", "warm"), ("previous warm", "base_warm")):
        got = rows.get(key)
        if got:
            print(f"  peak memory, {name:14s} parent+workers {_mmm([r['mem_sum_mib'] for r in got], '4.0f')}"
                  f" MiB; parent {max(r['mem_parent_mib'] for r in got):.0f},"
                  f" largest worker {max(r['mem_child_mib'] for r in got):.0f} MiB"
                  f" ({int(max(r['processes'] for r in got))} worker processes;"
                  f" ru_maxrss parent {max(r['maxrss_mib'] for r in got):.0f},"
                  f" child {max(r['child_maxrss_mib'] for r in got):.0f} MiB)")
    if "base_cold" in rows:
        same = {r["findings"] for r in rows["cold"] + rows["base_cold"]}
        print(f"  findings identical to the previous code: {'yes' if len(same) == 1 else 'NO'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, help="directory for the inputs (kept for reuse)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--case", choices=["large", "node", "all"], default="all")
    ap.add_argument("--child", metavar="LAYOUT", help=argparse.SUPPRESS)
    ap.add_argument("--cache", metavar="DIR", help=argparse.SUPPRESS)
    ap.add_argument("--recheck", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--floor", metavar="LAYOUT", help=argparse.SUPPRESS)
    ap.add_argument("--no-content-scan", action="store_true",
                    help="also measure cold runs without the secrets content scanner")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="root of a checkout of the previous code, measured side by side")
    ap.add_argument("--root", help=argparse.SUPPRESS, default=str(ROOT))
    args = ap.parse_args()
    if args.floor:
        floor_child(args.root, args.floor)
        return
    if args.child:
        child(args.root, args.child, args.cache, not args.no_content_scan, args.recheck)
        return
    if args.work is None:
        ap.error("--work DIR is required")
    cores = os.cpu_count() or 1
    for case in (["large", "node"] if args.case == "all" else [args.case]):
        v1, v2 = build_inputs(args.work, case)
        rows: dict[str, list[dict[str, float]]] = {}
        roots = [("", ROOT)] + ([("base_", args.baseline)] if args.baseline else [])
        load0 = os.getloadavg()[0]
        for i in range(args.runs):
            # Alternate which code goes first, so that neither always runs on a warmer
            # page cache or a quieter moment.
            order = roots if i % 2 == 0 else roots[::-1]
            for prefix, root in order:
                with tempfile.TemporaryDirectory(prefix="pa-vcache-") as cache:
                    rows.setdefault(prefix + "cold", []).append(measure(root, v1, Path(cache)))
                    rows.setdefault(prefix + "warm", []).append(measure(root, v2, Path(cache)))
                    rows.setdefault(prefix + "checked", []).append(
                        measure(root, v2, Path(cache), recheck=True))
                if args.no_content_scan:
                    rows.setdefault(prefix + "bare", []).append(
                        measure(root, v1, None, content=False))
            rows.setdefault("raw", []).append(raw(v1))
            rows.setdefault("floor", []).append(floor(ROOT, v1))
        report_case(case, rows["cold"][0]["compressed"] / 1e6, cores, args.runs,
                    (load0, os.getloadavg()[0]), rows)


if __name__ == "__main__":
    main()
