"""Helpers several rules share: heavy work in a stage, what leaves it, target awareness."""

from __future__ import annotations

import re
from dataclasses import dataclass

from polyarch.lint.context import LintContext
from polyarch.lint.model import Stage, Text
from polyarch.lint.shell import SimpleCommand, simple_commands

TARGET_AWARE = re.compile(r"\$\{?TARGET(?:ARCH|PLATFORM|OS|VARIANT)\b|\bxx-")
C_TOOLS = {"gcc", "g++", "cc", "c++", "clang", "clang++", "make", "gmake", "cmake", "ninja",
           "meson", "configure", "autoreconf"}
NATIVE_NPM = {
    "bcrypt", "sharp", "sqlite3", "better-sqlite3", "canvas", "node-sass", "argon2",
    "bufferutil", "utf-8-validate", "grpc", "leveldown", "re2", "node-pty", "cpu-features",
    "ssh2", "usb", "serialport", "@serialport/bindings-cpp", "kerberos", "zeromq", "isolated-vm",
    "esbuild", "@swc/core", "lightningcss", "@parcel/watcher", "microtime", "farmhash",
    "node-rdkafka", "oracledb", "libxmljs", "libxmljs2", "hiredis", "deasync", "fsevents",
}
_NATIVE_CMDS = {"node-gyp", "prebuild-install", "node-pre-gyp"}
_NATIVE_PKGS = {"build-base", "build-essential", "g++", "gcc", "make"}
#: Paths that are build output, the same for every architecture once built.
ASSET_PATH = re.compile(r"(?:^|/)(?:dist|build|out|public|static|assets|bundle|\.next|html|www)"
                        r"(?:/|$)|\.(?:tgz|js|mjs|css|html|map|json|svg|png|wasm)$")
DEP_PATH = re.compile(r"node_modules|site-packages|dist-packages|venv|\.local|wheel|\.whl")


@dataclass
class Heavy:
    kind: str  # go, cargo, c, npm, pip
    line: int
    what: str


def commands(st: Stage) -> list[tuple[int, SimpleCommand]]:
    """(line, command) of every simple command in the stage's RUN instructions."""
    out = []
    for inst in st.instructions:
        if inst.keyword != "RUN":
            continue
        texts = [Text(" ".join(inst.json_args), inst.args.marks)] if inst.json_args \
            else inst.texts()
        for t in texts:
            for c in simple_commands(t.value):
                out.append((t.line_at(c.offset), c))
    return out


def heavy_ops(st: Stage) -> list[Heavy]:
    out: list[Heavy] = []
    for line, c in commands(st):
        a0 = c.args[0] if c.args else ""
        name = c.name
        if name in ("go", "xx-go") and (a0 in ("build", "install") or (
                a0 == "run" and any(a.endswith(".go") for a in c.args[1:]))):
            out.append(Heavy("go", line, f"{name} {a0}"))
        elif name in ("cargo", "xx-cargo") and a0 in ("build", "install", "zigbuild"):
            out.append(Heavy("cargo", line, f"{name} {a0}"))
        elif name in C_TOOLS or name.endswith("configure") or \
                re.fullmatch(r"(?:xx-)?(?:[\w.-]+-)?(?:gcc|g\+\+|clang|clang\+\+)", name):
            out.append(Heavy("c", line, name))
        elif (name in ("npm", "pnpm") and a0 in ("ci", "install", "i", "rebuild", "add")) \
                or (name == "yarn" and a0 in ("", "install", "add", "--frozen-lockfile",
                                              "--immutable")):
            out.append(Heavy("npm", line, f"{name} {a0}".strip()))
        elif _is_pip_sdist(c):
            out.append(Heavy("pip", line, c.text.strip()))
    return out


def _is_pip_sdist(c: SimpleCommand) -> bool:
    args = list(c.args)
    if c.name.startswith("python") and args[:2] == ["-m", "pip"]:
        args = args[2:]
    elif c.name == "uv" and args[:1] == ["pip"]:
        args = args[1:]
    elif c.name.startswith("python") and args[:1] == ["setup.py"]:
        return any(a in ("build", "build_ext", "install", "bdist_wheel") for a in args[1:])
    elif not re.fullmatch(r"pip3?(?:\.\d+)?", c.name):
        return False
    if not args or args[0] not in ("install", "wheel"):
        return False
    return any(a.startswith("--no-binary") or a.startswith("git+")
               or re.search(r"\.(?:tar\.gz|tar\.bz2|zip)$", a) is not None for a in args[1:])


def native_npm(ctx: LintContext, st: Stage) -> bool:
    """Whether the stage (or one it is built FROM) builds or installs native Node modules."""
    for s in lineage_stages(ctx, st):
        for _, c in commands(s):
            if c.name in _NATIVE_CMDS or (c.name == "npm" and c.args[:1] == ("rebuild",)):
                return True
            if "--build-from-source" in c.args:
                return True
            pk = set(c.packages)
            if c.name in ("npm", "pnpm", "yarn") and pk & NATIVE_NPM:
                return True
            if c.name not in ("npm", "pnpm", "yarn") and pk & _NATIVE_PKGS:
                return True
    return False


def lineage_stages(ctx: LintContext, st: Stage) -> list[Stage]:
    out = [st]
    for g in ctx.graphs:
        if st.index in g.reachable:
            out.extend(ctx.df.stages[i] for i in g.lineage(st.index)[1:] if ctx.df.stages[i]
                       not in out)
    return out


def stage_text(ctx: LintContext, st: Stage) -> str:
    """Every instruction of the stage and the ENV/ARG of the stages it is built FROM."""
    parts = [inst.full_text() for inst in st.instructions]
    for s in lineage_stages(ctx, st)[1:]:
        parts.extend(i.full_text() for i in s.instructions if i.keyword in ("ENV", "ARG"))
    return "\n".join(parts)


def target_aware(ctx: LintContext, st: Stage) -> bool:
    return TARGET_AWARE.search(stage_text(ctx, st)) is not None


def output_paths(ctx: LintContext, st: Stage) -> list[tuple[Stage, int, list[str]]]:
    """(consumer stage, line, source paths) of what reachable stages take out of ``st``."""
    out = []
    seen: set[int] = set()
    for g in ctx.graphs:
        for u in g.consumers(st.index):
            if id(u.inst) in seen:
                continue
            seen.add(id(u.inst))
            out.append((ctx.df.stages[u.consumer], u.inst.line, u.paths))
    return out


def workdirs(ctx: LintContext, st: Stage) -> set[str]:
    out: set[str] = set()
    for s in lineage_stages(ctx, st):
        for inst in s.instructions:
            if inst.keyword == "WORKDIR":
                out.add(inst.args.value.strip().rstrip("/") or "/")
    return out
