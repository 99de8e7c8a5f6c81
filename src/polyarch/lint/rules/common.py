"""Helpers several rules share: heavy work in a stage, what leaves it, target awareness."""

from __future__ import annotations

import re
from dataclasses import dataclass

from polyarch.lint.arch import SHELL_ARCH_VARS, arch_vars, source_re
from polyarch.lint.context import LintContext
from polyarch.lint.graph import PLATFORM_ARGS, TARGET_VARS
from polyarch.lint.model import Stage, Text
from polyarch.lint.parser import parse_arg, parse_env
from polyarch.lint.shell import SimpleCommand, simple_commands

XX_TOOL = re.compile(r"\bxx-(?:go|cargo|clang|gcc|cc|c\+\+|clang\+\+|apk|apt|apt-get|info|verify"
                     r"|windres|ld|cmake)\b")
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
                        r"(?:/|$)|\.(?:tgz|js|mjs|css|html|map|json|svg|png|wasm|jar|war|ear)$")
DEP_PATH = re.compile(r"node_modules|site-packages|dist-packages|venv|\.local|wheel|\.whl")


@dataclass
class Heavy:
    kind: str  # go, cargo, c, make, java, dotnet, npm, pip
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


_JAVA_GOALS = {"package", "install", "verify", "build", "assemble", "jar", "bootJar", "war",
               "shadowJar", "bootWar", "installDist", "distTar", "compile"}


def heavy_ops(st: Stage) -> list[Heavy]:
    out: list[Heavy] = []
    for line, c in commands(st):
        a0 = c.args[0] if c.args else ""
        name = c.name
        # A wrapper that runs the toolchain (`eleven go build`, `time cargo build`).
        if name not in ("go", "xx-go", "cargo", "xx-cargo") and a0 in ("go", "cargo") \
                and len(c.args) > 1 and c.args[1] in ("build", "install"):
            out.append(Heavy("go" if a0 == "go" else "cargo", line, f"{name} {a0} {c.args[1]}"))
        elif name not in ("go", "xx-go") and any(k == "GOARCH" for k, _ in c.assigns):
            # A command given GOARCH (`GOARCH=arm64 ./build.sh`) runs a Go build for it.
            out.append(Heavy("go", line, f"GOARCH=... {name}"[:40]))
        elif name in ("go", "xx-go") and (a0 in ("build", "install") or (
                a0 == "run" and any(a.endswith(".go") for a in c.args[1:]))):
            out.append(Heavy("go", line, f"{name} {a0}"))
        elif name in ("cargo", "xx-cargo") and a0 in ("build", "install", "zigbuild"):
            out.append(Heavy("cargo", line, f"{name} {a0}"))
        elif name in ("make", "gmake"):
            out.append(Heavy("make", line, " ".join((name, *c.args[:2]))[:40]))
        elif name in C_TOOLS or name.endswith("configure") or \
                re.fullmatch(r"(?:xx-)?(?:[\w.-]+-)?(?:gcc|g\+\+|clang|clang\+\+)", name):
            out.append(Heavy("c", line, name))
        elif name in ("mvn", "mvnw", "gradle", "gradlew") and \
                any(a.split(":")[-1] in _JAVA_GOALS for a in c.args):
            out.append(Heavy("java", line, f"{name} {' '.join(c.args[:3])}"[:40]))
        elif name == "dotnet" and a0 in ("publish", "build", "pack", "msbuild"):
            out.append(Heavy("dotnet", line, f"dotnet {a0}"))
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
        # `setup.py install` / `build` / `bdist_wheel` of the project is `pip install .`:
        # it compiles only when the project has C extensions, which the Dockerfile does not
        # show. `build_ext` is the step that compiles them.
        return "build_ext" in args[1:]
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


def lineage_texts(ctx: LintContext, st: Stage) -> list[str]:
    """Where the stage (and the stages it is built FROM) assign variables: RUN scripts,
    ARG defaults and ENV values as ``NAME=value``, and the global ARG defaults."""
    key = ("texts", st.index)
    if key not in ctx.memo:
        out = [f"{d.name}={d.default}" for d in ctx.df.global_args if d.default is not None]
        for s in reversed(lineage_stages(ctx, st)):
            for inst in s.instructions:
                if inst.keyword == "RUN":
                    out.extend(t.value for t in inst.texts())
                elif inst.keyword == "ARG":
                    out.extend(f"{a.name}={a.default}" for a in parse_arg(inst, ctx.df.escape)
                               if a.default is not None)
                elif inst.keyword == "ENV":
                    out.extend(f"{k}={v}" for k, v in parse_env(inst, ctx.df.escape))
        ctx.memo[key] = out
    texts: list[str] = ctx.memo[key]
    return texts


def runs_for_target(ctx: LintContext, st: Stage) -> bool:
    """Whether some platform runs the stage as itself (so ``uname -m`` there is the target)."""
    return any(v.kind == "target" or (v.kind == "fixed" and v.runs_on is not None
                                      and v.runs_on.architecture == g.platform.architecture)
               for g, v in ctx.reached(st.index))


def arch_source(ctx: LintContext, st: Stage) -> re.Pattern[str]:
    """What in this stage tells an architecture (the target's or the machine's): platform
    ARGs, variables assigned from them or from a detection command, detection commands."""
    key = ("arch", st.index)
    if key not in ctx.memo:
        names = arch_vars(lineage_texts(ctx, st), set(PLATFORM_ARGS) | SHELL_ARCH_VARS, True)
        ctx.memo[key] = source_re(names, True)
    rx: re.Pattern[str] = ctx.memo[key]
    return rx


def target_source(ctx: LintContext, st: Stage) -> re.Pattern[str]:
    """What in this stage follows the *target*: TARGET* ARGs, variables assigned from
    them, ``xx-info``, and detection commands only where the stage runs for the target."""
    key = ("target", st.index)
    if key not in ctx.memo:
        machine = runs_for_target(ctx, st)
        seed = set(TARGET_VARS) | (SHELL_ARCH_VARS if machine else set())
        names = arch_vars(lineage_texts(ctx, st), seed, machine)
        ctx.memo[key] = source_re(names, machine)
    rx: re.Pattern[str] = ctx.memo[key]
    return rx


def declared_target_args(ctx: LintContext, st: Stage) -> bool:
    """Whether the stage (or one it is built FROM) declares a TARGET* ARG: every command
    its RUNs start then has it in the environment (a Makefile reading TARGETARCH)."""
    for s in lineage_stages(ctx, st):
        for inst in s.instructions:
            if inst.keyword == "ARG" and any(a.name in TARGET_VARS
                                             for a in parse_arg(inst, ctx.df.escape)):
                return True
    return False


def target_aware(ctx: LintContext, st: Stage) -> bool:
    """The stage names the target somewhere: a value that follows it is used, an ``xx-``
    cross tool runs, or a TARGET* ARG is declared for its commands."""
    text = stage_text(ctx, st)
    return (target_source(ctx, st).search(text) is not None or XX_TOOL.search(text) is not None
            or declared_target_args(ctx, st))


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
