"""`polyarch inspect REF` as a fresh process, side by side with `skopeo inspect --raw`.

Pushes a small 2-platform index to the registry, then alternates the two commands
(after one warm-up each) and prints medians. polyarch does more than skopeo's --raw
(it also reads each platform's manifest and config to show sizes and dates), so
`polyarch inspect` is also timed with `python -c pass` and with the imports alone, to
show where the time goes: ``import click, httpx, httpcore`` (the libraries it stands
on, nothing of polyarch) is the floor. The goal is <= 0.15 s for `polyarch inspect`.

    .venv/bin/python benchmarks/inspect_startup.py [--runs 15] [--registry 127.0.0.1:5000]
        [--baseline-src OTHER/src]

With ``--baseline-src``, ``polyarch inspect`` and ``--help`` also run from another
checkout's sources (for example the previous release), alternating with this one.
polyarch's modules are byte-compiled first, as a wheel installs them.

Needs a registry on loopback (`scripts/engine up`) and skopeo for the comparison.
"""

from __future__ import annotations

import argparse
import os
import resource
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


#: The modules `polyarch inspect REF` loads (tests/engine/test_startup.py checks the
#: same command), imported without running it.
INSPECT_IMPORTS = ("import polyarch.cli, polyarch.commands.inspect, polyarch.registry.client,"
                   " polyarch.registry.describe, polyarch.registry.source,"
                   " polyarch.signing.check, polyarch.commands._render")


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"command failed: {' '.join(argv)}\n{r.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return dt, cpu


def push_fixture(registry: str) -> str:
    from faultproxy import make_layer, write_oci_layout

    from polyarch.refs import parse_ref
    from polyarch.registry import OCILayout, RegistryClient, push_layout

    with tempfile.TemporaryDirectory(prefix="polyarch-bench-") as tmp:
        a = make_layer({"bin/a": os.urandom(4096)})
        b = make_layer({"bin/b": os.urandom(4096)})
        lay = OCILayout(write_oci_layout(Path(tmp), [("linux/amd64", [(*a, "gzip")]),
                                                    ("linux/arm64", [(*b, "gzip")])]))
        repo = f"{registry}/bench/inspect-{uuid.uuid4().hex[:8]}"
        with RegistryClient() as client:
            res = push_layout(client, lay, parse_ref(repo))
            client.put_manifest(parse_ref(f"{repo}:v1"), lay.root().data, res.media_type)
    return f"{repo}:v1"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--registry", default="127.0.0.1:5000")
    ap.add_argument("--baseline-src", type=Path, default=None,
                    help="another checkout's src/ directory to compare with")
    a = ap.parse_args()
    ref = push_fixture(a.registry)
    py = sys.executable
    here = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "python -c pass": ([py, "-c", "pass"], here),
        # The floor: the libraries inspect stands on, imported as polyarch imports them
        # (without httpx's own command-line tool), and nothing of polyarch.
        "import click, httpx, httpcore": ([py, "-c", "import sys; sys.modules['httpx._main']"
                                           " = None; import click, httpx, httpcore"], here),
        # What `polyarch inspect` imports, without running anything.
        "polyarch inspect's imports": ([py, "-c", INSPECT_IMPORTS], here),
        "polyarch --help": ([py, "-m", "polyarch", "--help"], here),
        "polyarch inspect": ([py, "-m", "polyarch", "inspect", ref], here),
        "polyarch inspect --json": ([py, "-m", "polyarch", "inspect", "--json", ref], here),
    }
    srcs = [ROOT / "src"]
    if a.baseline_src:
        srcs.append(a.baseline_src)
        base = {**os.environ, "PYTHONPATH": str(a.baseline_src.resolve())}
        for name in ("polyarch --help", "polyarch inspect", "polyarch inspect --json"):
            commands[f"{name} [baseline]"] = (commands[name][0], base)
    if shutil.which("skopeo"):
        commands["skopeo inspect --raw"] = (["skopeo", "inspect", "--raw", "--tls-verify=false",
                                             f"docker://{ref}"], here)
    for src in srcs:
        subprocess.run([py, "-m", "compileall", "-q", str(src / "polyarch")], check=True)
    times: dict[str, list[float]] = {k: [] for k in commands}
    cpus: dict[str, list[float]] = {k: [] for k in commands}
    for argv, env in commands.values():
        timed(argv, env)  # warm-up (page cache, registry)
    load = os.getloadavg()[0]
    for _ in range(a.runs):
        for name, (argv, env) in commands.items():
            wall, cpu = timed(argv, env)
            times[name].append(wall)
            cpus[name].append(cpu)
    print(f"{ref}: {a.runs} alternating runs each;"
          f" load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")
    for name, ts in times.items():
        print(f"  {name:36s} median {statistics.median(ts):.3f} s"
              f"  (min {min(ts):.3f}, max {max(ts):.3f}; CPU {statistics.median(cpus[name]):.3f} s)")


if __name__ == "__main__":
    main()
