"""Architecture words and the shell constructs that choose between them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from polyarch.lint.shell import split_outside_quotes, tokenize

ARCH_FAMILY: dict[str, str] = {
    "amd64": "amd64", "x86_64": "amd64", "x86-64": "amd64", "x64": "amd64", "linux64": "amd64",
    "arm64": "arm64", "aarch64": "arm64", "arm64v8": "arm64",
    "armhf": "arm", "armv7": "arm", "armv7l": "arm", "armel": "arm", "armv6l": "arm",
    "arm32v7": "arm", "arm32v6": "arm",
    "ppc64le": "ppc64le", "ppc64el": "ppc64le", "s390x": "s390x",
    "i386": "386", "i686": "386", "riscv64": "riscv64",
}
#: Values a ``*ARCH=`` setting (GOARCH, npm_config_arch...) takes beyond the words above.
SETTING_FAMILY: dict[str, str] = {**ARCH_FAMILY, "arm": "arm", "386": "386"}
#: Architecture words in URLs, file names, paths and values, in any casing
#: (``linux64`` is what Chrome for Testing and Firefox call x86-64 Linux).
ARCH_RE = re.compile(
    r"(?<![A-Za-z0-9])(x86_64|x86-64|amd64|x64|linux64|aarch64|arm64|armhf|armv7l|armv7|armel"
    r"|armv6l|ppc64le|ppc64el|s390x|i386|i686|riscv64)(?![A-Za-z0-9])",
    re.IGNORECASE,
)


def family(word: str) -> str:
    """The architecture family of a word ARCH_RE matched (any casing)."""
    return ARCH_FAMILY[word.lower()]


#: Architecture words in image names/tags: ``arm64v8/alpine``, ``nonroot-arm64``, ``:arm64v8-3.24``.
IMAGE_ARCH_RE = re.compile(
    r"(?<![A-Za-z0-9])(amd64|x86_64|arm64v8|arm64|aarch64|arm32v7|arm32v6|armhf|ppc64le|s390x"
    r"|i386|riscv64)(?![A-Za-z0-9])"
)
#: Commands that report the architecture of the machine (or emulated machine) running them.
RUNTIME_DETECT = re.compile(
    r"\buname\s+-[a-z]*[mpi]|dpkg\s+--print-architecture|apk\s+--print-arch"
    r"|\$\(\s*arch\s*\)|`\s*arch\s*`|\bdpkg-architecture\b|/etc/apk/arch\b"
    r"|%\{?_?arch\}?|%\{ARCH\}|\brpm\s+--eval|process\.arch\b|platform\.machine\(\)"
)
#: ``xx-info`` reports the target (it reads TARGETPLATFORM), wherever it runs.
TARGET_DETECT = re.compile(r"\bxx-info\b")
#: Variables the shell itself sets to the machine's architecture.
SHELL_ARCH_VARS = frozenset({"HOSTTYPE", "MACHTYPE"})


@lru_cache(maxsize=512)
def source_re(names: frozenset[str], machine: bool = True) -> re.Pattern[str]:
    """What tells the architecture: a reference to one of ``names`` (variables whose value
    follows the platform), ``xx-info``, and with ``machine`` the commands that report the
    running machine's architecture."""
    parts = [TARGET_DETECT.pattern]
    variables = sorted(re.escape(n) for n in names if not n.startswith("@"))
    files = sorted(re.escape(n[1:]) for n in names if n.startswith("@"))
    if variables:
        parts.append(rf"\$\{{?#?(?:{'|'.join(variables)})(?![A-Za-z0-9_])")
    if files:
        # A file written from such a value, read back: $(cat /t), $(< dir/t).
        parts.append(rf"(?:\bcat\s+|<\s*)[\"']?(?:[^\s\"'()]*/)?(?:{'|'.join(files)})(?![\w.-])")
    if machine:
        parts.append(RUNTIME_DETECT.pattern)
    return re.compile("|".join(parts))


_NAME_WORD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\+?=")


@lru_cache(maxsize=4096)
def assignments(script: str) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(name, value, heads of the case/if blocks around it) of every ``NAME=value`` word
    in a shell script or an ARG/ENV argument list: leading assignments, ``export X=``,
    ``make VAR=``, ``env VAR=``, ``go env -w VAR=`` alike."""
    blocks = block_ranges(script, "case", "esac", r"\bin\b") + \
        block_ranges(script, "if", "fi", r"\bthen\b")
    out = []
    for w in tokenize(script):
        if isinstance(w, str):
            continue
        m = _NAME_WORD.match(w.raw)
        if m is None:
            continue
        heads = tuple(h for a, b, h in blocks if a <= w.start < b)
        out.append((m.group(1), w.raw[m.end():], heads))
    return tuple(out)


def arch_vars(texts: Iterable[str], seed: Iterable[str], machine: bool) -> frozenset[str]:
    """Names whose value follows the platform, decided by what they are assigned, never
    by how they are spelled: ``seed`` (the automatic platform ARGs), and every name
    assigned from an expression that refers to one of them, runs ``xx-info`` (or with
    ``machine``, ``uname -m``, ``dpkg --print-architecture``...), or is assigned inside a
    ``case``/``if`` that branches on one."""
    names = set(seed)
    texts = list(texts)
    pending = [a for t in texts for a in assignments(t)]
    # Files written by a statement: the value passes through them (`echo $X > /t`, or a
    # `case` on the target writing each branch's value); named "@<file name>".
    pending += [(f"@{name}", stmt, heads) for t in texts for name, stmt, heads in _writes(t)]
    changed = True
    while changed and pending:
        changed = False
        rx = source_re(frozenset(names), machine)
        rest = []
        for name, value, heads in pending:
            if name in names:
                continue
            if rx.search(value) or any(rx.search(h) for h in heads):
                names.add(name)
                changed = True
            else:
                rest.append((name, value, heads))
        pending = rest
    return frozenset(names)


_WRITE = re.compile(r"(?<![0-9&])(?:>>?|\btee\s+(?:-a\s+)?)\s*[\"']?([^\s;&|()\"'<>]+)")


@lru_cache(maxsize=4096)
def _writes(script: str) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(file name, the statement writing it, heads of the case/if blocks around it) of
    every file a shell script writes with ``>``, ``>>`` or ``tee``."""
    if ">" not in script and "tee" not in script:
        return ()
    blocks = block_ranges(script, "case", "esac", r"\bin\b") + \
        block_ranges(script, "if", "fi", r"\bthen\b")
    out = []
    for off, stmt in split_outside_quotes(script, _STMT_SEP):
        for m in _WRITE.finditer(stmt):
            path = m.group(1)
            if path.startswith(("&", "/dev/")) or "$" in path:
                continue
            heads = tuple(h for a, b, h in blocks if a <= off + m.start() < b)
            out.append((path.rsplit("/", 1)[-1], stmt[:m.start()], heads))
    return tuple(out)


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


def block_ranges(script: str, opener: str, closer: str,
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


def selected_ranges(script: str, source: re.Pattern[str]) -> list[tuple[int, int]]:
    """Ranges of a shell script where architecture words are chosen by an arch source:
    ``case $TARGETARCH in ...``, ``if [ "$(uname -m)" = ... ]``, a statement with a test
    on an arch source, or a command mapping one (``sed s/amd64/x86_64/ <<< $TARGETARCH``).
    Every rule that asks "is this architecture word chosen per platform?" asks here."""
    ranges: list[tuple[int, int]] = []
    for s, e, head in block_ranges(script, "case", "esac", r"\bin\b"):
        if source.search(head):
            ranges.append((s, e))
    for s, e, head in block_ranges(script, "if", "fi", r"\bthen\b"):
        if source.search(head):
            ranges.append((s, e))
    for off, stmt in split_outside_quotes(script, _STMT_SEP):
        if not source.search(stmt):
            continue
        if re.match(r"\s*(?:\[|test\b|if\b)", stmt):
            ranges.append((off, off + len(stmt)))
            continue
        for coff, cmd in split_outside_quotes(stmt, re.compile(r"&&|\|\|")):
            if source.search(cmd):
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


def case_branches(script: str, source: re.Pattern[str]) -> list[tuple[str, int, int]]:
    """(pattern, body start, body end) of each branch of the ``case`` blocks whose word
    is an architecture ``source`` (``case "$TARGETARCH" in arm64) ... ;; esac``)."""
    out: list[tuple[str, int, int]] = []
    for s, e, head in block_ranges(script, "case", "esac", r"\bin\b"):
        if not source.search(head):
            continue
        i = s + len(head) + 2  # past "in"
        body_end = e - 4  # before "esac"
        while i < body_end:
            close = script.find(")", i, body_end)
            if close < 0:
                break
            pattern = script[i:close].replace("\\\n", " ").strip().lstrip("(").strip()
            stop = script.find(";;", close, body_end)
            stop = body_end if stop < 0 else stop
            out.append((pattern, close + 1, stop))
            i = stop + 2
    return out
