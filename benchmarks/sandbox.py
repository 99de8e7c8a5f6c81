"""examples/sandbox re-published unchanged, side by side with raw ``docker buildx build``.

The real Node CLI sandbox image (Debian + npm install -g of the packed workspace, two
platforms, arm64 under QEMU), nothing changed since the last publish:

raw       ``docker buildx build --platform linux/amd64,linux/arm64 --build-arg
          CLI_VERSION_ARG=VERSION --push -t REPO:rN``
polyarch  ``polyarch publish --skip-prebuild --smoke=CMD --json`` (tag from
          SANDBOX_IMAGE_TAG=pN), smoke command ``--version`` unless ``--smoke`` says
          otherwise; its smoke cache knows both variants after the warm-up, so the
          smoke command is not run again.

Goal: polyarch <= raw + 2 s (medians). One warm-up of each side first (the prebuild,
the build cache, the smoke cache, the registry's blobs), then N runs each, alternating.
For every run: wall time, user+sys CPU of the process and the commands it ran (the
daemons' work is not in it), and polyarch's own step times from ``--json``. The load
average is printed before and after.

    .venv/bin/python benchmarks/sandbox.py [--runs 5] [--smoke=--version]
        [--registry 127.0.0.1:5000]

Needs ``scripts/engine up``, the Node base image on the registry (``scripts/make-base``)
and npm (the example's prebuild). Pushes to REGISTRY/bench/sandbox-*; polyarch's cache
directory is a temporary one unless POLYARCH_CACHE_DIR is set.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "sandbox"
EXAMPLE_BASE = "127.0.0.1:5000/polyarch/node:bookworm"
PLATFORMS = "linux/amd64,linux/arm64"
STEPS = ("build_seconds", "scan_seconds", "load_seconds", "smoke_seconds", "push_seconds",
         "tag_seconds")


@dataclass
class Run:
    seconds: float
    cpu: float  # user + sys of the process tree
    steps: dict[str, float] = field(default_factory=dict)


def run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        tries: int = 2) -> tuple[Run, str]:
    """Run argv: its figures and stdout. A failed run is tried once more (BuildKit now
    and then fails an export on a content-store lock another build holds: "ref
    layer-sha256:... locked"); its time is not kept."""
    for _ in range(tries - 1):
        try:
            return run(argv, cwd=cwd, env=env, tries=1)
        except SystemExit as e:
            print(f"retrying once: {str(e)[-500:]}", file=sys.stderr, flush=True)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out, stderr=err, cwd=cwd, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        text = out.read().decode(errors="replace")
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"failed: {' '.join(argv)}\n{err.read().decode(errors='replace')[-3000:]}")
    return Run(dt, usage.ru_utime + usage.ru_stime), text


def timings(doc: Any) -> dict[str, float]:
    """The ``timings`` of a publish's --json document (a project's: its one image)."""
    if isinstance(doc, dict):
        if isinstance(doc.get("timings"), dict):
            return {k: float(v) for k, v in doc["timings"].items()
                    if isinstance(v, (int, float))}
        for v in doc.values():
            found = timings(v)
            if found:
                return found
    if isinstance(doc, list):
        for v in doc:
            found = timings(v)
            if found:
                return found
    return {}


def setup(work: Path, registry: str, repo: str) -> str:
    """A copy of the example publishing to ``repo``; returns its version."""
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("vendor", "node_modules"))
    pkg = json.loads((work / "package.json").read_text())
    pkg["config"]["sandboxImageUri"] = f"{repo}:{pkg['version']}"
    (work / "package.json").write_text(json.dumps(pkg, indent=2))
    df = work / "Dockerfile"
    df.write_text(df.read_text().replace(EXAMPLE_BASE, f"{registry}/polyarch/node:bookworm"))
    return str(pkg["version"])


def summary(name: str, runs: list[Run]) -> str:
    w = [r.seconds for r in runs]
    c = [r.cpu for r in runs]
    return (f"{name:<9} wall min {min(w):6.2f}  median {statistics.median(w):6.2f}  max"
            f" {max(w):6.2f} s   user+sys median {statistics.median(c):5.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="runs of each side (5)")
    ap.add_argument("--smoke", default="--version", help="smoke command (--version)")
    ap.add_argument("--registry", default="127.0.0.1:5000")
    ap.add_argument("--json", type=Path, help="also write every run's figures here")
    a = ap.parse_args()
    repo = f"{a.registry}/bench/sandbox-{uuid.uuid4().hex[:6]}"
    tmp = Path(tempfile.mkdtemp(prefix="polyarch-bench-sandbox-"))
    env = dict(os.environ)
    env.setdefault("POLYARCH_CACHE_DIR", str(tmp / "cache"))
    me = [sys.executable, "-m", "polyarch", "publish", f"--smoke={a.smoke}", "--json"]
    try:
        work = tmp / "sandbox"
        version = setup(work, a.registry, repo)
        raw_argv = ["docker", "buildx", "build", "--platform", PLATFORMS, "--build-arg",
                    f"CLI_VERSION_ARG={version}", "--progress=quiet", "--push"]
        load0 = os.getloadavg()
        print(f"load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}; warming up"
              " (prebuild, build, smoke) ...", file=sys.stderr, flush=True)
        first, _ = run(me, cwd=work,
                       env={**env, "SANDBOX_IMAGE_TAG": "warmup-p"})
        raw_first, _ = run([*raw_argv, "-t", f"{repo}:warmup-r", str(work)])
        print(f"warm-up: polyarch {first.seconds:.1f} s, raw {raw_first.seconds:.1f} s",
              file=sys.stderr, flush=True)
        raws: list[Run] = []
        ours: list[Run] = []
        for i in range(a.runs):
            r, _ = run([*raw_argv, "-t", f"{repo}:r{i}", str(work)])
            raws.append(r)
            o, text = run([*me, "--skip-prebuild"], cwd=work,
                          env={**env, "SANDBOX_IMAGE_TAG": f"p{i}"})
            o.steps = timings(json.loads(text))
            ours.append(o)
            print(f"  {i + 1}/{a.runs}: raw {r.seconds:.2f} s, polyarch {o.seconds:.2f} s"
                  f" ({', '.join(f'{k[:-8]} {o.steps.get(k, 0):.2f}' for k in STEPS)},"
                  f" smoke cached {int(o.steps.get('smoke_cached', 0))})",
                  file=sys.stderr, flush=True)
        load1 = os.getloadavg()
        print(f"\nexamples/sandbox, unchanged re-publish, {a.runs} runs each, alternating;"
              f" {os.cpu_count()} CPUs; load average before {load0[0]:.2f}, after"
              f" {load1[0]:.2f}")
        print(summary("raw", raws))
        print(summary("polyarch", ours))
        over = statistics.median(o.seconds for o in ours) - statistics.median(
            r.seconds for r in raws)
        print(f"polyarch - raw (medians): {over:+.2f} s (goal <= +2.00 s)")
        print("polyarch steps (medians, s): " + ", ".join(
            f"{k[:-8]} {statistics.median(o.steps.get(k, 0.0) for o in ours):.2f}"
            for k in STEPS))
        if a.json:
            a.json.write_text(json.dumps({"raw": [x.__dict__ for x in raws],
                                          "polyarch": [x.__dict__ for x in ours],
                                          "load": [load0, load1]}, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        # The images raw buildx --push named in Docker's store (one per run).
        names = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
                               capture_output=True, text=True).stdout.split()
        mine = [n for n in names if n.startswith(repo)]
        for i in range(0, len(mine), 50):
            subprocess.run(["docker", "rmi", *mine[i:i + 50]], capture_output=True)


if __name__ == "__main__":
    main()
