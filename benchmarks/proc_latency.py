"""How long polyarch's subprocess runner takes to return once a command has ended.

Runs short real commands through :func:`polyarch.proc.run` (``true``, ``docker
version``, ``docker info``, ``docker-buildx inspect``) many times, alternating this
checkout with another (``--baseline-src``, for example the previous release), and prints
the median, mean and maximum of each and how many runs took 100 ms more than the median:
a runner that waits for its next poll after the command's streams closed adds up to
its poll interval at random.

    .venv/bin/python benchmarks/proc_latency.py [--runs 30] [--baseline-src OTHER/src]

Each side runs in a process of its own. Needs the engine (`scripts/engine up`) for the
docker commands; without it only ``true`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
from polyarch import proc
argv = json.loads(sys.argv[1])
t = time.perf_counter()
proc.run(argv, echo=False, check=False)
print(time.perf_counter() - t)
"""


def commands() -> list[list[str]]:
    out = [["true"]]
    if shutil.which("docker") and subprocess.run(["docker", "version"], capture_output=True,
                                                 timeout=60).returncode == 0:
        out += [["docker", "version", "--format", "{{.Server.Version}}"],
                ["docker", "info", "--format", "{{json .}}"]]
        plugin = next((p for p in ("/usr/libexec/docker/cli-plugins/docker-buildx",
                                   "/usr/lib/docker/cli-plugins/docker-buildx")
                       if os.access(p, os.X_OK)), None)
        if plugin:
            out.append([plugin, "inspect"])
    return out


def once(src: Path, argv: list[str]) -> float:
    r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(argv)], capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(src)}, timeout=120)
    if r.returncode != 0:
        sys.exit(r.stderr[-2000:])
    return float(r.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--baseline-src", type=Path, default=None)
    a = ap.parse_args()
    sides = {"polyarch": ROOT / "src"}
    if a.baseline_src:
        sides["baseline"] = a.baseline_src.resolve()
    print(f"load average {os.getloadavg()[0]:.2f}; {a.runs} alternating runs of each")
    for argv in commands():
        times: dict[str, list[float]] = {k: [] for k in sides}
        for _ in range(a.runs):
            for name, src in sides.items():
                times[name].append(once(src, argv))
        for name, ts in times.items():
            med = statistics.median(ts)
            slow = sum(1 for t in ts if t > med + 0.1)
            print(f"  {' '.join(argv)[:44]:46s} {name:9s} median {med * 1000:6.1f} ms,"
                  f" mean {statistics.mean(ts) * 1000:6.1f}, max {max(ts) * 1000:6.1f};"
                  f" +100 ms or more: {slow}/{len(ts)}")


if __name__ == "__main__":
    main()
