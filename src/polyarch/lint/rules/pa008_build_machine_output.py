"""PA008 build-machine-output: a stage that runs on the build machine
(``--platform=$BUILDPLATFORM``) or is pinned to another platform builds binaries with no
target named, and what it builds ends up in a target's image.

Error: the image for ``linux/arm64`` carries an x86-64 binary when built on an x86-64
machine (and is right only by luck on the other). The same holds for ``node_modules``
with native modules (error) and Python packages (warning: platform wheels) installed
there and copied into the image.
"""

from __future__ import annotations

import re

from polyarch.lint.arch import RUNTIME_DETECT
from polyarch.lint.context import LintContext
from polyarch.lint.model import Stage
from polyarch.lint.rules.common import (
    DEP_PATH,
    heavy_ops,
    native_npm,
    output_paths,
    stage_text,
    target_aware,
    workdirs,
)
from polyarch.lint.rules.pa003_emulated_build import WHY

CROSS = {
    "go": re.compile(r"\bGOARCH\s*=|\bxx-go\b"),
    "cargo": re.compile(r"--target[= ]|CARGO_BUILD_TARGET|\bxx-cargo\b|\bcross\s+build"),
    "c": re.compile(r"\bCC\s*=|--host[= ]|CROSS_COMPILE|CMAKE_TOOLCHAIN_FILE|"
                    r"CMAKE_SYSTEM_PROCESSOR|\bxx-(?:clang|gcc|cc)|-linux-gnu\w*-g(?:cc|\+\+)|"
                    r"--target[= ]|-target\s"),
    "npm": re.compile(r"--cpu[= ]|--arch[= ]|npm_config_arch|--target_arch|--os[= ]"),
    "pip": re.compile(r"--platform[= ]"),
}


def check(ctx: LintContext) -> None:
    for st in ctx.reachable_stages():
        reached = ctx.reached(st.index)
        off_target = [g for g, v in reached if v.kind == "build" or (
            v.kind == "fixed" and v.runs_on is not None
            and v.runs_on.architecture != g.platform.architecture)]
        if not off_target or len({g.platform.architecture for g in ctx.graphs}) < 1:
            continue
        final = ctx.in_final_lineage(st.index)
        outs = output_paths(ctx, st)
        into_target = [(c, line) for c, line, _ in outs
                       if any(v.kind not in ("build",) for _, v in ctx.reached(c.index))]
        if not into_target and not final:
            continue
        where = (f"stage {into_target[0][0].label} copies its output (line {into_target[0][1]})"
                 if into_target else "it is the image being built")
        _downloads(ctx, st, where)
        ops = heavy_ops(st)
        if not ops:
            continue
        text = stage_text(ctx, st)
        seen: set[str] = set()
        for op in ops:
            if op.kind in seen or CROSS[op.kind].search(text):
                continue
            seen.add(op.kind)
            if op.kind in ("go", "cargo", "c"):
                if target_aware(ctx, st):
                    continue
                ctx.add("PA008", "error", op.line,
                        f"stage {st.label} runs on the build machine and `{op.what}` has no "
                        f"target set, so it builds for the build machine; {where} into every "
                        "platform's image",
                        WHY[op.kind][1].replace("FROM --platform=$BUILDPLATFORM ",
                                                "keep the stage on $BUILDPLATFORM and "), st)
            else:
                wd = workdirs(ctx, st)
                deps = sorted({p for _, _, paths in outs for p in paths
                               if DEP_PATH.search(p) or (p.rstrip("/") or "/") in wd
                               or p.rstrip("/") in ("", ".", "/*")})
                if not deps and not final:
                    continue
                native = op.kind == "npm" and native_npm(ctx, st)
                what = "node_modules" if op.kind == "npm" else "Python packages"
                ctx.add("PA008", "error" if native else "warning", op.line,
                        f"stage {st.label} runs `{op.what}` on the build machine and its {what} "
                        f"({', '.join(deps) or 'the whole stage'}) end up in target images: "
                        "native modules and platform wheels are picked for the build machine, "
                        "not the target" + (" (native modules are built here)" if native else ""),
                        "install dependencies in a stage that runs on the target platform (drop "
                        "--platform) and copy only architecture-independent output from "
                        "$BUILDPLATFORM stages" if op.kind == "npm" else
                        "install on the target platform, or download target wheels with `pip "
                        "install --platform <tag> --only-binary=:all: --target ...`", st)


_URL_WORD = re.compile(r"""[^\s'"]*://[^\s'"]*""")


def _downloads(ctx: LintContext, st: Stage, where: str) -> None:
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
                        f"stage {st.label} runs on the build machine and downloads "
                        f"{m.group(0)[:60]!r} for the architecture {det.group(0).strip()!r} "
                        f"reports, the build machine's; {where} into every platform's image",
                        "name the target instead: ARG TARGETARCH and use ${TARGETARCH} (mapped "
                        "with case where the download names architectures its own way)", st)
                return
