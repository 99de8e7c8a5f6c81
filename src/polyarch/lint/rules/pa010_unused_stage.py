"""PA010 unused-stage-output (warning): a stage the target never builds makes files
(``npm pack --pack-destination dist/``, ``go build -o bin/app``, ``npm run build``...)
while a stage that is built copies the same paths from the build context.

BuildKit skips stages the target does not use, so those files must already exist on
the host: the build depends on a step outside the Dockerfile, and the stage that was
meant to make them is dead code. Usually ``COPY --from=<stage>`` was intended.
"""

from __future__ import annotations

import posixpath

from polyarch.lint.context import LintContext
from polyarch.lint.model import Stage
from polyarch.lint.rules.common import commands, workdirs
from polyarch.lint.shellwords import split_raw

_OUT_FLAGS = {"-o", "--output", "--pack-destination", "--out-dir", "--outdir", "--outDir",
              "--dest", "--destination", "--target-dir"}
_BUILD_DIRS = {"npm": ("dist", "build"), "yarn": ("dist", "build"), "pnpm": ("dist", "build"),
               "make": ("dist", "build", "bin", "out"), "cargo": ("target",)}


def _rel(path: str, wds: set[str]) -> str:
    path = path.strip("\"'")
    if path.startswith("/"):
        for w in sorted(wds, key=len, reverse=True):
            if w != "/" and (path == w or path.startswith(w + "/")):
                return path[len(w):].lstrip("/")
        return path
    return posixpath.normpath(path).lstrip("./") if path not in (".", "./") else ""


def outputs(ctx: LintContext, st: Stage) -> list[tuple[str, int]]:
    """(path relative to the stage's WORKDIR, line) of what the stage's commands write."""
    wds = workdirs(ctx, st)
    out: list[tuple[str, int]] = []
    for line, c in commands(st):
        args = list(c.args)
        for k, a in enumerate(args):
            flag, eq, val = a.partition("=")
            if flag in _OUT_FLAGS:
                target = val if eq else (args[k + 1] if k + 1 < len(args) else "")
                if target:
                    out.append((_rel(target, wds), line))
        if c.name in ("npm", "pnpm", "yarn") and args[:1] == ["pack"] and not any(
                a.startswith("--pack-destination") for a in args):
            out.append(("", line))
        runs_build = (c.name in ("npm", "pnpm", "yarn") and "build" in args[:2]) or \
            c.name in ("make", "cargo")
        if runs_build:
            out.extend((d, line) for d in _BUILD_DIRS.get(c.name, ("dist", "build")))
    return [(p, ln) for p, ln in out if p not in ("/", "")] + [
        ("*.tgz", ln) for p, ln in out if p == ""]


def _matches(src: str, produced: str) -> bool:
    src = posixpath.normpath(src.strip("\"'")).lstrip("./")
    if produced == "*.tgz":
        return src.endswith(".tgz") and "/" not in src
    produced = produced.rstrip("/")
    return src == produced or src.startswith(produced + "/") or (
        "/" not in produced and f"/{produced}/" in f"/{posixpath.dirname(src)}/")


def check(ctx: LintContext) -> None:
    if not ctx.graphs:
        return
    reachable = {st.index for st in ctx.reachable_stages()}
    for unused in ctx.df.stages:
        if unused.index in reachable:
            continue
        made = outputs(ctx, unused)
        if not made:
            continue
        for st in ctx.df.stages[unused.index + 1:]:
            if st.index not in reachable:
                continue
            for inst in st.instructions:
                if inst.keyword not in ("COPY", "ADD") or inst.flags.get("from") or inst.heredocs:
                    continue
                words = inst.json_args if inst.json_args is not None else split_raw(
                    inst.args.value, ctx.df.escape)
                for src in words[:-1]:
                    hit = next(((p, ln) for p, ln in made if _matches(src, p)), None)
                    if hit is None:
                        continue
                    ctx.add("PA010", "warning", inst.line,
                            f"stage {unused.label} is never built for this target, but line "
                            f"{inst.line} copies {src!r} from the build context, which stage "
                            f"{unused.label} makes (line {hit[1]}): BuildKit skips that stage, "
                            "so the files must already exist on the host",
                            f"copy them from the stage (`COPY --from={unused.label} ...`), or "
                            f"delete stage {unused.label} if the host makes them on purpose", st)
                    break
