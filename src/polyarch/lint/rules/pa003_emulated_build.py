"""PA003 emulated-build (warning): compile or install work in a stage that runs on each
target platform, so under QEMU wherever the build machine is another architecture,
when that work could run natively. Slow, never wrong: a warning.

Go, Rust and C cross-compile; npm/yarn/pnpm work is reported only where what leaves the
stage is provably the same for every architecture (``dist/``, bundles, ``*.tgz`` from
``npm pack``), never where ``node_modules`` ship in the image. ``polyarch lint --fix``
rewrites the safe cases.
"""

from __future__ import annotations

import re

from polyarch.lint.context import LintContext
from polyarch.lint.model import Severity, Stage
from polyarch.lint.rules.common import (
    ASSET_PATH,
    DEP_PATH,
    Heavy,
    heavy_ops,
    output_paths,
    stage_text,
    workdirs,
)

_CGO = re.compile(r"CGO_ENABLED\s*=\s*['\"]?1|\b(?:gcc|musl-dev|build-base|build-essential)\b")
WHY = {
    "go": ("Go cross-compiles without emulation: safe to move",
           "FROM --platform=$BUILDPLATFORM golang...; ARG TARGETOS TARGETARCH; RUN "
           "CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build ... (polyarch lint --fix)"),
    "cargo": ("Rust cross-compiles with --target and a cross linker: safe to move once the "
              "linker is set up",
              "FROM --platform=$BUILDPLATFORM rust...; COPY --from=tonistiigi/xx / /; ARG "
              "TARGETPLATFORM; RUN xx-cargo build --release (or cargo build --target <triple> "
              "with a cross linker)"),
    "c": ("C/C++ cross-compiles with a cross toolchain: safe to move once CC/--host (or a "
          "CMake toolchain file) name the target",
          "FROM --platform=$BUILDPLATFORM ...; install a cross compiler (tonistiigi/xx: "
          "xx-clang, or gcc-aarch64-linux-gnu) and pass --host=/CC= for $TARGETPLATFORM"),
    "make": ("what `make` builds is not visible here; compilers (Go, C, Rust) it runs "
             "cross-compile, so it can run natively once the Makefile is given the target",
             "FROM --platform=$BUILDPLATFORM ...; ARG TARGETOS TARGETARCH; pass them to make "
             "(`make GOOS=$TARGETOS GOARCH=$TARGETARCH`, or CC=/--host= for C)"),
    "java": ("Java bytecode is the same for every architecture, so it can run natively: safe "
             "to move",
             "FROM --platform=$BUILDPLATFORM for the build stage (maven/gradle image); copy the "
             "jar into the runtime stage"),
    "npm": ("only architecture-independent files leave this stage, so it can run natively: "
            "safe to move",
            "FROM --platform=$BUILDPLATFORM node... for this stage (polyarch lint --fix); keep "
            "installs whose node_modules ship in the image on the target platform"),
    "pip": ("Python C extensions cannot practically be cross-compiled, so moving the stage is "
            "not safe",
            "install binary wheels (drop --no-binary / sdist URLs) so nothing compiles, or "
            "build the wheels on native runners and COPY them in"),
}


def assets_only(ctx: LintContext, st: Stage) -> list[str] | None:
    """The paths taken out of ``st`` when every one is architecture-independent output
    (and something is taken), else ``None``."""
    outs = output_paths(ctx, st)
    if not outs or any(not paths for _, _, paths in outs):
        return None
    wd = workdirs(ctx, st)
    srcs = sorted({p for _, _, paths in outs for p in paths})
    for s in srcs:
        norm = s.rstrip("/") or "/"
        if DEP_PATH.search(s) or norm in wd or norm in ("/", ".", "/*"):
            return None
        # Judge the path below the WORKDIR: WORKDIR /build is no build output.
        for w in sorted(wd, key=len, reverse=True):
            if w != "/" and norm.startswith(w + "/"):
                norm = norm[len(w) + 1:]
                break
        if not ASSET_PATH.search(norm):
            return None
    return srcs


def check(ctx: LintContext) -> None:
    if not ctx.multi_arch:
        return
    for st in ctx.reachable_stages():
        reached = ctx.reached(st.index)
        # Emulated per target: a target stage, or one pinned to the platform that selects it
        # (FROM base-${TARGETARCH} with base-arm64 pinned to linux/arm64). A stage pinned to
        # one platform for every target runs as that platform whatever the target: PA002.
        selected = all(v.kind == "fixed" and v.runs_on is not None
                       and v.runs_on.architecture == g.platform.architecture for g, v in reached)
        if not selected and not any(v.kind == "target" for _, v in reached):
            continue
        ops = heavy_ops(st)
        if not ops:
            continue
        kinds: dict[str, Heavy] = {}
        for op in ops:
            kinds.setdefault("c" if op.kind == "make" else op.kind, op)
        final = ctx.in_final_lineage(st.index)
        text = stage_text(ctx, st)
        pinned = next((v.pinned for _, v in reached if v.pinned), None)
        for kind, op in kinds.items():
            kind = op.kind
            why, fix = WHY[kind]
            severity: Severity = "warning"
            if kind in ("npm", "java"):
                if final:
                    continue  # node_modules ship in the image: they must be built there.
                srcs = assets_only(ctx, st)
                if srcs is None:
                    continue
                why = (f"only {', '.join(srcs)} leave{'s' if len(srcs) == 1 else ''} this stage "
                       + ("(no node_modules), " if kind == "npm" else "")
                       + "so it can run natively: safe to move")
            elif final and kind in ("c", "make", "cargo"):
                # The image stage itself: moving it to $BUILDPLATFORM would give every
                # variant the build machine's base; only a new builder stage helps, and C
                # and Rust built there need the target's libraries and a cross linker.
                severity = "info"
                why = ("this is the stage the image is built from, so it cannot simply move to "
                       "$BUILDPLATFORM; a separate builder stage on $BUILDPLATFORM that "
                       "cross-compiles (with the target's libraries) would run natively")
            if kind == "go" and _CGO.search(text):
                why = ("Go cross-compiles, but this stage uses cgo: moving is safe only with a C "
                       "cross toolchain (tonistiigi/xx: xx-go, xx-clang)")
            where = f" (pinned to {pinned})" if pinned else ""
            ctx.add("PA003", severity, op.line,
                    f"stage {st.label}{where} runs `{op.what[:40]}` under emulation for every "
                    f"non-native platform (QEMU, often 5-20x slower); {why}", fix, st)
