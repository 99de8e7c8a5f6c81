"""``polyarch lint --fix``: rewrites that are provably right, shown as a diff.

A rewrite is made only where it can be shown that the build machine's own platform
gets the same image as before and every other target gets what the file means for it;
anything else is refused, with the reason (:func:`plan` returns both):

* ``assets``: a stage whose only outputs are architecture-independent (``dist/``,
  bundles, ``*.tgz`` from ``npm pack``, assets) gets ``FROM --platform=$BUILDPLATFORM``;
* ``go-cross`` (:mod:`polyarch.lint.fix_go`): a Go build stage whose only outputs are
  what ``go build`` writes, without cgo, moves to ``$BUILDPLATFORM`` and each
  ``go build`` gets ``GOOS=$TARGETOS GOARCH=$TARGETARCH`` (what it lacks of them);
* ``npm-target``: a stage whose ``npm ci``/``npm install`` runs no install scripts
  (``--ignore-scripts``) moves to ``$BUILDPLATFORM``, and npm (>= 10.1) picks the
  target's platform packages with ``--os``/``--cpu``/``--libc``; its ``node_modules``
  are copied into the target stage as before;
* ``image-on-target`` and ``unpin-image`` (:mod:`polyarch.lint.fix_platform`): the
  image stage's ``--platform=$BUILDPLATFORM`` or literal pin is dropped where what the
  stage adds follows the target.

Every rewritten file is linted again: a rewrite that would add an error is dropped.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from dataclasses import dataclass

from polyarch.lint import lint
from polyarch.lint.context import LintContext
from polyarch.lint.fix_go import Refused
from polyarch.lint.fix_go import plan as go_plan
from polyarch.lint.fix_platform import image_on_target, unpin_image
from polyarch.lint.model import Stage
from polyarch.lint.rules.common import commands, heavy_ops, output_paths, workdirs
from polyarch.lint.rules.pa003_emulated_build import assets_only

NPM_CPU = ('$(case "$TARGETARCH" in amd64) echo x64;; 386) echo ia32;; ppc64le) echo ppc64;; '
           '*) echo "$TARGETARCH";; esac)')
#: Files an npm build stage may leave that are compiled for the machine that made them.
_NATIVE_OUT = re.compile(r"\.node$|\.so(?:\.|$)|(?:^|/)Release(?:/|$)|(?:^|/)prebuilds?(?:/|$)")
_MACHINE = {"uname", "arch", "xx-info", "getconf", "lscpu"}
#: Tools that make native executables out of JavaScript: their output is the machine's.
_NATIVE_PACKERS = {"pkg", "nexe", "bun", "deno", "electron-builder", "electron-packager",
                   "node-gyp", "prebuildify"}


@dataclass
class Rewrite:
    kind: str
    stage: Stage
    #: 0-based line index -> new text of that line (may hold several lines).
    edits: dict[int, str]
    summary: str


@dataclass
class Refusal:
    kind: str
    stage: Stage
    reason: str


def _from_edit(ctx: LintContext, st: Stage, extra: str = "") -> dict[int, str]:
    idx = st.from_inst.line - 1
    line = ctx.df.lines[idx]
    new = re.sub(r"^(\s*FROM\s+)", r"\1--platform=$BUILDPLATFORM ", line, count=1,
                 flags=re.IGNORECASE)
    return {idx: new + (("\n" + extra) if extra else "")}


def _candidate(ctx: LintContext, st: Stage) -> bool:
    reached = ctx.reached(st.index)
    return bool(reached) and st.platform is None and all(
        v.kind == "target" and v.parent is None for _, v in reached) \
        and not ctx.in_final_lineage(st.index)


def _paths_within(ctx: LintContext, st: Stage, allowed: set[str]) -> bool:
    outs = output_paths(ctx, st)
    if not outs:
        return False
    for _, _, paths in outs:
        if not paths:
            return False
        for p in paths:
            p = posixpath.normpath(p)
            if not any(p == a or p.startswith(a.rstrip("/") + "/") for a in allowed):
                return False
    return True


def rewrites(ctx: LintContext) -> list[Rewrite]:
    return plan(ctx)[0]


def plan(ctx: LintContext) -> tuple[list[Rewrite], list[Refusal]]:
    """The rewrites for the file, and the stages considered but refused (with why)."""
    out: list[Rewrite] = []
    refused: list[Refusal] = []
    if not ctx.multi_arch:
        return out, refused
    moved: set[int] = set()
    for st in ctx.reachable_stages():
        reached = ctx.reached(st.index)
        kinds = {v.kind for _, v in reached}
        if ctx.in_final_lineage(st.index) and all(v.parent is None for _, v in reached):
            try:
                if kinds == {"build"}:
                    out.append(Rewrite("image-on-target", st, image_on_target(ctx, st),
                                       f"stage {st.label}: the image is built FROM the "
                                       "build machine's base; build it for each target"))
                elif kinds == {"fixed"} and any(
                        v.runs_on is not None and v.runs_on.architecture
                        != g.platform.architecture for g, v in reached):
                    edits, builders = unpin_image(ctx, st)
                    moved |= {b.index for b in builders}
                    names = "".join(f", cross-compile {b.label} on $BUILDPLATFORM"
                                    for b in builders)
                    out.append(Rewrite("unpin-image", st, edits,
                                       f"stage {st.label}: drop the pin to {st.platform} so "
                                       f"each target gets its own base{names}"))
            except Refused as e:
                refused.append(Refusal("image-platform", st, str(e)))
            continue
        if st.index in moved or not _candidate(ctx, st):
            continue
        ops = heavy_ops(st)
        op_kinds = {o.kind for o in ops}
        srcs = assets_only(ctx, st)
        if srcs is not None and op_kinds <= {"npm"}:
            why = _assets_refusal(st, srcs)
            if why:
                refused.append(Refusal("assets", st, why))
                continue
            out.append(Rewrite("assets", st, _from_edit(ctx, st),
                               f"stage {st.label}: only {', '.join(srcs)} leave it: build it "
                               "once, natively, on $BUILDPLATFORM"))
            continue
        if "go" in op_kinds:
            try:
                go = go_plan(ctx, st)
            except Refused as e:
                refused.append(Refusal("go-cross", st, str(e)))
                continue
            edits = _from_edit(ctx, st, go.arg_line)
            edits.update({k: v for k, v in go.edits.items() if k not in edits})
            if st.from_inst.line - 1 in go.edits:
                refused.append(Refusal("go-cross", st, "`go build` on the FROM line"))
                continue
            out.append(Rewrite("go-cross", st, edits,
                               f"stage {st.label}: cross-compile with GOOS/GOARCH on "
                               "$BUILDPLATFORM instead of compiling under emulation"))
            continue
        npm = _npm_rewrite(ctx, st, op_kinds)
        if npm is not None:
            out.append(npm)
    return _checked(ctx, out, refused)


def _assets_refusal(st: Stage, srcs: list[str]) -> str | None:
    native = [s for s in srcs if _NATIVE_OUT.search(s)]
    if native:
        return f"{native[0]} is compiled for the machine that builds it"
    for _, c in commands(st):
        if c.name in _MACHINE or (c.name == "dpkg" and "--print-architecture" in c.args):
            return f"`{c.name}` reports the machine the stage runs on, which changes"
        tool = c.args[0] if c.name in ("npx", "yarn", "pnpm") and c.args else c.name
        if tool in _NATIVE_PACKERS:
            return f"`{tool}` makes executables for the machine that runs it"
    return None


def _npm_rewrite(ctx: LintContext, st: Stage, kinds: set[str]) -> Rewrite | None:
    npm = [(line, c) for line, c in commands(st)
           if c.name == "npm" and c.args[:1] in (("ci",), ("install",), ("i",))]
    if not (npm and kinds == {"npm"} and all("--ignore-scripts" in c.args for _, c in npm)):
        return None
    wd = workdirs(ctx, st)
    nm = {posixpath.join(w, "node_modules") for w in wd} | {"/node_modules"}
    if not _paths_within(ctx, st, nm | {w + "/package.json" for w in wd}
                         | {w + "/package-lock.json" for w in wd}):
        return None
    image = next((v.image or "" for _, v in ctx.reached(st.index)), "")
    libc = "musl" if "alpine" in image else "glibc"
    flags = f" --os=$TARGETOS --cpu={NPM_CPU} --libc={libc}"
    edits = _from_edit(ctx, st, "ARG TARGETOS TARGETARCH")
    for line, _ in npm:
        cur = edits.get(line - 1, ctx.df.lines[line - 1])
        edits[line - 1] = cur.replace("--ignore-scripts", "--ignore-scripts" + flags, 1)
    return Rewrite("npm-target", st, edits,
                   f"stage {st.label}: install on $BUILDPLATFORM with npm's "
                   "--os/--cpu/--libc for the target (no install scripts run)")


def _errors(text: str, ctx: LintContext) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in lint(text, path=ctx.path, platforms=ctx.platforms, target=ctx.target):
        if f.severity == "error":
            counts[f.rule] = counts.get(f.rule, 0) + 1
    return counts


def _checked(ctx: LintContext, fixes: list[Rewrite],
             refused: list[Refusal]) -> tuple[list[Rewrite], list[Refusal]]:
    """Drop a rewrite after which the file has an error it did not have."""
    if not fixes:
        return fixes, refused
    before = _errors("\n".join(ctx.df.lines), ctx)
    kept: list[Rewrite] = []
    for fx in fixes:
        after = _errors("\n".join(apply(ctx.df.lines, [*kept, fx])), ctx)
        new = sorted(r for r, n in after.items() if n > before.get(r, 0))
        if new:
            refused.append(Refusal(fx.kind, fx.stage, "the rewritten file would have a new "
                                   f"error ({', '.join(new)})"))
        else:
            kept.append(fx)
    return kept, refused


def apply(lines: list[str], fixes: list[Rewrite]) -> list[str]:
    new = list(lines)
    for fx in fixes:
        for idx, text in fx.edits.items():
            new[idx] = text
    return "\n".join(new).split("\n")


def diff(path: str, lines: list[str], fixes: list[Rewrite]) -> str:
    after = apply(lines, fixes)
    return "".join(difflib.unified_diff([ln + "\n" for ln in lines], [ln + "\n" for ln in after],
                                        f"a/{path.lstrip('/')}", f"b/{path.lstrip('/')}"))
