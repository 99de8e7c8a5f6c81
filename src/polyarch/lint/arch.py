"""Architecture words and the shell constructs that choose between them."""

from __future__ import annotations

import re

from polyarch.lint.shell import split_outside_quotes

ARCH_FAMILY: dict[str, str] = {
    "amd64": "amd64", "x86_64": "amd64", "x86-64": "amd64", "x64": "amd64",
    "arm64": "arm64", "aarch64": "arm64", "arm64v8": "arm64",
    "armhf": "arm", "armv7": "arm", "armv7l": "arm", "armel": "arm", "armv6l": "arm",
    "arm32v7": "arm", "arm32v6": "arm",
    "ppc64le": "ppc64le", "ppc64el": "ppc64le", "s390x": "s390x",
    "i386": "386", "i686": "386", "riscv64": "riscv64",
}
ARCH_RE = re.compile(
    r"(?<![A-Za-z0-9])(x86_64|x86-64|amd64|x64|aarch64|arm64|armhf|armv7l|armv7|armel|armv6l"
    r"|ppc64le|ppc64el|s390x|i386|i686|riscv64)(?![A-Za-z0-9])"
)
#: Architecture words in image names/tags: ``arm64v8/alpine``, ``nonroot-arm64``, ``:arm64v8-3.24``.
IMAGE_ARCH_RE = re.compile(
    r"(?<![A-Za-z0-9])(amd64|x86_64|arm64v8|arm64|aarch64|arm32v7|arm32v6|armhf|ppc64le|s390x"
    r"|i386|riscv64)(?![A-Za-z0-9])"
)
#: Something that tells the architecture: a platform variable or a detection command.
ARCH_SOURCE = re.compile(
    r"\$\{?[A-Za-z_]*(?i:arch|platform)[A-Za-z0-9_]*"
    r"|\buname\s+-[a-z]*[mpi]|dpkg\s+--print-architecture|\bdpkg-architecture\b"
    r"|apk\s+--print-arch|\$\(\s*arch\s*\)|`\s*arch\s*`|\bxx-info\b|%\{?_arch\}?"
    r"|\brpm\s+--eval"
)
RUNTIME_DETECT = re.compile(
    r"\buname\s+-[a-z]*[mpi]|dpkg\s+--print-architecture|apk\s+--print-arch"
    r"|\$\(\s*arch\s*\)|`\s*arch\s*`|\bdpkg-architecture\b"
)
FILE_EXT = re.compile(
    r"\.(?:tar\.gz|tgz|tar\.xz|txz|tar\.bz2|tbz2?|tar\.zst|tar|zip|deb|rpm|apk|gz|xz|bz2|zst"
    r"|so(?:\.\d+)*|a|bin|run|sh|appimage|jar|whl|exe|msi|pkg|img|iso)\b",
    re.IGNORECASE,
)
_WORD_STOP = set(" \t\n'\"`;|&()<>,")
_STMT_SEP = re.compile(r";;|;|\n")


def word_around(s: str, start: int, end: int) -> str:
    a = start
    while a > 0 and s[a - 1] not in _WORD_STOP:
        a -= 1
    b = end
    while b < len(s) and s[b] not in _WORD_STOP:
        b += 1
    return s[a:b]


def _block_ranges(script: str, opener: str, closer: str,
                  head_end: str | None) -> list[tuple[int, int, str]]:
    """(start, end, head) of ``case ... esac`` / ``if ... fi`` blocks (nesting respected)."""
    out: list[tuple[int, int, str]] = []
    tok = re.compile(rf"(?<![\w$-])({opener}|{closer})(?![\w-])")
    stack: list[int] = []
    for m in tok.finditer(script):
        if m.group(1) == opener:
            stack.append(m.start())
        elif stack:
            s = stack.pop()
            head = script[s:m.end()]
            if head_end is not None:
                hm = re.search(head_end, head)
                head = head[: hm.start()] if hm else head
            out.append((s, m.end(), head))
    return out


def selected_ranges(script: str) -> list[tuple[int, int]]:
    """Ranges of a shell script where architecture words are chosen by an arch source:
    ``case $TARGETARCH in ...``, ``if [ "$(uname -m)" = ... ]``, a statement with a test
    on an arch source, or a command mapping one (``sed s/amd64/x86_64/ <<< $TARGETARCH``).
    Every rule that asks "is this architecture word chosen per platform?" asks here."""
    ranges: list[tuple[int, int]] = []
    for s, e, head in _block_ranges(script, "case", "esac", r"\bin\b"):
        if ARCH_SOURCE.search(head):
            ranges.append((s, e))
    for s, e, head in _block_ranges(script, "if", "fi", r"\bthen\b"):
        if ARCH_SOURCE.search(head):
            ranges.append((s, e))
    for off, stmt in split_outside_quotes(script, _STMT_SEP):
        if not ARCH_SOURCE.search(stmt):
            continue
        if re.match(r"\s*(?:\[|test\b|if\b)", stmt):
            ranges.append((off, off + len(stmt)))
            continue
        for coff, cmd in split_outside_quotes(stmt, re.compile(r"&&|\|\|")):
            if ARCH_SOURCE.search(cmd):
                ranges.append((off + coff, off + coff + len(cmd)))
    return ranges


def captured_ranges(script: str) -> list[tuple[int, int]]:
    """``NAME=$(...)`` command substitutions: what they download is read into a
    variable (a version number, a checksum), not installed."""
    out = []
    for m in re.finditer(r"(?<![\w$])[A-Za-z_][A-Za-z0-9_]*=\$\(", script):
        depth = 1
        i = m.end()
        while i < len(script) and depth:
            if script[i] == "(":
                depth += 1
            elif script[i] == ")":
                depth -= 1
            i += 1
        out.append((m.start(), i))
    return out
