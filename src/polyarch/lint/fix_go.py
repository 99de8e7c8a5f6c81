"""``go-cross`` for ``polyarch lint --fix``: when a Go build stage can move to the build
machine and cross-compile with the same result.

A native ``go build`` and a cross ``GOOS=$TARGETOS GOARCH=$TARGETARCH go build`` make the
same program only when nothing else differs between them. :func:`plan` says yes only
when it can show that for the stage, and otherwise returns the reason it cannot:

* cgo: a cross build has cgo off; a native build has it on wherever a C compiler is
  found. So ``CGO_ENABLED=0`` must be set (on the command or by ``ENV``), or the base is
  an Alpine Go image of Go >= 1.20 with no C toolchain installed (Go then turns cgo off
  natively too);
* the target platforms: a native build on 32-bit ARM picks ``GOARM`` from the machine
  (the image's Go), a cross build defaults to 7; only ``amd64``, ``arm64``, ``ppc64le``,
  ``s390x`` and ``riscv64`` without a variant are moved;
* nothing else in the stage may depend on the machine it runs on: only ``go build``,
  ``go mod``, package installs and file commands run there, nothing reads the machine's
  architecture (``uname``, ``dpkg --print-architecture``, ``go env``, ``$BUILDARCH``);
* the output: only what ``go build`` writes leaves the stage (``-o PATH``, or
  ``go build main.go`` writing ``./main``), no later command runs it, and no stage is
  built ``FROM`` this one;
* the edit: each ``go build`` is a simple command in shell form whose start can be found
  on its line (not after ``exec``/``nice``/``xargs``, which would take ``GOOS=...`` as
  the program to run).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from polyarch.lint.context import LintContext
from polyarch.lint.model import Instruction, Stage
from polyarch.lint.parser import parse_arg, parse_env
from polyarch.lint.rules.common import C_TOOLS, commands, heavy_ops, output_paths
from polyarch.lint.shell import SimpleCommand

#: Architectures whose native and cross Go builds default the same (no GOARM/GO386 choice
#: made from the machine).
SAME_ARCHES = {"amd64", "arm64", "ppc64le", "s390x", "riscv64"}
#: Commands that may run in a moved stage: their result does not depend on the machine.
SAFE_COMMANDS = {"go", "mkdir", "cp", "mv", "rm", "ln", "cd", "echo", "printf", "true", "set",
                 "export", "chmod", "chown", "touch", "ls", "test", "[", "git", "apk",
                 "apt-get", "apt", "unset", ":"}
_MACHINE_CMDS = {"uname", "arch", "xx-info", "getconf", "nproc", "lscpu"}
_MACHINE_TEXT = re.compile(r"\$\{?BUILD(?:PLATFORM|OS|ARCH|VARIANT)\b|--print-arch"
                           r"|/proc/cpuinfo|\$\(\s*go\s|`\s*go\s")
_C_PKGS = re.compile(r"\b(?:gcc|musl-dev|build-base|build-essential|g\+\+|clang|libc6?-dev)\b")
_TARGET_OS = {"$TARGETOS", "${TARGETOS}"}
_TARGET_ARCH = {"$TARGETARCH", "${TARGETARCH}"}
#: Where a simple command may start on a line: the line's start, RUN, a separator or a
#: shell keyword, then optional ``NAME=value`` words (``env`` takes them too).
_CMD_START = re.compile(r"(?:^|(?:^\s*RUN(?:\s+--\S+)*)|[;&|(`{]|\$\(|\b(?:then|do|else|if|"
                        r"while|until|!|env))\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*$",
                        re.IGNORECASE)
_ALPINE_GO = re.compile(r"(?:^|/)golang:(\d+)\.(\d+)[^@]*alpine")


@dataclass
class GoPlan:
    """What moving the stage takes: line edits (0-based index -> new text) besides the
    FROM line, and whether ``ARG TARGETOS TARGETARCH`` must be added."""

    edits: dict[int, str] = field(default_factory=dict)
    #: The ARG line to add after FROM ("" when the stage declares what it needs).
    arg_line: str = ""
    outputs: set[str] = field(default_factory=set)


class Refused(Exception):
    """Why a stage is not rewritten (the message is shown to the user)."""


def _stage_args(st: Stage) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for inst in st.instructions:
        if inst.keyword == "ARG":
            for a in parse_arg(inst):
                out[a.name] = a.default
    return out


def _stage_env(st: Stage) -> dict[str, str]:
    out: dict[str, str] = {}
    for inst in st.instructions:
        if inst.keyword == "ENV":
            out.update(parse_env(inst))
    return out


def _workdir_at(st: Stage, line: int) -> str:
    cwd = "/"
    for inst in st.instructions:
        if inst.line >= line:
            break
        if inst.keyword == "WORKDIR":
            cwd = posixpath.normpath(posixpath.join(cwd, inst.args.value.strip()))
    return cwd


def _instruction_at(st: Stage, line: int) -> Instruction:
    for inst in st.instructions:
        if inst.line <= line <= inst.end_line:
            return inst
    raise Refused(f"line {line} is in no instruction of the stage")


def _cgo_off(ctx: LintContext, st: Stage, c: SimpleCommand, env: dict[str, str]) -> None:
    cgo = dict(c.assigns).get("CGO_ENABLED", env.get("CGO_ENABLED"))
    if cgo is not None:
        if cgo.strip("'\"") != "0":
            raise Refused(f"CGO_ENABLED={cgo}: cgo builds need the target's C toolchain")
        return
    images = {v.image or "" for _, v in ctx.reached(st.index)}
    text = "\n".join(i.full_text() for i in st.instructions)
    m = [_ALPINE_GO.search(i) for i in images]
    if all(x is not None and (int(x.group(1)), int(x.group(2))) >= (1, 20) for x in m) \
            and not _C_PKGS.search(text):
        return  # Go >= 1.20 without a C compiler: cgo is off natively too
    raise Refused("`go build` without CGO_ENABLED=0: a native build uses cgo where the "
                  "image has a C compiler, a cross build does not, so the binaries differ "
                  "(set CGO_ENABLED=0 if cgo is not wanted)")


def _output(st: Stage, line: int, c: SimpleCommand, cd_in_run: bool) -> str:
    args = list(c.args[1:])
    out = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "-o"), None)
    out = out or next((a[3:] for a in args if a.startswith("-o=")), None)
    if out is None:
        files = [a for a in args if a.endswith(".go") and not a.startswith("-")]
        if not files:
            raise Refused("`go build` without -o writes a file named after the package's "
                          "import path (go.mod), which cannot be read here; add -o")
        out = posixpath.basename(files[0])[:-3]
    if "$" in out or "`" in out:
        raise Refused(f"the output path {out!r} is computed at build time")
    if not out.startswith("/") and cd_in_run:
        raise Refused("a relative -o after `cd` in the same RUN")
    return posixpath.normpath(posixpath.join(_workdir_at(st, line), out))


def _platforms_ok(ctx: LintContext) -> None:
    for p in ctx.platforms:
        if p.os != "linux" or p.architecture not in SAME_ARCHES or \
                (p.variant or "") not in ("", "v8" if p.architecture == "arm64" else ""):
            raise Refused(f"target {p}: a native Go build picks GOARM/GOAMD64-style settings "
                          "from the machine, a cross build from defaults")


def _machine_free(st: Stage) -> None:
    text = "\n".join(i.full_text() for i in st.instructions)
    if _MACHINE_TEXT.search(text):
        raise Refused("the stage reads the build machine's platform ($BUILDARCH, "
                      "--print-arch, $(go env ...))")
    for _, c in commands(st):
        if c.name in _MACHINE_CMDS or (c.name == "go" and c.args[:1] == ("env",)):
            raise Refused(f"`{c.name}` reports the machine the stage runs on, which changes")
        if c.name == "dpkg" and "--print-architecture" in c.args:
            raise Refused("`dpkg --print-architecture` reports the machine, which changes")
        if c.name not in SAFE_COMMANDS:
            raise Refused(f"`{c.name}` runs in the stage: what it does on another machine "
                          "cannot be checked here")
        if c.name == "go" and c.args[:1] == ("install",):
            raise Refused("`go install`: a cross-compiling `go install` writes to "
                          "bin/GOOS_GOARCH/ (and refuses GOBIN), so the paths change")
        if c.name == "go" and c.args[:1] not in (("build",), ("mod",), ("version",)):
            raise Refused(f"`go {' '.join(c.args[:1])}` runs a program the build made on "
                          "the machine that builds; only `go build` is cross-compiled")


def plan(ctx: LintContext, st: Stage) -> GoPlan:
    """The edits that move ``st`` to ``$BUILDPLATFORM`` (FROM line excepted), or raise
    :class:`Refused`."""
    ops = heavy_ops(st)
    if not ops or {o.kind for o in ops} != {"go"} or \
            any(not o.what.startswith("go ") for o in ops):
        raise Refused("not a plain Go build stage")
    _platforms_ok(ctx)
    if any(c.name in C_TOOLS for _, c in commands(st)):
        raise Refused("C tools run in the stage")
    _machine_free(st)
    args, env = _stage_args(st), _stage_env(st)
    for name in ("TARGETOS", "TARGETARCH"):
        if args.get(name) is not None:
            raise Refused(f"`ARG {name}={args[name]}` overrides the target (PA009)")
    res = GoPlan()
    needed: set[str] = set()
    builds: dict[int, list[tuple[SimpleCommand, str]]] = {}
    for line, c in commands(st):
        if c.name != "go" or c.args[:1] != ("build",):
            continue
        inst = _instruction_at(st, line)
        if inst.json_args is not None:
            raise Refused("`go build` in exec form (JSON) cannot take GOOS/GOARCH")
        a = dict(c.assigns)
        goos, goarch = a.get("GOOS"), a.get("GOARCH")
        if goos is not None and goos not in _TARGET_OS and \
                not (goos == "linux" and all(p.os == "linux" for p in ctx.platforms)):
            raise Refused(f"GOOS={goos} is fixed")
        if goarch is not None and goarch not in _TARGET_ARCH:
            raise Refused(f"GOARCH={goarch} is fixed for every target (PA001)")
        if (goos in _TARGET_OS and "TARGETOS" not in args) or \
                (goarch in _TARGET_ARCH and "TARGETARCH" not in args):
            raise Refused("$TARGETOS/$TARGETARCH are used but not declared in the stage")
        _cgo_off(ctx, st, c, env)
        cd_in_run = any(x.name == "cd" for ln, x in commands(st)
                        if inst.line <= ln <= inst.end_line)
        res.outputs.add(_output(st, line, c, cd_in_run))
        prefix = ("" if goos is not None else "GOOS=$TARGETOS ") + \
                 ("" if goarch is not None else "GOARCH=$TARGETARCH ")
        needed |= {n for n, v in (("TARGETOS", goos), ("TARGETARCH", goarch)) if v is None}
        builds.setdefault(line, []).append((c, prefix))
    if not builds:
        raise Refused("no `go build` in the stage")
    for line, cmds in builds.items():
        res.edits[line - 1] = _edit_line(ctx.df.lines[line - 1], [p for _, p in cmds])
    _outputs_only(ctx, st, res.outputs)
    missing = sorted(needed - set(args), reverse=True)
    res.arg_line = f"ARG {' '.join(missing)}" if missing else ""
    return res


def _edit_line(line: str, prefixes: list[str]) -> str:
    """Insert each prefix before the matching ``go build`` of the line."""
    spots = [m.start() for m in re.finditer(r"\bgo\s+build\b", line)]
    if len(spots) != len(prefixes):
        raise Refused("`go build` is split over lines or also appears as text on its line")
    for pos, prefix in reversed(list(zip(spots, prefixes, strict=True))):
        if not _CMD_START.search(line[:pos]):
            raise Refused("`go build` runs through another command (exec, nice, xargs...)")
        line = line[:pos] + prefix + line[pos:]
    return line


def _outputs_only(ctx: LintContext, st: Stage, outs: set[str]) -> None:
    taken = output_paths(ctx, st)
    if not taken:
        raise Refused("nothing is taken out of the stage")
    for g in ctx.graphs:
        if any(v.parent == st.index and v.stage.index in g.reachable for v in g.views):
            raise Refused("a stage is built FROM it and would move too")
    for _, _, paths in taken:
        if not paths:
            raise Refused("another stage mounts it (RUN --mount=from=)")
        for p in paths:
            p = posixpath.normpath(p)
            if not any(p == o or p.startswith(o.rstrip("/") + "/") for o in outs):
                raise Refused(f"{p} is taken out of the stage and is not what `go build` "
                              "writes")
    names = outs | {posixpath.basename(o) for o in outs}
    for _, c in commands(st):
        if c.name == "go":
            continue
        if any(w == n or w.endswith("/" + n) for w in (c.name, *c.args) for n in names):
            raise Refused(f"`{c.name}` uses the built binary, which would be the target's")
