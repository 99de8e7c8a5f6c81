"""PA001's reading of values by where they are used and what they name: a global ARG used
only in its own architecture's branch, ``case`` patterns read as the target's values,
toolchains named by a host triple, other operating systems' files."""

from __future__ import annotations

import re
from collections.abc import Iterator

from polyarch.lint.arch import (
    ARCH_FAMILY,
    ARCH_RE,
    SETTING_FAMILY,
    block_ranges,
    case_branches,
    family,
)
from polyarch.lint.context import LintContext
from polyarch.lint.parser import parse_arg
from polyarch.lint.rules.common import lineage_stages
from polyarch.lint.shell import blank_comments

#: Another operating system's name in a file name, URL or platform (``darwin/amd64``,
#: ``tool-windows-x64.zip``): that file is for no Linux target.
OTHER_OS = re.compile(r"(?<![A-Za-z])(?:darwin|windows|win(?:32|64|nt)?|freebsd|openbsd"
                      r"|netbsd|macos|osx)(?![A-Za-z])", re.IGNORECASE)


#: A toolchain named by its host triple: rustup's ``--toolchain nightly-x86_64-unknown-linux-gnu``,
#: ``rustup toolchain install``/``default``, ``cargo +stable-aarch64-...``, rustup-init's
#: ``--default-host``, autoconf's ``--build``/``--host``. The triple is the architecture the
#: toolchain runs on or builds for: a setting, whatever the rest of the name.
_TOOLCHAIN = re.compile(
    r"(?:--(?:toolchain|default-host|default-toolchain|host|build)(?:=|\s+)"
    r"|\brustup\s+(?:toolchain\s+(?:install|add|link)|default|install|override\s+set)\s+"
    r"|\bcargo\s+\+)['\"]?([^\s'\";&|]+)")
_TRIPLE_IN = re.compile(r"(?<![A-Za-z0-9])(x86_64|aarch64|arm64|armv7l?|i686|i386|ppc64le|s390x"
                        r"|riscv64(?:gc)?)-(?:unknown|pc|linux|alpine|none)(?![A-Za-z0-9])")


def toolchains(script: str) -> Iterator[tuple[int, str, str]]:
    """(offset, toolchain name, architecture) of every toolchain named by a Linux host
    triple (``--toolchain ${NIGHTLY}-x86_64-unknown-linux-gnu``)."""
    for m in _TOOLCHAIN.finditer(script):
        value = m.group(1)
        if OTHER_OS.search(value):
            continue
        t = _TRIPLE_IN.search(value)
        fam = ARCH_FAMILY.get(t.group(1).lower()) if t else None
        if t is None or fam is None:
            continue
        yield m.start(1) + t.start(), value, fam


def pattern_families(pattern: str) -> set[str]:
    """Architectures a ``case`` pattern on the target matches: architecture words, and
    the values TARGETARCH/TARGETPLATFORM take (``arm``, ``386``, ``linux/arm/v7``)."""
    out = {family(m.group(1)) for m in ARCH_RE.finditer(pattern)}
    for alt in pattern.split("|"):
        word = alt.strip().strip("'\"").lower()
        parts = word.split("/")
        if len(parts) >= 2 and parts[0] in ("linux", "*"):
            word = parts[1]
        if word in SETTING_FAMILY:
            out.add(SETTING_FAMILY[word])
    return out


def guarded_ranges(script: str, fam: str) -> list[tuple[int, int]]:
    """Ranges of a shell script that run only when a test names architecture ``fam``: the
    ``then`` part of ``if [ "$X" = arm64 ]`` and a ``case`` branch ``arm64|aarch64)``,
    whatever the variable tested is. A value naming ``fam`` used there is used only for
    that architecture."""
    out = []
    for s, e, head in block_ranges(script, "if", "fi", r"\bthen\b"):
        if fam in {family(m.group(1)) for m in ARCH_RE.finditer(head)}:
            rest = re.search(r"(?<![\w-])(?:elif|else)(?![\w-])", script[s + len(head):e])
            out.append((s, s + len(head) + rest.start() if rest else e))
    for pattern, a, b in case_branches(script, _ANY):
        if fam in pattern_families(pattern) and pattern.strip("'\"") != "*":
            out.append((a, b))
    return out


_ANY = re.compile(r"\S")


def used_unguarded(ctx: LintContext, name: str, fam: str) -> bool:
    """Whether the value of global ARG ``name`` (naming architecture ``fam``) is used
    where every target gets it: in a ``FROM`` line, another global default, or a stage
    that declares the ARG, outside shell branches that run only for ``fam``
    (``if [ "$PACKAGE_ARCH" = arm64 ]; then ... ${MALI_PKG_VER}``)."""
    ref = re.compile(rf"\$\{{?{re.escape(name)}(?![A-Za-z0-9_])")
    if any(ref.search(d.default or "") for d in ctx.df.global_args):
        return True
    for st in ctx.reachable_stages():
        if ref.search(st.image) or ref.search(st.platform or ""):
            return True
        declared = [a for s in lineage_stages(ctx, st) for inst in s.instructions
                    if inst.keyword == "ARG" for a in parse_arg(inst, ctx.df.escape)
                    if a.name == name]
        if not declared or all(a.default is not None for a in declared):
            continue  # empty in this stage, or its own default
        for inst in st.instructions:
            if inst.keyword == "ARG":
                continue
            for t in inst.texts():
                script = blank_comments(t.value) if inst.keyword == "RUN" else t.value
                guarded = guarded_ranges(script, fam) if inst.keyword == "RUN" else []
                for m in ref.finditer(script):
                    if not any(a <= m.start() < b for a, b in guarded):
                        return True
    return False
