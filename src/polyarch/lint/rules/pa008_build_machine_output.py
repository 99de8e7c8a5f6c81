"""PA008 build-machine-output: a stage that runs on the build machine
(``--platform=$BUILDPLATFORM``) or is pinned to another platform builds binaries with no
target named, and a stage that runs for the target copies what it builds.

"Target named" is decided by what values are, never by their spelling: GOARCH set from
TARGETARCH (or a variable assigned from it, or ``xx-info``), ``xx-`` tools, a TARGET*
ARG that make or a script receives in its environment. ``GOARCH=$ARCH`` with a plain
``ARG ARCH`` names nothing.

Error: the image for ``linux/arm64`` carries an x86-64 binary when built on an x86-64
machine (and is right only by luck on the other). The same holds for ``node_modules``
with native modules (error) and Python packages (warning: platform wheels) installed
there and copied into the image.
"""

from __future__ import annotations

import re

from polyarch.lint.arch import RUNTIME_DETECT, assignments
from polyarch.lint.context import LintContext
from polyarch.lint.graph import PlatformGraph, StageView
from polyarch.lint.model import Stage
from polyarch.lint.rules.common import (
    DEP_PATH,
    heavy_ops,
    lineage_texts,
    native_npm,
    output_paths,
    stage_text,
    target_aware,
    target_source,
    workdirs,
)
from polyarch.lint.rules.pa003_emulated_build import WHY

CROSS = {
    "cargo": re.compile(r"CARGO_BUILD_TARGET|\bxx-cargo\b|\bcross\s+build"),
    "c": re.compile(r"\bCC\s*=|--host[= ]|CROSS_COMPILE|CMAKE_TOOLCHAIN_FILE|"
                    r"CMAKE_SYSTEM_PROCESSOR|\bxx-(?:clang|gcc|cc)|-linux-gnu\w*-g(?:cc|\+\+)|"
                    r"--target[= ]|-target\s"),
    "npm": re.compile(r"--cpu[= ]|--arch[= ]|npm_config_arch|--target_arch|--os[= ]"),
    "pip": re.compile(r"--platform[= ]"),
}
_LITERAL_ARCH = re.compile(r"['\"]?[A-Za-z0-9_]+['\"]?$")


def _names_target(ctx: LintContext, st: Stage, kind: str, text: str) -> bool:
    """Whether the stage tells ``kind``'s toolchain which architecture to build for:
    GOARCH (or cargo's --target) set from a value that follows the target (or written
    literally: PA001's concern), an ``xx-`` tool, or for make, C and scripts, a TARGET*
    ARG their environment receives."""
    target = target_source(ctx, st)
    if kind == "go":
        if re.search(r"\bxx-go\b", text):
            return True
        return any(name == "GOARCH" and (target.search(value) or _LITERAL_ARCH.match(value))
                   for t in lineage_texts(ctx, st) for name, value, _ in assignments(t))
    if kind == "cargo":
        if CROSS["cargo"].search(text):
            return True
        for m in re.finditer(r"--target[= ]+(\S+)", text):
            if "$" not in m.group(1) or target.search(m.group(1)):
                return True
        return False
    if kind in ("c", "make", "go-run"):
        return CROSS["c"].search(text) is not None or target_aware(ctx, st)
    return CROSS[kind].search(text) is not None


def _for_target(g: PlatformGraph, v: StageView) -> bool:
    return v.kind == "target" or (v.kind == "fixed" and v.runs_on is not None
                                  and v.runs_on.architecture == g.platform.architecture)


def _runs(ctx: LintContext, st: Stage) -> str:
    """Where the stage runs, as built: on the build machine or pinned to a platform."""
    pinned = next((v.pinned for _, v in ctx.reached(st.index) if v.kind == "fixed"), None)
    if pinned:
        return f"is pinned to --platform={pinned}"
    return "runs on the build machine (--platform=$BUILDPLATFORM)"


def check(ctx: LintContext) -> None:
    for st in ctx.reachable_stages():
        reached = ctx.reached(st.index)
        off_target = [g for g, v in reached if v.kind == "build" or (
            v.kind == "fixed" and v.runs_on is not None
            and v.runs_on.architecture != g.platform.architecture)]
        if not off_target:
            continue
        outs = output_paths(ctx, st)
        # The stages that take its output and run for the target; a stage that is itself
        # the image on $BUILDPLATFORM or pinned is PA002's.
        off = {g.platform for g in off_target}
        into_target = [(c, line) for c, line, _ in outs
                       if any(g.platform in off and _for_target(g, v)
                              for g, v in ctx.reached(c.index))]
        if not into_target:
            continue
        where = f"stage {into_target[0][0].label} copies its output (line {into_target[0][1]})"
        runs = _runs(ctx, st)
        _downloads(ctx, st, where, runs)
        ops = heavy_ops(st)
        if not ops:
            continue
        text = stage_text(ctx, st)
        seen: set[str] = set()
        for op in ops:
            kind = "go-run" if op.what.endswith("go run") else op.kind
            if op.kind in seen or op.kind == "java" or _names_target(ctx, st, kind, text):
                continue
            seen.add(op.kind)
            if op.kind in ("go", "cargo", "c", "make"):
                what = (f"`{op.what}` (a Makefile build: whatever it compiles)"
                        if op.kind == "make" else f"`{op.what}`")
                ctx.add("PA008", "error", op.line,
                        f"stage {st.label} {runs} and {what} has no target set, so it builds "
                        f"for the platform it runs on; {where} into every platform's image",
                        WHY[op.kind][1].replace("FROM --platform=$BUILDPLATFORM ",
                                                "keep the stage on $BUILDPLATFORM and "), st)
            else:
                wd = workdirs(ctx, st)
                deps = sorted({p for _, _, paths in outs for p in paths
                               if DEP_PATH.search(p) or (p.rstrip("/") or "/") in wd
                               or p.rstrip("/") in ("", ".", "/*")})
                if not deps:
                    continue
                native = op.kind == "npm" and native_npm(ctx, st)
                what = "node_modules" if op.kind == "npm" else "Python packages"
                ctx.add("PA008", "error" if native else "warning", op.line,
                        f"stage {st.label} {runs} and runs `{op.what}` there; its {what} "
                        f"({', '.join(deps)}) end up in target images: "
                        "native modules and platform wheels are picked for the platform the "
                        "stage runs on, not the target"
                        + (" (native modules are built here)" if native else ""),
                        "install dependencies in a stage that runs on the target platform (drop "
                        "--platform) and copy only architecture-independent output from "
                        "$BUILDPLATFORM stages" if op.kind == "npm" else
                        "install on the target platform, or download target wheels with `pip "
                        "install --platform <tag> --only-binary=:all: --target ...`", st)


_URL_WORD = re.compile(r"""[^\s'"]*://[^\s'"]*""")


def _downloads(ctx: LintContext, st: Stage, where: str, runs: str) -> None:
    """A download whose URL picks the architecture from the machine running the stage
    (``https://.../tool-$(uname -m).tar.gz``): on the build machine that is the build
    machine's architecture, not the target's."""
    for inst in st.instructions:
        if inst.keyword != "RUN":
            continue
        for t in inst.texts():
            for m in _URL_WORD.finditer(t.value):
                det = RUNTIME_DETECT.search(t.value, m.start(), m.end() + 40)
                if det is None or det.start() > m.end() + 2:
                    continue
                ctx.add("PA008", "error", t.line_at(m.start()),
                        f"stage {st.label} {runs} and downloads "
                        f"{m.group(0)[:60]!r} for the architecture {det.group(0).strip()!r} "
                        f"reports, that machine's; {where} into every platform's image",
                        "name the target instead: ARG TARGETARCH and use ${TARGETARCH} (mapped "
                        "with case where the download names architectures its own way)", st)
                return
