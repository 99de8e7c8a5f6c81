"""``polyarch lint --fix``: rewrites that are provably safe, shown as a diff.

Each rewrite moves work that runs under emulation (once per non-native platform) to
the build machine, where it runs once and natively, without changing what lands in
any target's image:

* ``assets``: a stage whose only outputs are architecture-independent (``dist/``,
  bundles, ``*.tgz`` from ``npm pack``, assets) gets ``FROM --platform=$BUILDPLATFORM``;
* ``go-cross``: a stage whose only outputs are what ``go build -o`` writes, without
  cgo, moves to ``$BUILDPLATFORM`` and each ``go build`` gets
  ``GOOS=$TARGETOS GOARCH=$TARGETARCH``;
* ``npm-target``: a stage whose ``npm ci``/``npm install`` runs no install scripts
  (``--ignore-scripts``) moves to ``$BUILDPLATFORM``, and npm (>= 10.1) picks the
  target's platform packages with ``--os``/``--cpu``/``--libc``; its ``node_modules``
  are copied into the target stage as before.

A stage qualifies only when it is built FROM an image (not another stage), has no
``--platform``, is not (the base of) the image being built, and every path taken out
of it is of the kind the rewrite keeps identical.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from dataclasses import dataclass

from polyarch.lint.context import LintContext
from polyarch.lint.model import Stage
from polyarch.lint.rules.common import C_TOOLS, commands, heavy_ops, output_paths, workdirs
from polyarch.lint.rules.pa003_emulated_build import assets_only

NPM_CPU = ('$(case "$TARGETARCH" in amd64) echo x64;; 386) echo ia32;; ppc64le) echo ppc64;; '
           '*) echo "$TARGETARCH";; esac)')
_CGO_ON = re.compile(r"CGO_ENABLED\s*=\s*['\"]?1")
_C_PKGS = re.compile(r"\b(?:gcc|musl-dev|build-base|build-essential|g\+\+|clang)\b")


@dataclass
class Rewrite:
    kind: str
    stage: Stage
    #: 0-based line index -> new text of that line (may hold several lines).
    edits: dict[int, str]
    summary: str


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


def _go_outputs(ctx: LintContext, st: Stage) -> tuple[list[tuple[int, str]], set[str]] | None:
    """(line, command text) of every ``go build`` and the absolute paths they write, or
    None when the stage's Go work is anything else."""
    wd = sorted(workdirs(ctx, st))
    cwd = wd[-1] if wd else "/"
    cmds: list[tuple[int, str]] = []
    outs: set[str] = set()
    for line, c in commands(st):
        if c.name != "go":
            continue
        sub = c.args[0] if c.args else ""
        if sub in ("mod", "env", "version", "generate", "vet", "list"):
            continue
        if sub != "build" or any(k in ("GOOS", "GOARCH") for k, _ in c.assigns):
            return None
        out = next((c.args[i + 1] for i, a in enumerate(c.args[:-1]) if a == "-o"), None)
        out = out or next((a[3:] for a in c.args if a.startswith("-o=")), None)
        if not out:
            return None
        outs.add(posixpath.normpath(posixpath.join(cwd, out)))
        cmds.append((line, c.text))
    return (cmds, outs) if cmds else None


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


def _runs_output(st: Stage, outs: set[str]) -> bool:
    """Whether a command other than ``go`` touches what ``go build`` wrote (a test run of
    the binary would then execute a target binary on the build machine)."""
    names = outs | {posixpath.basename(o) for o in outs}
    for _, c in commands(st):
        if c.name == "go":
            continue
        words = [c.name, *c.args]
        if any(w == n or w.endswith("/" + n) for w in words for n in names):
            return True
    return False


def _insert_before(line: str, needle: str, text: str) -> str:
    i = line.find(needle)
    return line if i < 0 else line[:i] + text + line[i:]


def rewrites(ctx: LintContext) -> list[Rewrite]:
    out: list[Rewrite] = []
    if not ctx.multi_arch:
        return out
    for st in ctx.reachable_stages():
        if not _candidate(ctx, st):
            continue
        ops = heavy_ops(st)
        kinds = {o.kind for o in ops}
        srcs = assets_only(ctx, st)
        if srcs is not None and kinds <= {"npm"}:
            out.append(Rewrite("assets", st, _from_edit(ctx, st),
                               f"stage {st.label}: only {', '.join(srcs)} leave it: build it "
                               "once, natively, on $BUILDPLATFORM"))
            continue
        text = "\n".join(i.full_text() for i in st.instructions)
        wrapped = any(o.kind == "go" and not o.what.startswith("go ") for o in ops)
        if kinds == {"go"} and not wrapped and not _CGO_ON.search(text) \
                and not _C_PKGS.search(text) and not any(c.name in C_TOOLS
                                                         for _, c in commands(st)):
            go = _go_outputs(ctx, st)
            if go is not None and _paths_within(ctx, st, go[1]) and not _runs_output(st, go[1]):
                edits = _from_edit(ctx, st, "ARG TARGETOS TARGETARCH")
                for line, _ in go[0]:
                    cur = edits.get(line - 1, ctx.df.lines[line - 1])
                    edits[line - 1] = _insert_before(cur, "go build",
                                                     "GOOS=$TARGETOS GOARCH=$TARGETARCH ")
                out.append(Rewrite("go-cross", st, edits,
                                   f"stage {st.label}: cross-compile with GOOS/GOARCH on "
                                   "$BUILDPLATFORM instead of compiling under emulation"))
                continue
        npm = [(line, c) for line, c in commands(st)
               if c.name == "npm" and c.args[:1] in (("ci",), ("install",), ("i",))]
        if npm and kinds == {"npm"} and all("--ignore-scripts" in c.args for _, c in npm):
            wd = workdirs(ctx, st)
            nm = {posixpath.join(w, "node_modules") for w in wd} | {"/node_modules"}
            if not _paths_within(ctx, st, nm | {w + "/package.json" for w in wd}
                                 | {w + "/package-lock.json" for w in wd}):
                continue
            image = next((v.image or "" for _, v in ctx.reached(st.index)), "")
            libc = "musl" if "alpine" in image else "glibc"
            flags = f" --os=$TARGETOS --cpu={NPM_CPU} --libc={libc}"
            edits = _from_edit(ctx, st, "ARG TARGETOS TARGETARCH")
            for line, _ in npm:
                cur = edits.get(line - 1, ctx.df.lines[line - 1])
                edits[line - 1] = cur.replace("--ignore-scripts", "--ignore-scripts" + flags, 1)
            out.append(Rewrite("npm-target", st, edits,
                               f"stage {st.label}: install on $BUILDPLATFORM with npm's "
                               "--os/--cpu/--libc for the target (no install scripts run)"))
    return out


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
