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
    commands,
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
from polyarch.lint.shell import simple_commands

CROSS = {
    "cargo": re.compile(r"CARGO_BUILD_TARGET|\bxx-cargo\b|\bcross\s+build"),
    "c": re.compile(r"\bCC\s*=|--host[= ]|CROSS_COMPILE|CMAKE_TOOLCHAIN_FILE|"
                    r"CMAKE_SYSTEM_PROCESSOR|\bxx-(?:clang|gcc|cc)|-linux-gnu\w*-g(?:cc|\+\+)|"
                    r"--target[= ]|-target\s"),
    "npm": re.compile(r"--cpu[= ]|--arch[= ]|npm_config_arch|--target_arch|--os[= ]"),
    "pip": re.compile(r"--platform[= ]"),
}
#: One shell word, quotes and command substitutions included (`"$(cat /t)"`).
_SHELL_WORD = re.compile(r"""(?:"[^"]*"|'[^']*'|\$\([^)]*\)|`[^`]*`|[^\s"'`$;&|]|\$(?!\())+""")
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
        for m in re.finditer(r"--target[= ]+", text):
            w = _SHELL_WORD.match(text, m.end())
            word = w.group(0) if w else ""
            if word and ("$" not in word or target.search(word)):
                return True
        return False
    if kind in ("c", "make", "go-run"):
        return CROSS["c"].search(text) is not None or target_aware(ctx, st)
    return CROSS[kind].search(text) is not None


def _for_target(g: PlatformGraph, v: StageView) -> bool:
    return v.kind == "target" or (v.kind == "fixed" and v.runs_on is not None
                                  and v.runs_on.architecture == g.platform.architecture)


def _ends_in_image(g: PlatformGraph, index: int, seen: set[int]) -> bool:
    """Whether files in stage ``index`` can end up in ``g``'s image for its target: the
    stage runs for the target and is the image's lineage, or passes them on (FROM, COPY
    --from, a mount) through stages that run for the target to one that is. A ``scratch``
    stage that only carries a tool into a ``$BUILDPLATFORM`` stage does not."""
    if not _for_target(g, g.views[index]):
        return False
    if index in g.lineage():
        return True
    if index in seen:
        return False
    seen.add(index)
    nxt = {v.stage.index for v in g.views if v.parent == index and v.stage.index in g.reachable}
    nxt |= {u.consumer for u in g.uses if u.source == index and u.consumer in g.reachable}
    return any(_ends_in_image(g, n, seen) for n in sorted(nxt))


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
                       if any(g.platform in off and _ends_in_image(g, c.index, set())
                              for g, _ in ctx.reached(c.index))]
        if not into_target:
            continue
        where = f"stage {into_target[0][0].label} copies its output (line {into_target[0][1]})"
        runs = _runs(ctx, st)
        _downloads(ctx, st, where, runs)
        ops = heavy_ops(st)
        if not ops:
            continue
        text = stage_text(ctx, st)
        copied = [p for _, _, paths in outs for p in paths]
        seen: set[str] = set()
        for op in ops:
            kind = "go-run" if op.what.endswith("go run") else op.kind
            if op.kind in seen or op.kind in ("java", "dotnet") or _names_target(ctx, st, kind, text):
                continue
            if _tool_install(ctx, st, op.line, copied):
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


def _env(ctx: LintContext, st: Stage) -> dict[str, str]:
    out: dict[str, str] = {}
    for t in lineage_texts(ctx, st):
        for name, value, _ in assignments(t):
            out[name] = value.strip("'\"")
    return out


def _within(path: str, d: str) -> bool:
    """Whether a copied ``path`` is ``d``, below it, or holds it."""
    p = "/" + path.strip("/").rstrip("*").rstrip("/") if path.strip("/.*") else "/"
    d = "/" + d.strip("/")
    return p == "/" or p == d or p.startswith(d + "/") or d.startswith(p.rstrip("/") + "/")


def _tool_install(ctx: LintContext, st: Stage, line: int, copied: list[str]) -> bool:
    """``cargo install`` / ``go install`` at ``line`` puts a program into the toolchain's
    own bin directory (``--root``, ``$CARGO_HOME``, ``$GOBIN``, ``$GOPATH``): a tool for
    the build machine, unless a copied path is or holds that directory."""
    env = _env(ctx, st)
    home = env.get("HOME", "/root")
    for at, c in commands(st):
        if at != line or c.args[:1] != ("install",) or c.name not in ("cargo", "go"):
            continue
        if c.name == "cargo":
            root = next((c.args[i + 1] for i, a in enumerate(c.args[:-1]) if a == "--root"),
                        None)
            dirs = [f"{root}/bin"] if root else [
                f"{env.get('CARGO_HOME', home + '/.cargo')}/bin", "/usr/local/cargo/bin",
                f"{home}/.cargo/bin"]
        else:
            dirs = [env["GOBIN"]] if "GOBIN" in env else [
                f"{env.get('GOPATH', home + '/go')}/bin", "/go/bin", f"{home}/go/bin"]
        if any("$" in d for d in dirs):
            return False
        return not any(_within(p, d) for p in copied for d in dirs)
    return False


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
                if _consumed(t.value, m):
                    continue
                ctx.add("PA008", "error", t.line_at(m.start()),
                        f"stage {st.label} {runs} and downloads "
                        f"{m.group(0)[:60]!r} for the architecture {det.group(0).strip()!r} "
                        f"reports, that machine's; {where} into every platform's image",
                        "name the target instead: ARG TARGETARCH and use ${TARGETARCH} (mapped "
                        "with case where the download names architectures its own way)", st)
                return


_SAVE = re.compile(r"(?:^|\s)(?:-o|-O|--output|--output-document)[= ]\s*['\"]?([^\s'\";&|]+)")


def _consumed(script: str, url: re.Match[str]) -> bool:
    """Whether the download at ``url`` is a tool the build runs and throws away: piped
    into a shell (an installer), or saved to a file that the same RUN removes."""
    flat = script.replace("\\\n", "  ")
    stmt = re.split(r"&&|;|\n", flat[url.end():], maxsplit=1)[0]
    if re.search(r"\|\s*(?:sudo\s+)?(?:ba|da|z)?sh\b", stmt):
        return True
    head = re.split(r"&&|;|\n", flat[:url.start()])[-1]
    m = _SAVE.search(head + " " + stmt)
    name = m.group(1) if m else url.group(0).rstrip("/").rsplit("/", 1)[-1]
    base = name.rsplit("/", 1)[-1]
    if not base or "$" in base:
        return False
    return any(c.offset > url.end() and base in (w.rsplit("/", 1)[-1] for w in c.args
                                                 if not w.startswith("-"))
               for c in simple_commands(script) if c.name == "rm")
