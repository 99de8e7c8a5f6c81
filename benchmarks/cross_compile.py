"""Cross-compiling vs compiling under emulation: the examples/cross-compile program.

Three builds of the same C program, each without cache (toolchain installed from
Debian's archive, then the compile), one platform at a time:

- native amd64:   Dockerfile, linux/amd64 (the compiler runs natively)
- cross arm64:    Dockerfile, linux/arm64 (the compiler runs natively on
                  $BUILDPLATFORM and emits aarch64 code)
- emulated arm64: emulated.Dockerfile, linux/arm64 (apt-get and gcc run under QEMU)

For each: wall time of the whole build, and the time of its two steps (installing
the toolchain, compiling) read from BuildKit's progress (``--progress=rawjson``). The
goal: cross arm64 within 1.1x of native amd64, where emulation takes several times as
long. Nothing is exported (``--output type=cacheonly``).

    .venv/bin/python benchmarks/cross_compile.py [--registry 127.0.0.1:5000] [--runs 1]

Needs `scripts/engine up` and the Debian base image (`scripts/make-base`). The install
step downloads packages, so its time includes the mirror's; the compile step does not.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cross-compile"

VARIANTS = [
    ("native amd64", "Dockerfile", "linux/amd64"),
    ("cross arm64", "Dockerfile", "linux/arm64"),
    ("emulated arm64", "emulated.Dockerfile", "linux/arm64"),
]


def _ts(text: str) -> float:
    """RFC 3339 with nanoseconds (``2026-11-23T06:21:17.123456789Z``) to epoch seconds."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


def step_times(rawjson: str) -> dict[str, float]:
    """Seconds of the toolchain install and the compile step, from rawjson progress."""
    started: dict[str, float] = {}
    completed: dict[str, float] = {}
    names: dict[str, str] = {}
    dec = json.JSONDecoder()
    pos = 0
    while True:
        while pos < len(rawjson) and rawjson[pos] != "{":
            pos += 1  # whitespace between documents, or a stray text line
        if pos >= len(rawjson):
            break
        try:
            ev, pos = dec.raw_decode(rawjson, pos)
        except ValueError:
            pos += 1
            continue
        for v in ev.get("vertexes") or [] if isinstance(ev, dict) else []:
            d = v.get("digest", "")
            names[d] = v.get("name", "")
            if v.get("started"):
                started[d] = min(started.get(d, float("inf")), _ts(v["started"]))
            if v.get("completed"):
                completed[d] = max(completed.get(d, 0.0), _ts(v["completed"]))
    out = {"install": 0.0, "compile": 0.0}
    for d, name in names.items():
        if d not in started or d not in completed:
            continue
        secs = completed[d] - started[d]
        if "apt-get install" in name:
            out["install"] += secs
        elif "-static -o /out/hello" in name:
            out["compile"] += secs
    return out


def build(dockerfile: str, platform: str, base: str) -> tuple[float, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        progress = Path(tmp) / "progress.json"
        argv = ["docker", "buildx", "build", "--no-cache", "--platform", platform,
                "--file", str(EXAMPLE / dockerfile), "--build-arg", f"BASE={base}",
                "--output", "type=cacheonly", "--progress=rawjson", str(EXAMPLE)]
        t0 = time.perf_counter()
        with progress.open("w") as f:
            r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=f, text=True)
        wall = time.perf_counter() - t0
        text = progress.read_text()
        if r.returncode != 0:
            sys.exit(f"build failed: {' '.join(argv)}\n{text[-3000:]}")
        return wall, step_times(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--registry", default="127.0.0.1:5000")
    ap.add_argument("--base", default=None,
                    help="Debian base image (default REGISTRY/polyarch/debian:bookworm)")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    base = args.base or f"{args.registry}/polyarch/debian:bookworm"

    results: dict[str, list[tuple[float, dict[str, float]]]] = {n: [] for n, _, _ in VARIANTS}
    for run in range(args.runs):
        for name, dockerfile, platform in VARIANTS:
            wall, steps = build(dockerfile, platform, base)
            results[name].append((wall, steps))
            print(f"run {run + 1}: {name:15} {wall:6.1f} s  (install {steps['install']:5.1f} s,"
                  f" compile {steps['compile']:5.2f} s)", file=sys.stderr, flush=True)

    def med(name: str, key: str | None) -> float:
        vals = [w if key is None else s[key] for w, s in results[name]]
        return statistics.median(vals)

    ref_wall, ref_compile = med("native amd64", None), med("native amd64", "compile")
    print(f"\ncross-compile example, median of {args.runs} run(s), no cache, one platform per build")
    print(f"{'build':16} {'total s':>8} {'x native':>9} {'install s':>10} {'compile s':>10} {'x native':>9}")
    for name, _, _ in VARIANTS:
        wall, inst, comp = med(name, None), med(name, "install"), med(name, "compile")
        print(f"{name:16} {wall:8.1f} {wall / ref_wall:9.2f} {inst:10.1f} {comp:10.2f}"
              f" {comp / ref_compile if ref_compile else float('nan'):9.2f}")
    ratio = med("cross arm64", None) / ref_wall
    print(f"\ncross arm64 / native amd64 = {ratio:.2f} (goal <= 1.1);"
          f" emulated arm64 / native amd64 = {med('emulated arm64', None) / ref_wall:.2f}")


if __name__ == "__main__":
    main()
