"""`polyarch lint --fix` rewrites proved with the real engine: the same Dockerfile is
built for linux/amd64 and linux/arm64 before and after the rewrite, each variant is
checked (the files each platform should get, the right ELF machine), and the rewrite
must leave every variant's output the same while its moved stage runs natively.

The builds are small (the examples' node base, a package of a few files) and use
--no-cache so the timings compare like with like; they are printed, not asserted
(benchmarks/ measures speed).
"""

from __future__ import annotations

import difflib
import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import REGISTRY, unpack_busybox

from polyarch.cli import run

ROOT = Path(__file__).resolve().parents[2]
PLATFORMS = "linux/amd64,linux/arm64"
ELF_MACHINE = {"amd64": 0x3E, "arm64": 0xB7}


@pytest.fixture(scope="module")
def node_base(base_images: dict[str, str]) -> str:
    """The examples' Node base image on the test registry (scripts/make-base)."""
    return base_images["node"]


def build(ctx: Path, out: Path) -> float:
    """Build both platforms with no cache into ``out/<os>_<arch>/``; the seconds taken."""
    if out.exists():
        shutil.rmtree(out)
    t0 = time.monotonic()
    r = subprocess.run(["docker", "buildx", "build", "--no-cache", "--platform", PLATFORMS,
                        "--output", f"type=local,dest={out}", str(ctx)],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-4000:]
    return time.monotonic() - t0


def elf_machine(path: Path) -> int:
    head = path.read_bytes()[:20]
    assert head[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return int.from_bytes(head[18:20], "little")


def fix_in_place(dockerfile: Path, capsys: pytest.CaptureFixture[str]) -> str:
    before = dockerfile.read_text()
    capsys.readouterr()
    assert run(["lint", "--fix", "--write", str(dockerfile)]) == 0
    diff = capsys.readouterr().out
    assert dockerfile.read_text() != before, diff
    return diff


# -- assets: a stage whose only output is an npm pack tarball ---------------------

PACK = """\
FROM {node} AS builder
WORKDIR /build
COPY cli/ ./cli/
RUN mkdir -p /build/dist && cd cli && npm pack --pack-destination /build/dist \
    && node -p process.arch > /build/dist/packed-on
FROM {node} AS runtime
COPY --from=builder /build/dist/ /tmp/dist/
RUN npm install -g --offline --no-audit --no-fund /tmp/dist/*.tgz && sandbox-cli
FROM scratch
COPY --from=builder /build/dist/packed-on /packed-on
COPY --from=runtime /usr/lib/node_modules/sandbox-cli/ /cli/
COPY --from=runtime /bin/true /runtime-true
"""


def _cli_package(ctx: Path) -> None:
    cli = ctx / "cli"
    (cli / "bin").mkdir(parents=True)
    (cli / "package.json").write_text(json.dumps({
        "name": "sandbox-cli", "version": "1.0.0", "bin": {"sandbox-cli": "bin/cli.js"},
        "files": ["bin"]}))
    (cli / "bin" / "cli.js").write_text("#!/usr/bin/env node\nconsole.log('sandbox-cli 1.0.0')\n")


def test_fix_moves_an_npm_pack_stage_to_the_build_platform(
        node_base: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    _cli_package(ctx)
    df = ctx / "Dockerfile"
    df.write_text(PACK.format(node=node_base))
    t_before = build(ctx, tmp_path / "before")
    diff = fix_in_place(df, capsys)
    assert f"+FROM --platform=$BUILDPLATFORM {node_base} AS builder" in diff
    assert df.read_text().count("--platform") == 1  # only the builder moved
    t_after = build(ctx, tmp_path / "after")
    for arch in ("amd64", "arm64"):
        b, a = tmp_path / "before" / f"linux_{arch}", tmp_path / "after" / f"linux_{arch}"
        # The runtime stage still runs on each target: right machine.
        assert elf_machine(b / "runtime-true") == elf_machine(a / "runtime-true") \
            == ELF_MACHINE[arch]
        # The package installed is the same, byte for byte.
        for f in ("package.json", "bin/cli.js"):
            assert (b / "cli" / f).read_bytes() == (a / "cli" / f).read_bytes()
        # Before, arm64's pack ran under emulation; after, natively on the build machine.
        # (Node's process.arch: `uname -m` in the stage would make --fix refuse it.)
        assert (b / "packed-on").read_text().strip() == {"amd64": "x64", "arm64": "arm64"}[arch]
        assert (a / "packed-on").read_text().strip() == {"x86_64": "x64", "aarch64": "arm64"}[
            os.uname().machine]
    print(f"\nnpm pack stage: before {t_before:.1f}s, after {t_after:.1f}s")


# -- npm-target: npm install --ignore-scripts on the build platform ----------------


def _npm_tarball(dest: Path, name: str, cpu: str, binary: Path) -> None:
    """An npm package tarball (package/ prefix) with os/cpu fields and a real ELF file."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        meta = json.dumps({"name": name, "version": "1.0.0", "os": ["linux"],
                           "cpu": [cpu]}).encode()
        for arcname, data in (("package/package.json", meta),
                              ("package/bin/tool", binary.read_bytes())):
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    dest.write_bytes(gzip.compress(buf.getvalue()))


DEPS = """\
FROM {node} AS deps
WORKDIR /app
COPY pkgs/ /pkgs/
COPY app/package.json ./
RUN npm install --ignore-scripts --offline --no-audit --no-fund
FROM scratch
COPY --from=deps /app/node_modules /app/node_modules
"""


def test_fix_installs_node_modules_on_the_build_platform_for_the_target(
        node_base: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "pkgs").mkdir(parents=True)
    (ctx / "app").mkdir()
    deps = {}
    for arch, cpu in (("amd64", "x64"), ("arm64", "arm64")):
        root = tmp_path / f"rootfs-{arch}"
        unpack_busybox(arch, root)
        _npm_tarball(ctx / "pkgs" / f"tool-linux-{cpu}-1.0.0.tgz", f"tool-linux-{cpu}",
                     cpu, root / "bin" / "busybox")
        deps[f"tool-linux-{cpu}"] = f"file:../pkgs/tool-linux-{cpu}-1.0.0.tgz"
    (ctx / "app" / "package.json").write_text(json.dumps(
        {"name": "app", "version": "1.0.0", "optionalDependencies": deps}))
    df = ctx / "Dockerfile"
    df.write_text(DEPS.format(node=node_base))
    t_before = build(ctx, tmp_path / "before")
    diff = fix_in_place(df, capsys)
    assert "--os=$TARGETOS --cpu=" in diff and "--libc=glibc" in diff
    assert "+ARG TARGETOS TARGETARCH" in diff
    t_after = build(ctx, tmp_path / "after")
    for arch, cpu, other in (("amd64", "x64", "arm64"), ("arm64", "arm64", "x64")):
        for when in ("before", "after"):
            nm = tmp_path / when / f"linux_{arch}" / "app" / "node_modules"
            assert sorted(p.name for p in nm.iterdir() if not p.name.startswith(".")) == [
                f"tool-linux-{cpu}"], (when, arch)
            assert elf_machine(nm / f"tool-linux-{cpu}" / "bin" / "tool") == ELF_MACHINE[arch]
            assert not (nm / f"tool-linux-{other}").exists()
    print(f"\nnpm install stage: before {t_before:.1f}s, after {t_after:.1f}s")


# -- the rewrites --fix makes on real Dockerfiles, reduced (tests/data/lint_fix) -------
#
# Each case is linted, fixed with --fix --write, and the fixed file built for both
# platforms with `polyarch build`, which verifies every variant (each binary's ELF
# machine, the config's platform). Where the original file was wrong (the image pinned
# or on $BUILDPLATFORM), the original is built too and must fail verification. The
# base images the files name are given with --build-context: nothing is pulled from a
# public registry. Provenance is off: buildx 0.13 fails ("not found") after exporting
# when provenance meets a docker-image:// named context.

CASES = ROOT / "tests" / "data" / "lint_fix"
#: Debian's Go toolchain packages made into an image (tag bumped when the recipe changes).
GO_BASE = f"{REGISTRY}/polyarch/golang-deb:1.19-1"
GO_IMAGE_DOCKERFILE = """\
# Debian's golang-1.19-go (per architecture) and golang-1.19-src on the Debian base.
ARG BASE
FROM ${BASE}
ARG TARGETARCH
ADD go-src.tar /
ADD go-${TARGETARCH}.tar /
ENV PATH=/usr/lib/go-1.19/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    GOPATH=/go GOFLAGS=-mod=mod
WORKDIR /go
"""


def _registry_has(ref: str) -> bool:
    repo, _, tag = ref.split("/", 1)[1].rpartition(":")
    r = subprocess.run(
        ["curl", "-fsS", "-m", "10", "-o", "/dev/null", "-H",
         "Accept: application/vnd.oci.image.index.v1+json, "
         "application/vnd.docker.distribution.manifest.list.v2+json",
         f"http://{REGISTRY}/v2/{repo}/manifests/{tag}"], capture_output=True, timeout=30)
    return r.returncode == 0


@pytest.fixture(scope="module")
def bases(node_base: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Image name as the case files write it -> docker-image:// reference to use."""
    from realpkgs import deb

    debian = node_base.replace("/node:", "/debian:")  # scripts/make-base makes both
    if not _registry_has(GO_BASE):
        ctx = tmp_path_factory.mktemp("go-image")
        for arch in ("amd64", "arm64"):
            with (ctx / f"go-{arch}.tar").open("wb") as f:
                subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb("golang-1.19-go", arch))],
                               stdout=f, check=True, timeout=300)
        with (ctx / "go-src.tar").open("wb") as f:
            subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb("golang-1.19-src", "all"))],
                           stdout=f, check=True, timeout=300)
        (ctx / "Dockerfile").write_text(GO_IMAGE_DOCKERFILE)
        r = subprocess.run(["docker", "buildx", "build", "--platform", PLATFORMS,
                            "--provenance=false", "--build-arg", f"BASE={debian}",
                            "--output", f"type=registry,name={GO_BASE}", str(ctx)],
                           capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, r.stderr[-3000:]
    go = f"docker-image://{GO_BASE}"
    return {"golang:1.26-alpine3.23": go, "golang:1.17.1": go, "golang:1.18.3-buster": go,
            "golang:1.20": go, **{name: f"docker-image://{debian}" for name in (
                "alpine:3.23", "alpine:3.14.0", "alpine:latest", "nginx:alpine")}}


def polyarch_build(ctx: Path, dockerfile: Path, bases: dict[str, str]) -> tuple[int, dict[str, Any]]:
    from cli_helpers import polyarch

    args = ["build", str(ctx), "-f", str(dockerfile), "--platform", PLATFORMS,
            "--no-provenance", "--json"]
    for name, ref in bases.items():
        args += ["--build-context", f"{name}={ref}"]
    r = polyarch(*args, timeout=1800)
    assert r.code in (0, 5), r.err[-3000:]
    return r.code, r.json()


def _changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def _fixed(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Copy the case, run --fix --write on it, check it makes Dockerfile.fixed."""
    ctx = tmp_path / case
    shutil.copytree(CASES / case, ctx)
    (ctx / "Dockerfile.fixed").unlink()
    fixed = ctx / "Dockerfile"
    fix_in_place(fixed, capsys)
    assert fixed.read_text() == (CASES / case / "Dockerfile.fixed").read_text()
    return ctx


def _verified(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["platform"]: p for p in result["verification"]["platforms"]}


# (case, lines the fix removes, lines it adds, original fails verification)
BUILT = [
    ("buildx-docsgen",
     ["FROM golang:${GO_VERSION}-alpine${ALPINE_VERSION} AS docsgen",
      "  go build -o /out/docsgen ./docs/generate.go"],
     ["FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine${ALPINE_VERSION} AS docsgen",
      "ARG TARGETOS TARGETARCH",
      "  GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/docsgen ./docs/generate.go"],
     False),
    ("deadsfu-target-args",
     ["FROM golang:1.17.1 as builder"], ["FROM --platform=$BUILDPLATFORM golang:1.17.1 as builder"],
     False),
    ("invicta-image-on-buildplatform",
     ["FROM --platform=$BUILDPLATFORM  golang:1.18.3-buster"], ["FROM golang:1.18.3-buster"], True),
    ("pupleprn-pinned-static-site",
     ["FROM --platform=linux/amd64 nginx:alpine"], ["FROM nginx:alpine"], True),
    ("webhook-pinned-builder-and-image",
     ["FROM --platform=linux/x86_64 golang:1.20 AS builder",
      "RUN CGO_ENABLED=0 GOOS=linux go build main.go",
      "FROM --platform=linux/x86_64 alpine:latest"],
     ["FROM --platform=$BUILDPLATFORM golang:1.20 AS builder", "ARG TARGETARCH",
      "RUN CGO_ENABLED=0 GOOS=linux GOARCH=$TARGETARCH go build main.go", "FROM alpine:latest"],
     True),
]


@pytest.mark.parametrize(("case", "removed", "added", "original_wrong"), BUILT,
                         ids=[c[0] for c in BUILT])
def test_fix_of_a_real_pattern_builds_and_verifies_for_both_platforms(
        case: str, removed: list[str], added: list[str], original_wrong: bool,
        bases: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = (CASES / case / "Dockerfile").read_text()
    before = lint(original)
    ctx = _fixed(case, tmp_path, capsys)
    after_text = (ctx / "Dockerfile").read_text()
    # The fix changes exactly these lines; everything else is byte for byte the same.
    assert _changed_lines(original, after_text) == (removed, added)
    # What it fixes is gone: the image on the wrong platform (PA002) or the emulated Go
    # build (PA003); no new error. (Moving the image onto the target makes its own
    # `go build` run per target: invicta trades PA002 for a PA003 warning.)
    after = lint(after_text)
    gone = "PA003" if "go-cross" in fix_kinds(original) else "PA002"
    assert gone in before and gone not in after, (before, after)
    assert {r for r, s in after.items() if s == "error"} <= \
        {r for r, s in before.items() if s == "error"}
    code, result = polyarch_build(ctx, ctx / "Dockerfile", bases)
    per = _verified(result)
    assert code == 0 and result["verification"]["ok"], per
    for plat in ("linux/amd64", "linux/arm64"):
        assert per[plat]["ok"] and per[plat]["checks"]["binaries"] == "pass", per[plat]
        assert per[plat]["config_platform"] == plat
    if original_wrong:
        (ctx / "Dockerfile.original").write_text(original)
        code, result = polyarch_build(ctx, ctx / "Dockerfile.original", bases)
        per = _verified(result)
        assert code == 5 and not result["verification"]["ok"]
        assert per["linux/amd64"]["ok"]  # the pinned/build platform's own variant was right
        assert not per["linux/arm64"]["ok"] and per["linux/arm64"]["checks"]["binaries"] == "fail"


def lint(text: str) -> dict[str, str]:
    """Rule -> worst severity (error or warning) for the file (offline, both platforms)."""
    from polyarch.lint import lint as run_lint

    out: dict[str, str] = {}
    for f in run_lint(text):
        if f.severity == "error" or (f.severity == "warning" and f.rule not in out):
            out[f.rule] = f.severity
    return out


def fix_kinds(text: str) -> list[str]:
    from polyarch.lint import fix, parse
    from polyarch.lint.context import LintContext
    from polyarch.platforms import parse_platforms

    return [f.kind for f in fix.rewrites(LintContext(parse(text), "Dockerfile",
                                                     parse_platforms(PLATFORMS)))]
