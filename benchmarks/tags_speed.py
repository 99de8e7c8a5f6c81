"""`polyarch tags` as a fresh process: the goal is <= 0.15 s.

Alternates, N runs each after a warm-up, and prints medians:

- the interpreter alone (`python -c pass`, the floor any Python CLI pays);
- `git rev-parse HEAD` (one git process: what reading git state costs per call);
- `polyarch tags` in a git working tree (branch, remote, tags: git is read);
- `polyarch tags` under GitHub Actions variables that say everything (no git runs);
- `polyarch tags --json` with metadata-action's typical spec set on a release tag.

    .venv/bin/python benchmarks/tags_speed.py [--runs 15] [--baseline-src OTHER/src]

With ``--baseline-src``, the same `polyarch tags` commands also run from another
checkout's sources (for example the previous release), alternating with this one, so
that a loaded machine slows both alike.

Needs git; no engine or registry.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHA = "860c1904a1ce19322e91ac35af1ab07466440c37"
SPECS = ["type=schedule", "type=ref,event=branch", "type=ref,event=pr",
         "type=semver,pattern={{version}}", "type=semver,pattern={{major}}.{{minor}}",
         "type=pep440,pattern={{version}}", "type=sha"]


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock seconds, and CPU seconds (user + system) of the process and its
    children: the second is what the command itself costs even on a busy machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"command failed: {' '.join(argv)}\n{r.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return dt, cpu


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@example.org", *args],
                   cwd=cwd, check=True, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--baseline-src", type=Path, default=None,
                    help="another checkout's src/ directory to compare with")
    a = ap.parse_args()
    # Byte-compiled as a wheel installs them (PYTHONDONTWRITEBYTECODE would otherwise make
    # every run compile polyarch from source).
    for src in [Path(__file__).resolve().parent.parent / "src",
                *([a.baseline_src] if a.baseline_src else [])]:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(src / "polyarch")],
                       check=True)
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "GITLAB", "CI_", "POLYARCH_"))}
    with tempfile.TemporaryDirectory(prefix="polyarch-bench-") as tmp:
        work = Path(tmp) / "proj"
        work.mkdir()
        git(work, "init", "-q", "-b", "main")
        (work / "f").write_text("x\n")
        git(work, "add", "f")
        git(work, "commit", "-qm", "one")
        git(work, "remote", "add", "origin", "https://github.com/octo/app.git")
        event = Path(tmp) / "event.json"
        event.write_text(json.dumps({
            "repository": {"default_branch": "main"},
            "head_commit": {"id": SHA, "timestamp": "2020-01-09T23:59:00Z"}}))
        gh = {**base, "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push",
              "GITHUB_REF": "refs/tags/v1.2.3", "GITHUB_SHA": SHA,
              "GITHUB_REPOSITORY": "octo/app", "GITHUB_EVENT_PATH": str(event)}
        py = sys.executable
        spec_args = [x for s in SPECS for x in ("--tag-spec", s)]
        cases: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass": ([py, "-c", "pass"], base),
            "git rev-parse HEAD": (["git", "rev-parse", "HEAD"], base),
            "polyarch tags (working tree)": ([py, "-m", "polyarch", "tags"], base),
            "polyarch tags (GitHub Actions)": ([py, "-m", "polyarch", "tags"], gh),
            "polyarch tags --json, 7 specs (GitHub)": (
                [py, "-m", "polyarch", "tags", "--json", "--image", "ghcr.io/Octo/App",
                 *spec_args], gh),
        }
        if a.baseline_src:
            # The plain commands only: older versions refuse pep440 and upper case.
            for name in [n for n in cases if n.startswith("polyarch tags (")]:
                argv, env = cases[name]
                cases[f"{name} [baseline]"] = (
                    argv, {**env, "PYTHONPATH": str(a.baseline_src.resolve())})
        for argv, env in cases.values():  # warm-up
            timed(argv, work, env)
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
        for _ in range(a.runs):
            for name, (argv, env) in cases.items():
                times[name].append(timed(argv, work, env))
    load = os.getloadavg()[0]
    print(f"{a.runs} alternating runs; load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"{'command':55} {'wall median':>12} {'wall min':>9} {'CPU median':>11}")
    for name, ts in times.items():
        wall = [w for w, _ in ts]
        cpu = [c for _, c in ts]
        print(f"{name:55} {statistics.median(wall):11.3f}s {min(wall):8.3f}s"
              f" {statistics.median(cpu):10.3f}s")


if __name__ == "__main__":
    main()
