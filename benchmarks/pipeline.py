"""The local-first pipeline side by side with raw ``docker buildx build``.

One run measures, alternating polyarch and the raw tool, N runs each, medians:

cold    ``polyarch publish --no-cache`` into a fresh repository vs
        ``docker buildx build --platform linux/amd64,linux/arm64 --no-cache --push``
        into another fresh repository (goal <= 1.10x). The layers come out the same
        every run (same context), so both sides find them on the registry in the
        repositories of earlier runs and mount them: buildx from containerd's
        distribution-source labels, polyarch from its record of earlier pushes (in its
        cache directory, kept for all runs of one invocation, like its layer cache).
warm    only the top layer changed (a small file rewritten before every run), both
        pushing to one repository that holds the lower layers (goal <= 1.05x).
oci     ``polyarch build -o oci:PATH.tar`` vs ``docker buildx build -o
        type=oci,dest=PATH.tar``, top layer changed (goal <= 1.10x).
fixed   a tiny image (busybox, ``scripts/make-rootfs``), top layer changed:
        ``polyarch publish`` vs ``buildx --push``, and what polyarch spends beyond the
        build itself, step by step: interpreter start, imports (``-X importtime``),
        preflight, verify, push, tag (goal <= 0.3 s).

For every polyarch run: peak memory (ru_maxrss) of the polyarch process itself, and of
the process tree (polyarch with the docker CLI processes it ran), goal <= 100 MiB.

The realistic image is made without Docker Hub: ``FROM scratch`` and two COPY layers,
a Debian base and a toolchain (gcc, LLVM, binutils, Python, Perl, git, gdb, ...), both
extracted with ``dpkg-deb -x`` from the real Debian packages of each architecture
(``apt-get download PKG:amd64 PKG:arm64``; needs ``dpkg --add-architecture arm64``,
which ``scripts/engine up`` does). No RUN step runs, so QEMU plays no part. The
fixture is made once and kept in ``--fixture-dir``.

    .venv/bin/python benchmarks/pipeline.py [--runs 5] [--cases cold,warm,oci,fixed]
        [--registry 127.0.0.1:5000] [--fixture-dir ~/.cache/polyarch-bench]
        [--baseline-src OTHER/src] [--json FILE] [--no-prune]

``--baseline-src`` (fixed and warm cases): polyarch from another checkout's sources (for
example the previous release) runs too, alternating with this one and raw buildx (its
median and ratio are printed under the case's row), and the fixed cost is broken down
for both. Every run's CPU time (user + system of polyarch and the
docker CLI processes it ran) is reported beside the wall time: it is what a run costs
however busy the machine is. polyarch's modules are byte-compiled first (as a wheel
installs them), so that no run compiles them from source.

Needs ``scripts/engine up``. Pushes to REGISTRY/bench/pipeline-* (new names each run);
polyarch's cache directory is a temporary one unless POLYARCH_CACHE_DIR is set.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
PLATFORMS = "linux/amd64,linux/arm64"
ARCHES = ("amd64", "arm64")



def _words(text: str) -> list[str]:
    return text.split()


#: The Debian base layer (bookworm's essential and required packages, roughly).
BASE = _words("""libc6 libc-bin bash coreutils dash dpkg apt libapt-pkg6.0 tar gzip findutils grep sed
util-linux libsystemd0 libzstd1 liblzma5 zlib1g libbz2-1.0 libgcrypt20 libgpg-error0
libselinux1 libpcre2-8-0 libacl1 libattr1 libcap2 libssl3 ca-certificates libstdc++6
libgcc-s1 perl-base base-files libtinfo6 ncurses-base debianutils diffutils hostname login
passwd mawk sensible-utils libcrypt1 libdb5.3 libaudit1 libpam0g libsemanage2 libsepol2
libudev1 libxxhash0 liblz4-1 libgmp10 libffi8 libexpat1 libsqlite3-0 libuuid1 libblkid1
libmount1 libsmartcols1""")
#: The toolchain layer: big real packages full of ELF files. binutils-ARCH-linux-gnu
#: is added per architecture.
TOOLS = _words("""gcc-12 cpp-12 g++-12 libstdc++-12-dev libgcc-12-dev libasan8 libtsan2 libubsan1
liblsan0 libitm1 libatomic1 libgomp1 libcc1-0 libisl23 libmpfr6 libmpc3 libllvm14
libclang-cpp14 libbinutils libctf0 libctf-nobfd0 libgprofng0 libjansson4 binutils
binutils-common python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libpython3.11
libperl5.36 perl git git-man liberror-perl gdb libicu72 libz3-4 libc6-dev linux-libc-dev
libcrypt-dev systemd libsystemd-shared libxml2 libglib2.0-0 libgnutls30 libkrb5-3
libk5crypto3 libkrb5support0 libcurl3-gnutls libcurl4 curl openssl libsource-highlight4v5
libboost-regex1.74.0 libbabeltrace1 libdebuginfod1 libreadline8 libncursesw6 libedit2
libelf1 libzstd-dev libnghttp2-14 librtmp1 libssh2-1 libpsl5 libldap-2.5-0 libsasl2-2
libunistring2 libidn2-0 libp11-kit0 libtasn1-6 libnettle8 libhogweed6 libbrotli1
libpcre2-16-0 libpcre2-32-0""")
GNU_ARCH = {"amd64": "x86-64", "arm64": "aarch64"}

#: Each platform's trees come from named build contexts of their own (``contexts``), not
#: from subdirectories of the main context: with ``COPY base-${TARGETARCH}/ /`` each
#: platform syncs a different part of one context under one cache key, and BuildKit may
#: hand each platform the other's copy on the next build, which then sends the whole
#: context again (1 s or 11 s for the same build, on either side, by chance).
DOCKERFILE = """\
FROM scratch AS image-amd64
COPY --from=base-amd64 / /
COPY --from=tools-amd64 / /

FROM scratch AS image-arm64
COPY --from=base-arm64 / /
COPY --from=tools-arm64 / /

FROM image-${TARGETARCH}
COPY top/ /opt/bench/
CMD ["/bin/bash"]
"""
TINY_DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
COPY top/ /opt/bench/
"""

#: Runs polyarch's CLI in this interpreter, timing the pipeline's steps; writes the
#: times and the process's own peak memory to $BENCH_OUT as JSON. The steps are wrapped
#: when their modules are first imported, so the imports happen when they would. Each
#: step's CPU time ("cpu:STEP": every thread of the process and the processes it waited
#: for) is kept too, and every command polyarch ran ("commands": name -> [count, wall
#: seconds]) and every HTTP request it sent ("http": method -> count).
WRAPPER = r"""
import sys
before = set(sys.modules)
import importlib.util, json, os, resource, threading, time
STEPS = {"polyarch.pipeline.local": (("preflight", "preflight"),),
         "polyarch.pipeline.publish": (("push", "push"),),
         # (the tag step's own module: what imports it may do so only when it runs)
         "polyarch.pipeline.tag": (("tag", "tag"),),
         "polyarch.pipeline.build": (("build", "build"),),
         "polyarch.pipeline.verify": (("verify_layout", "verify"),),
         # The platforms verified side by side while verified layers are pushed.
         "polyarch.pipeline.overlap": (("verify_platforms", "verify"),),
         "polyarch.pipeline.outputs": (("write", "output"),)}
times = {"commands": {}, "http": {}}
lock = threading.Lock()
def cpu():
    own = time.process_time()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + kids.ru_utime + kids.ru_stime
def wrap_steps(module):
    for name, key in STEPS[module.__name__]:
        f = getattr(module, name)
        def timed(*a, _f=f, _key=key, **k):
            s, c = time.perf_counter(), cpu()
            # The platforms judged while buildx finishes (pipeline/ahead.py) are timed
            # apart: that time is within the build step's.
            ahead = threading.current_thread().name == "polyarch-ahead"
            key = "ahead" if ahead else _key
            try:
                return _f(*a, **k)
            finally:
                times[key] = times.get(key, 0.0) + time.perf_counter() - s
                if not ahead:
                    times["cpu:" + key] = times.get("cpu:" + key, 0.0) + cpu() - c
        setattr(module, name, timed)
def wrap_proc(module):
    f = module.run
    def run(argv, *a, **k):
        s = time.perf_counter()
        try:
            return f(argv, *a, **k)
        finally:
            with lock:
                n, w = times["commands"].get(module.command_name(argv), (0, 0.0))
                times["commands"][module.command_name(argv)] = (n + 1,
                                                                w + time.perf_counter() - s)
    module.run = run
def wrap_http(module):
    f = module.Client.send
    def send(self, request, *a, **k):
        with lock:
            times["http"][request.method] = times["http"].get(request.method, 0) + 1
        return f(self, request, *a, **k)
    module.Client.send = send
def wrap_buildx(module):
    f = module.Buildx.build
    def build(self, *a, **k):
        r = f(self, *a, **k)
        times["context_bytes"] = times.get("context_bytes", 0) + getattr(r, "context_bytes", 0)
        return r
    module.Buildx.build = build
AFTER = {**{m: wrap_steps for m in STEPS}, "polyarch.proc": wrap_proc, "httpx": wrap_http,
         "polyarch.engines.buildx": wrap_buildx}
class Hook:
    busy = False
    def find_spec(self, name, path, target=None):
        if name not in AFTER or self.busy:
            return None
        self.busy = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.busy = False
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            AFTER[module.__name__](module)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, Hook())
# What the program's entry does first, where the checkout has it (polyarch.__main__).
import importlib.util as _u
if "def builds(" in open(_u.find_spec("polyarch.__main__").origin).read():
    from polyarch.__main__ import builds
    if builds(sys.argv[1:]):
        from polyarch.engines import start_at_entry
        start_at_entry()
import polyarch.cli
try:
    code = polyarch.cli.run(sys.argv[1:])
finally:
    times["self_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times["modules"] = [m for m, v in list(sys.modules.items())
                        if m not in before and v is not None]  # None: an import refused
    with open(os.environ["BENCH_OUT"], "w") as f:
        json.dump(times, f)
sys.exit(code)
"""


@dataclass
class Run:
    seconds: float
    tree_maxrss_kib: int = 0
    steps: dict[str, Any] = field(default_factory=dict)
    #: CPU seconds (user + system) of the process and of the processes it waited for:
    #: what the run costs whatever else the machine is doing.
    cpu: float = 0.0


def run(argv: list[str], env: dict[str, str] | None = None, *, tries: int = 2,
        context: bool = False) -> Run:
    """Run argv, output to a file; wall time and the peak RSS of the process tree. A
    failed run is tried once more (the test registry answers a manifest HEAD with a 500
    now and then while a tag is written); its time is not kept."""
    for _ in range(tries - 1):
        try:
            return run(argv, env, tries=1, context=context)
        except SystemExit as e:
            print(f"retrying once: {e}", file=sys.stderr, flush=True)
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            log.seek(0)
            sys.exit(f"failed ({p.returncode}): {' '.join(argv)}\n"
                     f"{log.read().decode(errors='replace')[-3000:]}")
        steps: dict[str, Any] = {}
        if context:
            log.seek(0)
            steps["context_bytes"] = context_sent(log.read().decode(errors="replace"))
    return Run(dt, usage.ru_maxrss, steps, cpu=usage.ru_utime + usage.ru_stime)


def context_sent(rawjson: str) -> int:
    """Bytes of build context the builder received, from ``--progress=rawjson``: read
    the way polyarch reads its own builds."""
    from polyarch.engines.buildx_progress import RawJsonProgress

    parser = RawJsonProgress(None)
    for line in rawjson.splitlines():
        parser.feed(line)
    return parser.context_bytes


def polyarch(args: list[str], *, importtime: bool = False, src: Path | None = None) -> Run:
    """A polyarch run in a fresh interpreter; ``src``: another checkout's sources."""
    with tempfile.TemporaryDirectory(prefix="polyarch-bench-") as tmp:
        out = Path(tmp) / "times.json"
        env = {**os.environ, "BENCH_OUT": str(out),
               **({"PYTHONPATH": str(src.resolve())} if src else {})}
        flags = ["-X", "importtime"] if importtime else []
        r = run([sys.executable, *flags, "-c", WRAPPER, *args], env)
        r.steps = json.loads(out.read_text())
    return r


def compile_sources(src: Path | None) -> None:
    """Byte-compile polyarch's modules (of ``src``, else of the polyarch this interpreter
    imports), as an installed wheel has them: with PYTHONDONTWRITEBYTECODE set, Python
    would otherwise compile every module from source in every run."""
    if src is None:
        import importlib.util

        spec = importlib.util.find_spec("polyarch")
        assert spec is not None and spec.origin is not None
        pkg = Path(spec.origin).parent
    else:
        pkg = src / "polyarch"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(pkg)], check=True)


def raw(args: list[str]) -> Run:
    return run(["docker", "buildx", "build", "--platform", PLATFORMS, "--progress=rawjson",
                *args], context=True)


# -- the fixture -----------------------------------------------------------------------

def download(dest: Path, names: list[str], arch: str) -> None:
    """apt-get download every package for ARCH (Architecture: all ones as they are);
    a package this release lacks for ARCH is left out."""
    dest.mkdir(parents=True, exist_ok=True)
    want = {n: f"{n}:{arch}" for n in names}
    while want:
        r = subprocess.run(["apt-get", "download", *want.values()], cwd=dest,
                           capture_output=True, text=True)
        if r.returncode == 0:
            return
        bad = set(re.findall(r"(?:locate package|from package) ([^\s:]+)", r.stderr))
        if not bad & set(want):
            sys.exit(f"apt-get download failed:\n{r.stderr[-2000:]}")
        for n in bad & set(want):
            show = subprocess.run(["apt-cache", "show", "--no-all-versions", n],
                                  capture_output=True, text=True).stdout
            if "\nArchitecture: all" in show and want[n] != n:
                want[n] = n
            else:
                print(f"fixture: {n} not available for {arch}, left out", file=sys.stderr)
                del want[n]


def fixture(root: Path) -> Path:
    """The realistic context: base-ARCH/ and tools-ARCH/ root filesystem trees."""
    ctx = root / "context"
    if (ctx / ".complete").exists():
        (ctx / "Dockerfile").write_text(DOCKERFILE)  # (a fixture made by an older version)
        return ctx
    for arch in ARCHES:
        for layer, names in (("base", BASE), ("tools", [*TOOLS,
                                                         f"binutils-{GNU_ARCH[arch]}-linux-gnu"])):
            debs = root / "debs" / arch / layer
            if not any(debs.glob("*.deb")):
                download(debs, names, arch)
            tree = ctx / f"{layer}-{arch}"
            shutil.rmtree(tree, ignore_errors=True)
            tree.mkdir(parents=True)
            for deb in sorted(debs.glob("*.deb")):
                subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "top").mkdir(exist_ok=True)
    (ctx / ".complete").write_text("")
    return ctx


def contexts(ctx: Path) -> list[str]:
    """The named build contexts of the realistic image (both sides get the same)."""
    return [f"--build-context={layer}-{arch}={ctx / f'{layer}-{arch}'}"
            for layer in ("base", "tools") for arch in ARCHES]


def describe(ctx: Path) -> str:
    files = elf = size = 0
    for arch in ARCHES[1:]:
        for dirpath, _, names in os.walk(ctx):
            if f"-{arch}" not in dirpath:
                continue
            for n in names:
                p = Path(dirpath, n)
                if p.is_symlink() or not p.is_file():
                    continue
                files += 1
                size += p.stat().st_size
                with p.open("rb") as f:
                    elf += f.read(4) == b"\x7fELF"
    return f"{files} files, {elf} ELF, {size / 1e6:.0f} MB uncompressed per platform"


def compressed_sizes(ref: str) -> dict[str, int]:
    """Bytes of compressed layers per platform of the image at ``ref``."""
    from polyarch.refs import parse_ref
    from polyarch.registry import RegistryClient

    r = parse_ref(ref)
    sizes = {}
    with RegistryClient() as client:
        for m in client.get_manifest(r).json.get("manifests", []):
            p = m.get("platform", {})
            if p.get("os") == "unknown":
                continue  # attestation manifests
            doc = client.get_manifest(r.untagged().with_digest(m["digest"])).json
            sizes[f"{p.get('os')}/{p.get('architecture')}"] = sum(
                int(x["size"]) for x in doc.get("layers", []))
    return sizes


#: Build steps only this benchmark's fixtures have: their cache records are pruned after
#: the cold runs and at the end (a --no-cache build of the realistic image leaves about
#: 1 GB per platform); nothing else in the builder's cache is touched.
OWN_STEPS = ("] COPY base-amd64/ /", "] COPY base-arm64/ /", "] COPY tools-amd64/ /",
             "] COPY tools-arm64/ /", "] COPY top/ /opt/bench/")


def _own_records() -> set[str]:
    pattern = "|".join(re.escape(x) for x in OWN_STEPS)
    du = subprocess.run(["docker", "buildx", "du", "--verbose"], check=True,
                        capture_output=True, text=True).stdout
    return {m.group(1) for m in re.finditer(
        r"^ID:\s+(\S+)\n(?:(?!ID:).*\n)*?Description:[^\n]*(?:" + pattern + ")", du, re.M)}


#: The fixture's records the builder held before this run (earlier runs', or in use by
#: images): left alone, so that a prune never waits on what it cannot remove.
_BEFORE: set[str] | None = None


def prune_own_cache() -> None:
    """Remove the records of the fixture's steps that this invocation made (one prune per
    record: buildx takes one ``id`` filter per prune; a second pass takes the parents
    freed by the first)."""
    global _BEFORE
    if _BEFORE is None:
        _BEFORE = _own_records()
        return
    for _ in range(2):
        ids = _own_records() - _BEFORE
        if not ids:
            return
        for i in sorted(ids):
            subprocess.run(["docker", "buildx", "prune", "-f", "--filter", f"id={i}"],
                           capture_output=True)
        _BEFORE |= ids & _own_records()  # what stays is in use: not tried again


def remove_images(prefix: str) -> None:
    """The images raw ``buildx build --push`` named in Docker's store (the docker driver
    keeps one per run, pinning its layers and build cache records): removed at the end."""
    names = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
                           capture_output=True, text=True, check=True).stdout.split()
    mine = [n for n in names if n.startswith(prefix)]
    for i in range(0, len(mine), 50):
        subprocess.run(["docker", "rmi", *mine[i:i + 50]], capture_output=True)


def _no_prune() -> None:
    pass


def touch_top(ctx: Path) -> None:
    """Change the top layer only."""
    (ctx / "top").mkdir(exist_ok=True)
    (ctx / "top" / "nonce").write_text(uuid.uuid4().hex + "\n")


# -- the cases -------------------------------------------------------------------------

@dataclass
class Row:
    case: str
    goal: float
    raw: list[Run] = field(default_factory=list)
    ours: list[Run] = field(default_factory=list)
    #: polyarch from the --baseline-src checkout (the fixed and warm cases)
    base: list[Run] = field(default_factory=list)

    def med(self, runs: list[Run]) -> float:
        return statistics.median(r.seconds for r in runs)


def alternate(row: Row, n: int, do_raw: object, do_ours: object, before: object = None,
              do_base: object = None) -> Row:
    sides = [("raw", row.raw, do_raw), ("baseline", row.base, do_base),
             ("polyarch", row.ours, do_ours)]
    sides = [x for x in sides if x[2] is not None]
    for i in range(n):
        for _name, side, fn in sides:
            if callable(before):
                before()
            side.append(fn(i))  # type: ignore[operator]
        print(f"  {row.case} {i + 1}/{n}: " + ", ".join(
            f"{name} {side[-1].seconds:.2f} s" for name, side, _ in sides),
            file=sys.stderr, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="runs of each side per case (5)")
    ap.add_argument("--cases", default="cold,warm,oci,fixed",
                    help="comma-separated subset of cold,warm,oci,fixed (all)")
    ap.add_argument("--registry", default="127.0.0.1:5000",
                    help="registry to push to; repositories are REGISTRY/bench/pipeline-*")
    ap.add_argument("--fixture-dir", type=Path,
                    default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                    / "polyarch-bench",
                    help="where the Debian packages and the context are kept (made once)")
    ap.add_argument("--json", type=Path, help="also write every run's figures here")
    ap.add_argument("--baseline-src", type=Path, default=None,
                    help="fixed and warm cases: also run polyarch from this other"
                         " checkout's src/ directory (e.g. the previous release), alternating"
                         " with this one")
    ap.add_argument("--no-prune", action="store_true",
                    help="leave the fixture's build cache records in the builder (on a"
                         " builder others use: a filtered prune of them could still evict"
                         " the cache of someone running this benchmark at the same time)")
    a = ap.parse_args()
    if a.no_prune:
        global prune_own_cache
        prune_own_cache = _no_prune
    cases = a.cases.split(",")
    rid = uuid.uuid4().hex[:6]
    repo = f"{a.registry}/bench/pipeline-{rid}"
    own_cache = "POLYARCH_CACHE_DIR" not in os.environ
    cache = tempfile.mkdtemp(prefix="polyarch-bench-cache-")
    if own_cache:
        os.environ["POLYARCH_CACHE_DIR"] = cache
    out = Path(tempfile.mkdtemp(prefix="polyarch-bench-out-"))
    compile_sources(None)
    prune_own_cache()  # the first call notes what the builder holds already
    if a.baseline_src is not None:
        compile_sources(a.baseline_src)
    rows: list[Row] = []
    breakdown: dict[str, dict[str, tuple[float, float]]] = {}
    load_before = os.getloadavg()
    slow: list[tuple[float, str]] = []
    image_bytes = 0
    try:
        if set(cases) & {"cold", "warm", "oci"}:
            ctx = fixture(a.fixture_dir)
            print(f"fixture {ctx}: {describe(ctx)}", file=sys.stderr, flush=True)
            named = contexts(ctx)
            touch_top(ctx)
        if "cold" in cases:
            def cold_ours(i: int) -> Run:
                r = polyarch(["publish", "--no-cache", *named, "-t", f"{repo}-cold-p{i}:v",
                              str(ctx)])
                prune_own_cache()
                return r

            rows.append(alternate(
                Row("cold publish (--no-cache, new repository)", 1.10), a.runs,
                lambda i: raw(["--no-cache", "--push", *named, "-t", f"{repo}-cold-r{i}:v",
                               str(ctx)]),
                cold_ours))
        if set(cases) & {"warm", "oci"}:
            # Warm-up: the build cache holds the lower layers for both sides, the warm
            # repository holds their blobs.
            raw(["-t", f"{repo}-warm:warmup-r", "--push", *named, str(ctx)])
            polyarch(["publish", *named, "-t", f"{repo}-warm:warmup-p", str(ctx)])
            if a.baseline_src is not None and "warm" in cases:
                polyarch(["publish", *named, "-t", f"{repo}-warm:warmup-b", str(ctx)],
                         src=a.baseline_src)
            sizes = compressed_sizes(f"{repo}-warm:warmup-p")
            print("compressed layers: " + ", ".join(f"{k} {v / 1e6:.0f} MB"
                                                   for k, v in sizes.items()), file=sys.stderr)
            image_bytes = sum(sizes.values())
        if "warm" in cases:
            rows.append(alternate(
                Row("warm publish (top layer changed)", 1.05), a.runs,
                lambda i: raw(["--push", *named, "-t", f"{repo}-warm:r{i}", str(ctx)]),
                lambda i: polyarch(["publish", *named, "-t", f"{repo}-warm:p{i}", str(ctx)]),
                before=lambda: touch_top(ctx),
                do_base=None if a.baseline_src is None else lambda i: polyarch(
                    ["publish", *named, "-t", f"{repo}-warm:b{i}", str(ctx)],
                    src=a.baseline_src)))
        if "oci" in cases:
            def oci_raw(i: int) -> Run:
                r = raw(["-o", f"type=oci,dest={out / 'raw.tar'}", *named, str(ctx)])
                (out / "raw.tar").unlink()
                return r

            def oci_ours(i: int) -> Run:
                r = polyarch(["build", "-o", f"oci:{out / 'ours.tar'}", *named, str(ctx)])
                (out / "ours.tar").unlink()
                return r

            rows.append(alternate(Row("build -o oci:PATH.tar (top layer changed)", 1.10),
                                  a.runs, oci_raw, oci_ours, before=lambda: touch_top(ctx)))
        if "fixed" in cases:
            tiny = out / "tiny"
            subprocess.run([str(ROOT / "scripts/make-rootfs"), str(tiny)], check=True)
            (tiny / "Dockerfile").write_text(TINY_DOCKERFILE)
            touch_top(tiny)
            raw(["-t", f"{repo}-tiny:warmup-r", "--push", str(tiny)])
            polyarch(["publish", "-t", f"{repo}-tiny:warmup-p", str(tiny)])
            base = a.baseline_src
            if base is not None:
                polyarch(["publish", "-t", f"{repo}-tiny:warmup-b", str(tiny)], src=base)
            row = alternate(
                Row("tiny publish (top layer changed)", 0.0), max(a.runs, 5),
                lambda i: raw(["--push", "-t", f"{repo}-tiny:r{i}", str(tiny)]),
                lambda i: polyarch(["publish", "-t", f"{repo}-tiny:p{i}", str(tiny)]),
                before=lambda: touch_top(tiny),
                do_base=None if base is None else lambda i: polyarch(
                    ["publish", "-t", f"{repo}-tiny:b{i}", str(tiny)], src=base))
            rows.append(row)
            breakdown = fixed_cost(row, max(a.runs, 5), base)
            slow = slowest_imports(tiny, repo)
        report(rows, breakdown, slow, image_bytes, a, (load_before, os.getloadavg()))
        if a.json:
            a.json.write_text(json.dumps({
                "rows": [{"case": r.case, "raw": [x.__dict__ for x in r.raw],
                          "polyarch": [x.__dict__ for x in r.ours],
                          "baseline": [x.__dict__ for x in r.base]} for r in rows],
                "fixed": breakdown, "load": [load_before, os.getloadavg()]}, indent=1))
    finally:
        if not a.no_prune:
            print("pruning the fixture's build cache records ...", file=sys.stderr, flush=True)
        prune_own_cache()
        remove_images(repo)
        shutil.rmtree(out, ignore_errors=True)
        if own_cache:
            shutil.rmtree(cache, ignore_errors=True)


STEP_NAMES = ("preflight", "build", "verify", "push", "tag")


def fixed_cost(row: Row, n: int, base: Path | None) -> dict[str, dict[str, tuple[float, float]]]:
    """Where the time of a tiny publish goes, beyond the engine's build: per side
    (polyarch, and the --baseline-src checkout), each part's median (wall s, CPU s)."""
    starts = [run([sys.executable, "-c", "pass"]) for _ in range(n)]
    start = (statistics.median(r.seconds for r in starts), statistics.median(r.cpu for r in starts))
    out = {}
    for side, runs, src in (("baseline", row.base, base), ("polyarch", row.ours, None)):
        if not runs:
            continue
        # What a publish imported, in a process of its own, in the same order (part of
        # it may overlap the engine look-ups started early).
        mods = runs[-1].steps.get("modules", [])
        stmt = (f"import importlib\nfor m in {mods!r}:\n try: importlib.import_module(m)\n"
                " except Exception: pass")
        env = {**os.environ, **({"PYTHONPATH": str(src.resolve())} if src else {})}
        imported = [run([sys.executable, "-c", stmt], env) for _ in range(n)]
        med = {"imports": (statistics.median(r.seconds for r in imported) - start[0],
                           statistics.median(r.cpu for r in imported) - start[1]),
               **{k: (statistics.median(x.steps.get(k, 0.0) for x in runs),
                      statistics.median(x.steps.get("cpu:" + k, 0.0) for x in runs))
                  for k in STEP_NAMES}}
        wall = row.med(runs)
        cpu = statistics.median(r.cpu for r in runs)
        raw_cpu = statistics.median(r.cpu for r in row.raw)
        out[side] = {
            "interpreter start (python -c pass)": start,
            **{k: v for k, v in med.items() if k != "build"},
            "other (CLI, options, session, exit)": (
                wall - start[0] - sum(v[0] for v in med.values()),
                cpu - start[1] - sum(v[1] for v in med.values())),
            "= beyond the build step": (wall - med["build"][0], cpu - med["build"][1]),
            "polyarch - raw buildx --push": (wall - row.med(row.raw), cpu - raw_cpu),
            "(build step, for reference)": med["build"],
            "(whole run, for reference)": (wall, cpu),
        }
    return out


def slowest_imports(tiny: Path, repo: str, top: int = 8) -> list[tuple[float, str]]:
    """The modules whose import (with what they import) takes longest in a publish,
    from -X importtime (which slows imports down somewhat)."""
    touch_top(tiny)
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "polyarch", "publish", "-t",
                        f"{repo}-tiny:importtime", str(tiny)], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(r.stderr[-3000:])
    found = []
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)$", line)
        if m and len(m.group(2)) <= 2:  # imported by __main__ or by one level below
            found.append((int(m.group(1)) / 1e6, m.group(2) + m.group(3)))
    return sorted(found, reverse=True)[:top]


def spread(xs: list[float]) -> str:
    return f"{min(xs):.2f}-{max(xs):.2f}"


#: More build context than this received by the builder: it had lost the context of
#: the earlier runs (its cache collector removed it) and took all of it again.
RESENT = 50e6


def resent(r: Row) -> None:
    """How many runs of each side had the builder take the whole context again, and the
    comparison of like with like: the runs where the builder still held it.

    The engine's build cache collector runs on its own schedule (at most once a minute
    after builds, in dockerd's BuildKit) and may remove a large context's copy between
    any two runs; the next build, of either side, then sends all of it. Which side pays
    is an accident of timing, so medians over all runs compare luck as much as tools."""
    sides = [("raw", r.raw), ("polyarch", r.ours)]
    if not all(x.steps.get("context_bytes") is not None for _, runs in sides for x in runs):
        return
    kept = {name: [x.seconds for x in runs if x.steps["context_bytes"] <= RESENT]
            for name, runs in sides}
    print("    context sent again (> 50 MB): " + ", ".join(
        f"{name} in {len(runs) - len(kept[name])} of {len(runs)} runs" for name, runs in sides)
        + (f"; runs where the builder kept it: raw {statistics.median(kept['raw']):.2f},"
           f" polyarch {statistics.median(kept['polyarch']):.2f} s (ratio"
           f" {statistics.median(kept['polyarch']) / statistics.median(kept['raw']):.2f})"
           if all(kept.values()) else ""))


def report(rows: list[Row], breakdown: dict[str, dict[str, tuple[float, float]]],
           slow: list[tuple[float, str]], image_bytes: int, a: argparse.Namespace,
           load: tuple[tuple[float, ...], tuple[float, ...]]) -> None:
    print(f"\nmedians of {a.runs} runs each, alternating; platforms {PLATFORMS}; "
          f"{os.cpu_count()} CPUs; load average {load[0][0]:.2f} at the start,"
          f" {load[1][0]:.2f} at the end" + (
              f"; realistic image {image_bytes / 1e6:.0f} MB compressed (both platforms)"
              if image_bytes else "") + "\n")
    print(f"{'case':<44} {'raw s':>7} {'polyarch s':>10} {'ratio':>6} {'goal':>6}"
          f" {'RSS MiB':>8} {'tree MiB':>8}")
    for r in rows:
        mr, mo = r.med(r.raw), r.med(r.ours)
        rss = max(x.steps.get("self_maxrss_kib", 0) for x in r.ours) / 1024
        tree = max(x.tree_maxrss_kib for x in r.ours) / 1024
        goal = f"{r.goal:.2f}" if r.goal else "-"
        print(f"{r.case:<44} {mr:7.2f} {mo:10.2f} {mo / mr:6.2f} {goal:>6} {rss:8.0f}"
              f" {tree:8.0f}")
        sides = [("raw", r.raw), ("baseline", r.base), ("polyarch", r.ours)]
        if r.base:
            mb = r.med(r.base)
            print(f"    baseline (--baseline-src): median {mb:.2f} s, ratio {mb / mr:.2f};"
                  f" this checkout {mo:.2f} s, ratio {mo / mr:.2f}")
        print("    min-max wall s: " + ", ".join(
            f"{name} {spread([x.seconds for x in runs])}" for name, runs in sides if runs)
            + "; CPU s (median): " + ", ".join(
            f"{name} {statistics.median(x.cpu for x in runs):.2f}" for name, runs in sides
            if runs))
        resent(r)
        steps = {k: statistics.median(x.steps.get(k, 0.0) for x in r.ours)
                 for k in ("preflight", "build", "verify", "output", "push", "tag")}
        line = "polyarch steps: " + ", ".join(f"{k} {v:.2f}" for k, v in steps.items() if v)
        ahead = statistics.median(x.steps.get("ahead", 0.0) for x in r.ours)
        if ahead:
            line += f" (within the build: platforms judged while buildx finished {ahead:.2f})"
        if image_bytes and steps["verify"] and not r.case.startswith("tiny"):
            line += f" (verify: {image_bytes / 1e6 / steps['verify']:.0f} MB/s compressed)"
        print(" " * 4 + line)
    print("RSS: peak of the polyarch process (goal <= 100 MiB); tree: with the docker CLI"
          " processes it ran (max over runs); CPU: user + system of the process and the"
          " processes it waited for")
    if breakdown:
        names = list(breakdown)
        print("\nfixed cost of a tiny publish (medians; goal <= 0.3 s beyond the build):")
        print(f"  {'':<44}" + "".join(f" {n + ' wall s':>17} {'CPU s':>6}" for n in names))
        for k in breakdown[names[-1]]:
            print(f"  {k:<44}" + "".join(
                f" {breakdown[n][k][0]:17.3f} {breakdown[n][k][1]:6.3f}" for n in names))
        for name, runs in (("baseline", rows[-1].base), ("polyarch", rows[-1].ours)):
            if not runs:
                continue
            cmds = runs[-1].steps.get("commands", {})
            http = runs[-1].steps.get("http", {})
            print(f"{name}: commands run (count, wall s): " + ", ".join(
                f"{k} x{c} {w:.2f}" for k, (c, w) in sorted(cmds.items()))
                + "; HTTP requests: " + ", ".join(f"{k} {v}" for k, v in sorted(http.items())))
        print("slowest imports (-X importtime, cumulative s):")
        for t, name in slow:
            print(f"  {name:<44} {t:7.3f}")


if __name__ == "__main__":
    main()
