"""How long `polyarch lint --offline` takes on a 500-line Dockerfile, fresh process.

    python benchmarks/lint_speed.py [--runs 15] [--lines 500]

The Dockerfile is generated (stages with continued RUN scripts, case blocks on
TARGETARCH, heredocs, COPY --from, global ARGs). Runs alternate with a bare
`python -c pass` so the interpreter's own start-up is visible beside polyarch's;
medians are printed, with the CPU time (user + system) of the polyarch runs, which a
loaded machine inflates far less than the wall time, and the load average. Goal: <= 0.25 s
for the polyarch run (wall time, on a quiet machine).

Python byte-code is compiled first (`compileall`, as pip does when it installs a
wheel), so an environment with PYTHONDONTWRITEBYTECODE=1 does not measure the
compilation of every module on every run.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def dockerfile(lines: int) -> str:
    out = ["# syntax=docker/dockerfile:1", "ARG GO_VERSION=1.22", "ARG BASE=alpine:3.20",
           "ARG IMAGE=${BASE}"]
    n = 0
    while len(out) < lines - 6:
        out += [
            f"FROM --platform=$BUILDPLATFORM golang:${{GO_VERSION}}-alpine AS build{n}",
            "WORKDIR /src",
            "COPY go.mod go.sum ./",
            "RUN --mount=type=cache,target=/go/pkg/mod go mod download",
            "COPY . .",
            "ARG TARGETOS TARGETARCH",
            "RUN set -eux; \\",
            '    case "$TARGETARCH" in \\',
            "      amd64) A=x86_64 ;; \\",
            "      arm64) A=aarch64 ;; \\",
            '      *) echo "unsupported: $TARGETARCH" >&2; exit 1 ;; \\',
            "    esac; \\",
            '    wget -O /tmp/t.tgz "https://example.com/tool-linux-${A}.tar.gz"; \\',
            "    tar -xzf /tmp/t.tgz -C /usr/local/bin; \\",
            f"    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app{n} ./cmd/app",
            "RUN <<EOF",
            "set -e",
            "apk add --no-cache git make ${EXTRA_PACKAGES} build-base",
            'echo "built $(date)" > /out/stamp',
            "EOF",
            f"FROM node:20-alpine AS web{n}",
            "WORKDIR /app",
            "COPY package.json package-lock.json ./",
            "RUN npm ci --ignore-scripts && npm run build",
            "",
        ]
        n += 1
    out += ["FROM ${IMAGE}", "RUN apk add --no-cache ca-certificates tzdata"]
    out += [f"COPY --from=build{i} /out/app{i} /usr/local/bin/" for i in range(n)]
    out += [f"COPY --from=web{i} /app/dist /srv/www{i}" for i in range(n)]
    out.append('ENTRYPOINT ["/usr/local/bin/app0"]')
    return "\n".join(out[:max(lines, 0) or len(out)]) + "\n"


#: CPU seconds (user + system) of each child run, beside its wall time: on a loaded
#: machine the wall time includes waiting for a core, the CPU time does not.
CPU: dict[str, list[float]] = {}


def timed(argv: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode not in (0, 5):
        raise SystemExit(f"{argv} failed: {r.stderr.decode()[-2000:]}")
    CPU.setdefault(argv[-1], []).append(after.ru_utime - before.ru_utime
                                        + after.ru_stime - before.ru_stime)
    return dt


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--lines", type=int, default=500)
    a = ap.parse_args()
    import compileall
    import os

    import click
    import rich

    import polyarch

    for pkg in (polyarch, click, rich):
        compileall.compile_dir(str(Path(pkg.__file__).parent), quiet=1)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "Dockerfile"
        text = dockerfile(a.lines)
        p.write_text(text)
        # The `polyarch` command users run (the console script next to this Python), or
        # `python -m polyarch` where it is not installed as a script.
        script = Path(sys.executable).parent / "polyarch"
        head = [str(script)] if script.is_file() else [sys.executable, "-m", "polyarch"]
        lint = [*head, "lint", "--offline", str(p)]
        bare = [sys.executable, "-c", "pass"]
        timed(lint)  # warm the file cache once
        ours, base = [], []
        for _ in range(a.runs):
            ours.append(timed(lint))
            base.append(timed(bare))
        from polyarch.lint import lint as lint_fn

        inproc = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            lint_fn(text)
            inproc.append(time.perf_counter() - t0)
    print(f"Dockerfile: {len(text.splitlines())} lines; {a.runs} runs each, alternating; "
          f"command: {' '.join(Path(lint[0]).name if i == 0 else w for i, w in enumerate(lint[:-1]))}")
    print("load average (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"polyarch lint --offline (fresh process): median {statistics.median(ours):.3f}s "
          f"min {min(ours):.3f}s max {max(ours):.3f}s")
    cpu = CPU[str(p)][1:]  # the first run only warmed the file cache
    print(f"polyarch lint --offline, CPU user+sys:   median {statistics.median(cpu):.3f}s "
          f"min {min(cpu):.3f}s max {max(cpu):.3f}s")
    print(f"python -c pass (interpreter start-up):   median {statistics.median(base):.3f}s")
    print(f"lint() in process:                        median {statistics.median(inproc):.3f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
