"""PA003 emulated-build (warning): compile or install work in a stage that runs on each
target platform, so under QEMU wherever the build machine is another architecture,
when that work could run natively. Slow, never wrong: a warning.

Go, Rust, C and .NET (``dotnet publish -a``) cross-compile; npm/yarn/pnpm work is reported
only where what leaves the stage is provably the same for every architecture (``dist/``,
bundles, ``*.tgz`` from ``npm pack``), never where ``node_modules`` ship in the image.
``polyarch lint --fix`` rewrites the safe cases.
"""

from __future__ import annotations

import re

from polyarch.lint.context import LintContext
from polyarch.lint.model import Severity, Stage
from polyarch.lint.rules.common import (
    ASSET_PATH,
    DEP_PATH,
    Heavy,
    commands,
    heavy_ops,
    lineage_stages,
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
    "dotnet": (".NET builds for any architecture from any machine (`-a`/`--arch`, or `-r` "
               "with a runtime identifier): safe to move",
               "FROM --platform=$BUILDPLATFORM mcr.microsoft.com/dotnet/sdk...; ARG TARGETARCH; "
               "RUN dotnet publish -a $TARGETARCH ...; copy the output into a runtime stage that "
               "runs on the target"),
    "npm": ("only architecture-independent files leave this stage, so it can run natively: "
            "safe to move",
            "FROM --platform=$BUILDPLATFORM node... for this stage (polyarch lint --fix); keep "
            "installs whose node_modules ship in the image on the target platform"),
    "pip": ("Python C extensions cannot practically be cross-compiled, so moving the stage is "
            "not safe",
            "install binary wheels (drop --no-binary / sdist URLs) so nothing compiles, or "
            "build the wheels on native runners and COPY them in"),
}


def _holds_workdir(path: str, wd: set[str]) -> bool:
    """Whether ``path`` (a COPY --from source, perhaps ending in a glob) is or contains a
    WORKDIR, where package managers put their dependencies (``node_modules``)."""
    parts = path.rstrip("/").split("/")
    while parts and re.search(r"[*?\[]", parts[-1]):
        parts.pop()  # /app/* takes everything in /app
    # A relative source is relative to the stage's root.
    base = "/" + "/".join(p for p in parts if p not in ("", "."))
    return any(base == "/" or w == base or w.startswith(base.rstrip("/") + "/") for w in wd)


_NODE_CMDS = {"node", "nodejs", "npm", "npx", "yarn", "pnpm", "corepack", "bun"}


def _runs_node(ctx: LintContext, st: Stage) -> bool:
    """Whether ``st`` (or a stage it is built FROM) runs Node: a RUN command, or an
    ENTRYPOINT/CMD that starts it. Files it takes from elsewhere may then be Node packages
    whose ``node_modules`` matter."""
    for s in lineage_stages(ctx, st):
        if any(c.name in _NODE_CMDS for _, c in commands(s)):
            return True
        for inst in s.instructions:
            if inst.keyword in ("ENTRYPOINT", "CMD"):
                words = inst.json_args if inst.json_args else inst.args.value.split()
                if words and words[0].rsplit("/", 1)[-1] in _NODE_CMDS:
                    return True
    return False


def assets_only(ctx: LintContext, st: Stage, kind: str = "java") -> list[str] | None:
    """The paths taken out of ``st`` when every one is architecture-independent (and
    something is taken), else ``None``.

    A path is build output (``dist/``, a ``.jar``). For npm/yarn/pnpm work, whose only
    architecture-dependent product is what the package manager installs, a path of another
    name also counts when it neither is nor holds the directory the install ran in (the
    WORKDIR, where ``node_modules`` is), it is taken from the stage itself (not from one
    built FROM it that runs more on the install), and the stage taking it runs no Node
    (which would make it a package whose own ``node_modules`` matter). Nothing npm
    builds counts when a stage taking it runs Node without installing packages itself:
    its ``node_modules`` come from here."""
    outs = output_paths(ctx, st)
    if not outs or any(not paths for _, _, paths in outs):
        return None
    wd = workdirs(ctx, st)
    direct = {id(u.inst) for g in ctx.graphs for u in g.uses
              if u.source == st.index and u.consumer in g.reachable}
    srcs: set[str] = set()
    for consumer, paths, inst_id in _outputs(ctx, st):
        if kind == "npm" and _runs_node(ctx, consumer) and not any(
                op.kind == "npm" for s in lineage_stages(ctx, consumer) for op in heavy_ops(s)):
            # It runs Node and installs no packages: the code it runs brings its
            # node_modules from here (a Next.js `standalone` build, a server bundle).
            return None
        for s in paths:
            srcs.add(s)
            norm = s.rstrip("/") or "/"
            if DEP_PATH.search(s) or norm in wd or norm in ("/", ".", "/*"):
                return None
            # Judge the path below the WORKDIR: WORKDIR /build is no build output.
            rel = norm
            for w in sorted(wd, key=len, reverse=True):
                if w != "/" and rel.startswith(w + "/"):
                    rel = rel[len(w) + 1:]
                    break
            if ASSET_PATH.search(rel):
                continue
            if kind == "npm" and inst_id in direct and not _holds_workdir(s, wd) \
                    and not _runs_node(ctx, consumer):
                continue
            return None
    return sorted(srcs)


def _outputs(ctx: LintContext, st: Stage) -> list[tuple[Stage, list[str], int]]:
    """(consumer, source paths, id of the instruction) of what is taken out of ``st``."""
    out = []
    seen: set[int] = set()
    for g in ctx.graphs:
        for u in g.consumers(st.index):
            if id(u.inst) not in seen:
                seen.add(id(u.inst))
                out.append((ctx.df.stages[u.consumer], u.paths, id(u.inst)))
    return out


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
                srcs = assets_only(ctx, st, kind)
                if srcs is None:
                    continue
                why = (f"only {', '.join(srcs)} leave{'s' if len(srcs) == 1 else ''} this stage "
                       + ("(no node_modules), " if kind == "npm" else "")
                       + "so it can run natively: safe to move")
            elif final and kind in ("c", "make", "cargo", "dotnet"):
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
