"""Lint a Dockerfile for multi-architecture pitfalls.

Two parts: a Dockerfile parser that understands what BuildKit understands (parser
directives, ``# escape=``, line continuations, comments inside continuations,
heredocs, JSON and shell form, global and per-stage ``ARG``, stages and references
between them), and a set of rules that walk the parsed file:

* ``PA001`` architecture hard-coded in a download, path or ``*ARCH=`` setting;
* ``PA002`` ``FROM --platform=<fixed>`` pinning a stage;
* ``PA003`` compile/install work under emulation that could be cross-compiled, and
  build-platform stages whose output is built for the wrong machine;
* ``PA004`` a platform ``ARG`` used in a stage that does not declare it;
* ``PA005`` a base image that lacks a target platform (``PA006``: could not check);
* ``PA007`` architecture detected at build time in a ``$BUILDPLATFORM`` stage;
* ``PA000`` the file cannot be parsed the way BuildKit would.

Nothing here touches the network: rule PA005 asks an injected ``platform_lookup``.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from polyarch.platforms import DEFAULT_PLATFORMS, Platform, parse_platform
from polyarch.refs import ImageRef, ReferenceError, parse_ref

Severity = Literal["error", "warning", "info", "note"]

#: Higher is worse; ``--fail-on`` compares against this.
SEVERITY_RANK: dict[str, int] = {"note": 0, "info": 1, "warning": 2, "error": 3}

PlatformLookup = Callable[[ImageRef], list[Platform] | None]


class LookupFailed(Exception):
    """Raised by a platform lookup that could not ask the registry; the message says why."""


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    summary: str


RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("PA000", "parse-error", "The Dockerfile cannot be parsed the way BuildKit parses it."),
        Rule("PA001", "hardcoded-arch", "Architecture hard-coded in a download, path or setting."),
        Rule("PA002", "fixed-from-platform", "FROM --platform pins a stage to one platform."),
        Rule("PA003", "emulated-build", "Compile/install work that runs under emulation or "
             "is built for the wrong machine."),
        Rule("PA004", "undeclared-platform-arg", "Platform ARG used in a stage without "
             "being declared in that stage."),
        Rule("PA005", "base-missing-platform", "Base image does not provide every target "
             "platform."),
        Rule("PA006", "base-not-checked", "Base image platforms could not be looked up."),
        Rule("PA007", "build-platform-detection", "Architecture detected at build time in a "
             "$BUILDPLATFORM stage reports the build machine."),
    )
}


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    line: int
    message: str
    hint: str
    path: str = "Dockerfile"
    stage: str | None = None

    @property
    def name(self) -> str:
        return RULES[self.rule].name

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "name": self.name,
            "severity": self.severity,
            "path": self.path,
            "line": self.line,
            "stage": self.stage,
            "message": self.message,
            "hint": self.hint,
        }


# ---------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """A piece of Dockerfile text that may span several physical lines.

    ``marks`` maps offsets in ``value`` to 1-based line numbers: each entry is the
    offset where a physical line's contribution starts.
    """

    value: str
    marks: tuple[tuple[int, int], ...]

    def line_at(self, pos: int) -> int:
        line = self.marks[0][1]
        for off, ln in self.marks:
            if off > pos:
                break
            line = ln
        return line

    def tail(self, start: int) -> Text:
        """The text from ``start`` on, line marks kept."""
        marks = [(max(off - start, 0), ln) for off, ln in self.marks if off >= start]
        if not marks or marks[0][0] != 0:
            marks.insert(0, (0, self.line_at(start)))
        return Text(self.value[start:], tuple(marks))


@dataclass(frozen=True)
class Heredoc:
    name: str
    body: Text
    #: ``<<"EOF"`` / ``<<'EOF'``: the builder does not expand variables in the body.
    quoted: bool
    #: ``<<-EOF``: leading tabs are stripped from body lines.
    strip_tabs: bool


@dataclass
class Instruction:
    keyword: str
    line: int
    end_line: int
    #: The instruction's arguments after flags, continuation lines joined.
    args: Text
    flags: dict[str, str | None]
    #: The parsed list for JSON (exec) form, else ``None``.
    json_args: list[str] | None = None
    heredocs: list[Heredoc] = field(default_factory=list)

    def texts(self) -> list[Text]:
        """The arguments and every heredoc body: everything a rule may search."""
        return [self.args, *(h.body for h in self.heredocs)]

    def full_text(self) -> str:
        return "\n".join(t.value for t in self.texts())


@dataclass
class ArgDecl:
    name: str
    default: str | None
    line: int


@dataclass
class Stage:
    index: int
    name: str | None
    image: str
    platform: str | None
    from_inst: Instruction
    instructions: list[Instruction] = field(default_factory=list)
    #: Index of the earlier stage this one is built ``FROM``, if any.
    parent: int | None = None
    #: ``"target"`` (runs on each target platform, emulated where not native),
    #: ``"build"`` (``$BUILDPLATFORM``: native), ``"fixed"``, or ``"unknown"``.
    mode: str = "target"

    @property
    def label(self) -> str:
        return self.name if self.name is not None else f"#{self.index}"


@dataclass
class Dockerfile:
    directives: dict[str, str]
    escape: str
    global_args: list[ArgDecl]
    stages: list[Stage]
    #: Structural problems found while parsing: (line, message).
    problems: list[tuple[int, str]]

    def stage_by_ref(self, ref: str, before: int | None = None) -> Stage | None:
        """The stage a ``FROM``/``--from`` value names (name or index), if any."""
        limit = len(self.stages) if before is None else before
        if ref.isdigit():
            i = int(ref)
            return self.stages[i] if i < limit else None
        low = ref.lower()
        for st in self.stages[:limit]:
            if st.name == low:
                return st
        return None

    def global_defaults(self) -> dict[str, str | None]:
        return {a.name: a.default for a in self.global_args}


_DIRECTIVE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*$")
_HEREDOC = re.compile(r"(?<!<)<<(?!<)(-?)(\"|')?([A-Za-z_][A-Za-z0-9_]*)(?(2)\2)")
_KNOWN = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
    "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME",
    "WORKDIR",
}
_JSON_FORM = {"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"}
_FLAGGED = {"FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"}


def parse(text: str) -> Dockerfile:
    """Parse a Dockerfile into global ARGs and stages."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    directives: dict[str, str] = {}
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        if not m or m.group(1).lower() in directives:
            break
        directives[m.group(1).lower()] = m.group(2)
        i += 1
    problems: list[tuple[int, str]] = []
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        problems.append((1, f"invalid escape directive {escape!r}: must be \\ or `"))
        escape = "\\"
    cont = re.compile(re.escape(escape) + r"[ \t]*$")

    instructions: list[Instruction] = []
    n = len(lines)
    while i < n:
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = i + 1
        joined = ""
        marks: list[tuple[int, int]] = []
        cur = raw
        while True:
            m = cont.search(cur)
            piece = cur[: m.start()] if m else cur
            marks.append((len(joined), i + 1))
            joined += piece
            i += 1
            if not m:
                break
            # Inside a continuation, comment lines and empty lines are dropped.
            while i < n and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                i += 1
            if i >= n:
                break
            cur = lines[i]
        end = i
        whole = Text(joined, tuple(marks))
        km = re.match(r"\s*(\S+)\s*", joined)
        if km is None:  # only a line continuation: nothing to parse (i is past it)
            continue
        keyword = km.group(1).upper()
        rest_off = km.end()
        flags: dict[str, str | None] = {}
        if keyword in _FLAGGED:
            while True:
                fm = re.match(r"--([A-Za-z][A-Za-z0-9-]*)(?:=(\S*))?\s*", joined[rest_off:])
                if not fm:
                    break
                flags[fm.group(1).lower()] = fm.group(2)
                rest_off += fm.end()
        args = whole.tail(rest_off)
        inst = Instruction(keyword, start, end, args, flags)
        if keyword not in _KNOWN:
            problems.append((start, f"unknown instruction {km.group(1)!r}"))
        if keyword in _JSON_FORM and args.value.strip().startswith("["):
            try:
                parsed = json.loads(args.value.strip())
            except (ValueError, RecursionError):  # not JSON, or nested too deeply for it
                parsed = None
            if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
                inst.json_args = parsed
        if keyword in ("RUN", "COPY", "ADD") and inst.json_args is None:
            for hm in _HEREDOC.finditer(args.value):
                name, strip_tabs = hm.group(3), hm.group(1) == "-"
                body: list[str] = []
                body_marks: list[tuple[int, int]] = []
                body_start = i
                offset = 0
                closed = False
                while i < n:
                    ln = lines[i]
                    check = ln.lstrip("\t") if strip_tabs else ln
                    i += 1
                    if check == name:
                        closed = True
                        break
                    body_marks.append((offset, i))
                    piece = check if strip_tabs else ln
                    body.append(piece)
                    offset += len(piece) + 1
                if not closed:
                    problems.append((start, f"heredoc <<{name} is never closed (no line "
                                            f"reading exactly {name!r})"))
                if not body_marks:
                    body_marks.append((0, body_start + 1))
                inst.heredocs.append(Heredoc(name, Text("\n".join(body), tuple(body_marks)),
                                             bool(hm.group(2)), strip_tabs))
            inst.end_line = i
        instructions.append(inst)

    global_args: list[ArgDecl] = []
    stages: list[Stage] = []
    df = Dockerfile(directives, escape, global_args, stages, problems)
    for inst in instructions:
        if inst.keyword == "FROM":
            stages.append(_make_stage(df, inst))
        elif not stages:
            if inst.keyword == "ARG":
                global_args.extend(_parse_arg(inst))
            else:
                problems.append((inst.line, f"{inst.keyword} before the first FROM (only ARG "
                                            "may come before FROM)"))
        else:
            stages[-1].instructions.append(inst)
    if not stages and not problems:
        problems.append((1, "no FROM instruction: a Dockerfile needs at least one stage"))
    _assign_modes(df)
    return df


def _make_stage(df: Dockerfile, inst: Instruction) -> Stage:
    words = inst.args.value.split()
    name: str | None = None
    image = words[0] if words else ""
    if not words:
        df.problems.append((inst.line, "FROM without an image"))
    if len(words) == 3 and words[1].lower() == "as":
        name = words[2].lower()
    elif len(words) > 1:
        df.problems.append((inst.line, f"unexpected text after the image in FROM: "
                                       f"{' '.join(words[1:])!r} (expected 'AS name')"))
    st = Stage(len(df.stages), name, image, inst.flags.get("platform"), inst)
    parent = df.stage_by_ref(image, before=st.index) if image and "$" not in image else None
    st.parent = parent.index if parent is not None else None
    return st


def _split_words(s: str) -> list[str]:
    try:
        return shlex.split(s, comments=False, posix=True)
    except ValueError:
        return s.split()


def _parse_arg(inst: Instruction) -> list[ArgDecl]:
    out = []
    for w in _split_words(inst.args.value):
        k, eq, v = w.partition("=")
        out.append(ArgDecl(k, v if eq else None, inst.line))
    return out


def _parse_env(inst: Instruction) -> list[tuple[str, str]]:
    words = _split_words(inst.args.value)
    if words and "=" not in words[0]:
        # Legacy form: ENV KEY value with spaces
        return [(words[0], " ".join(words[1:]))]
    out = []
    for w in words:
        k, _, v = w.partition("=")
        out.append((k, v))
    return out


_VAR = re.compile(
    r"(?<!\\)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)


def expand(s: str, env: Mapping[str, str | None]) -> tuple[str, set[str]]:
    """Expand ``$VAR``/``${VAR}``/``${VAR:-def}``/``${VAR:+alt}`` the way the builder
    does for FROM lines; return the text and the names that had no value."""
    missing: set[str] = set()

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(4)
        op, word = m.group(2), m.group(3) or ""
        val = env.get(name)
        if op in (":-", "-"):
            return val if val else word
        if op in (":+", "+"):
            return word if val else ""
        if val is None:
            missing.add(name)
            return m.group(0)
        return val

    return _VAR.sub(sub, s), missing


_BUILD_VARS = ("BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT")
_TARGET_VARS = ("TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT")
PLATFORM_ARGS = _TARGET_VARS + _BUILD_VARS


def _assign_modes(df: Dockerfile) -> None:
    defaults = {k: v for k, v in df.global_defaults().items() if k not in PLATFORM_ARGS}
    for st in df.stages:
        if st.platform is None:
            st.mode = df.stages[st.parent].mode if st.parent is not None else "target"
            continue
        names = {m.group(1) or m.group(4) for m in _VAR.finditer(st.platform)}
        if names & set(_BUILD_VARS):
            st.mode = "build"
            continue
        if names & set(_TARGET_VARS):
            st.mode = "target"
            continue
        value, missing = expand(st.platform, defaults)
        st.mode = "unknown" if missing or "$" in value else "fixed"


def stage_platform_value(df: Dockerfile, st: Stage) -> str | None:
    """The fixed platform a stage is pinned to, after global ARG defaults."""
    if st.platform is None:
        return None
    value, missing = expand(st.platform, df.global_defaults())
    return None if missing else value


# ---------------------------------------------------------------------------
# Shell helpers
# ---------------------------------------------------------------------------


def _blank_comments(script: str) -> str:
    """Replace shell comments with spaces (offsets are kept)."""
    out: list[str] = []
    for line in script.split("\n"):
        quote = ""
        cut = len(line)
        for j, ch in enumerate(line):
            if quote:
                if ch == quote:
                    quote = ""
            elif ch in "'\"":
                quote = ch
            elif ch == "#" and (j == 0 or line[j - 1] in " \t;&|("):
                cut = j
                break
        out.append(line[:cut] + " " * (len(line) - cut))
    return "\n".join(out)


def _split_outside_quotes(script: str, seps: re.Pattern[str]) -> list[tuple[int, str]]:
    """Split a script at separator matches that are not inside single/double quotes."""
    parts: list[tuple[int, str]] = []
    start = 0
    quote = ""
    j = 0
    while j < len(script):
        ch = script[j]
        if quote:
            if ch == quote:
                quote = ""
            elif quote == '"' and script.startswith("$(", j):
                parts.append((start, script[start:j]))
                j += 2
                start = j
                continue
            j += 1
            continue
        if ch in "'\"":
            quote = ch
            j += 1
            continue
        if ch == "\\":
            j += 2
            continue
        m = seps.match(script, j)
        if m and m.end() > j:
            parts.append((start, script[start:j]))
            j = m.end()
            start = j
            continue
        j += 1
    parts.append((start, script[start:]))
    return parts


_CMD_SEP = re.compile(r"\|\||&&|;;|\$\(|[;|&\n(){}`]")
_STMT_SEP = re.compile(r";;|;|\n")
_PREFIX_WORDS = {"sudo", "env", "exec", "time", "nice", "then", "do", "else", "elif", "if",
                 "while", "until", "!", "command", "eval", "nohup"}


@dataclass(frozen=True)
class SimpleCommand:
    offset: int
    name: str
    args: tuple[str, ...]
    text: str


def simple_commands(script: str) -> list[SimpleCommand]:
    """The simple commands of a shell script: name, arguments, where it starts."""
    out: list[SimpleCommand] = []
    for off, part in _split_outside_quotes(_blank_comments(script), _CMD_SEP):
        words = [(m.start(), m.group(0).strip("'\"")) for m in re.finditer(r"\S+", part)]
        k = 0
        while k < len(words) and (
            words[k][1] in _PREFIX_WORDS or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[k][1])
            or (words[k][1].startswith("-") and k > 0 and words[k - 1][1] in ("sudo", "env"))
        ):
            k += 1
        if k < len(words):
            name = words[k][1].rsplit("/", 1)[-1] if words[k][1].startswith("/") else words[k][1]
            out.append(SimpleCommand(off + words[k][0], name,
                                     tuple(w for _, w in words[k + 1:]), part))
    return out


# ---------------------------------------------------------------------------
# Architecture words
# ---------------------------------------------------------------------------

ARCH_FAMILY: dict[str, str] = {
    "amd64": "amd64", "x86_64": "amd64", "x86-64": "amd64", "x64": "amd64",
    "arm64": "arm64", "aarch64": "arm64",
    "armhf": "arm", "armv7": "arm", "armv7l": "arm", "armel": "arm", "armv6l": "arm",
    "ppc64le": "ppc64le", "ppc64el": "ppc64le", "s390x": "s390x",
    "i386": "386", "i686": "386", "riscv64": "riscv64",
}
_ARCH_RE = re.compile(
    r"(?<![A-Za-z0-9])(x86_64|x86-64|amd64|x64|aarch64|arm64|armhf|armv7l|armv7|armel|armv6l"
    r"|ppc64le|ppc64el|s390x|i386|i686|riscv64)(?![A-Za-z0-9])"
)
#: Something that tells the architecture: a platform variable or a detection command.
_ARCH_SOURCE = re.compile(
    r"\$\{?[A-Za-z_]*(?i:arch|platform)[A-Za-z0-9_]*"
    r"|\buname\s+-[a-z]*[mpi]|dpkg\s+--print-architecture|\bdpkg-architecture\b"
    r"|apk\s+--print-arch|\$\(\s*arch\s*\)|`\s*arch\s*`|\bxx-info\b|%\{?_arch\}?"
)
_RUNTIME_DETECT = re.compile(
    r"\buname\s+-[a-z]*[mpi]|dpkg\s+--print-architecture|apk\s+--print-arch"
    r"|\$\(\s*arch\s*\)|`\s*arch\s*`|\bdpkg-architecture\b"
)
_FILE_EXT = re.compile(
    r"\.(?:tar\.gz|tgz|tar\.xz|txz|tar\.bz2|tbz2?|tar\.zst|tar|zip|deb|rpm|apk|gz|xz|bz2|zst"
    r"|so(?:\.\d+)*|a|bin|run|sh|appimage|jar|whl|exe|msi|pkg|img|iso)\b",
    re.IGNORECASE,
)
_WORD_STOP = set(" \t\n'\"`;|&()<>,")


def _word_around(s: str, start: int, end: int) -> str:
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


def _selected_ranges(script: str) -> list[tuple[int, int]]:
    """Ranges of a shell script where architecture words are chosen by an arch source:
    ``case $TARGETARCH in ...``, ``if [ "$(uname -m)" = ... ]``, a statement with a test
    on an arch source, or a command mapping one (``sed s/amd64/x86_64/ <<< $TARGETARCH``)."""
    ranges: list[tuple[int, int]] = []
    for s, e, head in _block_ranges(script, "case", "esac", r"\bin\b"):
        if _ARCH_SOURCE.search(head):
            ranges.append((s, e))
    for s, e, head in _block_ranges(script, "if", "fi", r"\bthen\b"):
        if _ARCH_SOURCE.search(head):
            ranges.append((s, e))
    for off, stmt in _split_outside_quotes(script, _STMT_SEP):
        if not _ARCH_SOURCE.search(stmt):
            continue
        if re.match(r"\s*(?:\[|test\b|if\b)", stmt):
            ranges.append((off, off + len(stmt)))
            continue
        for coff, cmd in _split_outside_quotes(stmt, re.compile(r"&&|\|\|")):
            if _ARCH_SOURCE.search(cmd):
                ranges.append((off + coff, off + coff + len(cmd)))
    return ranges


# ---------------------------------------------------------------------------
# Lint
# ---------------------------------------------------------------------------


DEFAULT_TARGETS: tuple[Platform, ...] = tuple(parse_platform(x) for x in DEFAULT_PLATFORMS)


def lint(
    text: str,
    *,
    path: str = "Dockerfile",
    platforms: Sequence[Platform] = DEFAULT_TARGETS,
    platform_lookup: PlatformLookup | None = None,
) -> list[Finding]:
    """Lint Dockerfile ``text`` for building ``platforms``; findings sorted by line.

    ``platform_lookup(ref)`` returns the platforms an image provides, or ``None`` (or
    raises :class:`LookupFailed`) when it cannot tell; then rule PA005 gives a note
    (PA006) instead. Without a lookup, base images are not checked.
    """
    df = parse(text)
    ctx = _Ctx(df, path, tuple(platforms))
    for line, msg in df.problems:
        ctx.add("PA000", "error", line, msg, "fix the syntax; BuildKit would refuse this file",
                None)
    if df.stages:
        _rule_hardcoded_arch(ctx)
        _rule_fixed_platform(ctx)
        _rule_emulated_build(ctx)
        _rule_undeclared_args(ctx)
        _rule_build_platform_detection(ctx)
        if platform_lookup is not None:
            _rule_base_platforms(ctx, platform_lookup)
    seen: set[tuple[str, int, str]] = set()
    out: list[Finding] = []
    for f in sorted(ctx.findings, key=lambda f: (f.line, f.rule)):
        key = (f.rule, f.line, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


class _Ctx:
    def __init__(self, df: Dockerfile, path: str, platforms: tuple[Platform, ...]) -> None:
        self.df = df
        self.path = path
        self.platforms = platforms
        self.findings: list[Finding] = []

    def add(self, rule: str, severity: Severity, line: int, message: str, hint: str,
            stage: Stage | None) -> None:
        self.findings.append(Finding(rule, severity, line, message, hint, self.path,
                                     stage.label if stage is not None else None))

    def children(self, st: Stage) -> list[Stage]:
        """``st`` and every stage built FROM it, directly or not."""
        out = [st]
        for other in self.df.stages[st.index + 1:]:
            if other.parent is not None and any(o.index == other.parent for o in out):
                out.append(other)
        return out

    def copies_from(self, st: Stage) -> list[tuple[Stage, Instruction, list[str]]]:
        """(consumer stage, COPY instruction, source paths) taking files out of ``st``
        or any stage built FROM it."""
        family = {s.index for s in self.children(st)}
        out = []
        for other in self.df.stages:
            for inst in other.instructions:
                if inst.keyword not in ("COPY", "ADD"):
                    continue
                src = inst.flags.get("from")
                if not src:
                    continue
                ref = self.df.stage_by_ref(src.lower(), before=other.index)
                if ref is not None and ref.index in family:
                    words = inst.json_args if inst.json_args is not None else _split_words(
                        inst.args.value)
                    out.append((other, inst, words[:-1]))
        return out

    def is_used(self, st: Stage) -> bool:
        """Whether anything consumes this stage (it is last, a parent, or copied from)."""
        return (st.index == len(self.df.stages) - 1 or
                any(o.parent == st.index for o in self.df.stages) or bool(self.copies_from(st)))

    def final_lineage(self) -> set[int]:
        out: set[int] = set()
        cur: int | None = len(self.df.stages) - 1
        while cur is not None:
            out.add(cur)
            cur = self.df.stages[cur].parent
        return out


_ARCH_HINT = (
    "declare `ARG TARGETARCH` in the stage and use ${TARGETARCH} (amd64, arm64, ...); where "
    "the download names architectures differently, map it: "
    "`case \"$TARGETARCH\" in amd64) A=x86_64;; arm64) A=aarch64;; esac`"
)
_ARCH_ASSIGN = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z_]*ARCH|--arch|--cpu|--target-arch)[= ]"
                          r"['\"]?([A-Za-z0-9_-]+)['\"]?", re.IGNORECASE)


def _rule_hardcoded_arch(ctx: _Ctx) -> None:
    for st in ctx.df.stages:
        # Stages named after an architecture are selected by it (FROM build-${TARGETARCH}).
        own = {ARCH_FAMILY[m.group(1)] for m in _ARCH_RE.finditer(st.name or "")}
        for inst in st.instructions:
            for text, kind in _arch_texts(inst):
                _scan_arch(ctx, st, inst, text, kind, own)
    in_from = {name for st in ctx.df.stages
               for m in _VAR.finditer(st.platform or "") for name in (m.group(1), m.group(4))}
    for decl in ctx.df.global_args:
        # A default used by FROM --platform is PA002's business.
        if decl.default and decl.name not in PLATFORM_ARGS and decl.name not in in_from:
            m = _ARCH_RE.search(decl.default)
            if m and not _ARCH_SOURCE.search(decl.default):
                ctx.add("PA001", "warning", decl.line,
                        f"global ARG {decl.name} defaults to architecture-specific "
                        f"{decl.default!r}", _ARCH_HINT, None)


def _arch_texts(inst: Instruction) -> Iterator[tuple[Text, str]]:
    if inst.keyword == "RUN":
        for t in inst.texts():
            yield t, "shell"
    elif inst.keyword in ("COPY", "ADD"):
        yield inst.args, "paths"
        for h in inst.heredocs:
            yield h.body, "shell"
    elif inst.keyword in ("ENV", "ARG"):
        yield inst.args, "values"
    elif inst.keyword in ("CMD", "ENTRYPOINT", "WORKDIR", "VOLUME"):
        yield inst.args, "shell"


def _scan_arch(ctx: _Ctx, st: Stage, inst: Instruction, text: Text, kind: str,
               own: set[str]) -> None:
    script = _blank_comments(text.value) if kind == "shell" else text.value
    if kind == "paths" and inst.json_args is None:
        # Heredoc markers are not paths.
        script = _HEREDOC.sub(lambda m: " " * len(m.group(0)), script)
    selected = _selected_ranges(script) if kind == "shell" else []
    reported: set[int] = set()

    def skip(pos: int, family: str) -> bool:
        return family in own or any(a <= pos < b for a, b in selected)

    # A guard that fails the build elsewhere: [ "$(dpkg --print-architecture)" = amd64 ] || exit 1
    if kind == "shell":
        for off, stmt in _split_outside_quotes(script, _STMT_SEP):
            det = _RUNTIME_DETECT.search(stmt)
            if (det and re.search(r"\|\|\s*(?:exit|false|\(|\{)", stmt)
                    and len({ARCH_FAMILY[m.group(1)] for m in _ARCH_RE.finditer(stmt)}) == 1):
                line = text.line_at(off + len(stmt) - len(stmt.lstrip()))
                reported.add(line)
                ctx.add("PA001", "warning", line,
                        f"stage {st.label}: {inst.keyword} assumes one architecture from the "
                        f"machine's own report ({det.group(0)!r}); "
                        "the build fails or differs on every other platform",
                        "handle each target architecture (case on $TARGETARCH), or fail "
                        "with a clear message only for platforms you really do not support",
                        st)
    for m in _ARCH_RE.finditer(script):
        family = ARCH_FAMILY[m.group(1)]
        if skip(m.start(), family):
            continue
        word = _word_around(script, m.start(), m.end())
        value = word.split("=", 1)[1] if "=" in word and kind != "paths" else word
        if kind == "values":
            key = word.split("=", 1)[0] if "=" in word else ""
            if key in PLATFORM_ARGS:
                continue
            pathlike = True
        elif kind == "paths":
            pathlike = not word.startswith("--")
        else:
            pathlike = ("/" in value or _FILE_EXT.search(value) is not None)
        if not pathlike:
            continue
        wrong = [str(p) for p in ctx.platforms if p.architecture != family]
        if not wrong:
            continue
        line = text.line_at(m.start())
        if line in reported:
            continue
        reported.add(line)
        what = "URL" if "://" in word else "path" if "/" in word else "file name" \
            if kind != "values" else "value"
        ctx.add("PA001", "warning", line,
                f"stage {st.label}: {inst.keyword} hard-codes architecture {m.group(1)!r} in "
                f"{what} {_short(word)!r}: wrong for {', '.join(wrong)}",
                _ARCH_HINT, st)
    if kind in ("shell", "values"):
        for m in _ARCH_ASSIGN.finditer(script):
            val = m.group(2)
            if (val not in ARCH_FAMILY or skip(m.start(), ARCH_FAMILY[val])
                    or m.group(1).upper() in PLATFORM_ARGS):
                continue
            line = text.line_at(m.start())
            if line in reported:
                continue
            reported.add(line)
            ctx.add("PA001", "warning", line,
                    f"stage {st.label}: {inst.keyword} sets {m.group(0).strip()!r}: a fixed "
                    "architecture for every platform",
                    "use the target's value: ARG TARGETARCH then GOARCH=$TARGETARCH (or map "
                    "it with case for tools that name architectures differently)", st)


def _short(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


_FIXED_HINT = (
    "drop --platform (the stage then runs on each target platform), or use "
    "--platform=$BUILDPLATFORM for a stage whose output does not depend on the architecture "
    "(sources, assets, cross-compilers)"
)


def _rule_fixed_platform(ctx: _Ctx) -> None:
    lineage = ctx.final_lineage()
    for st in ctx.df.stages:
        if st.mode != "fixed" or st.platform is None:
            continue
        value = stage_platform_value(ctx.df, st) or st.platform
        try:
            fixed: Platform | None = parse_platform(value)
        except ValueError:
            fixed = None
        if fixed is not None and all(p == fixed for p in ctx.platforms):
            continue
        via = f" (from the default of ARG {st.platform})" if "$" in st.platform else ""
        if st.index in lineage:
            ctx.add("PA002", "error", st.from_inst.line,
                    f"stage {st.label} is pinned to --platform={value}{via} and is (the base "
                    f"of) the final image: every variant would carry {value} content",
                    _FIXED_HINT, st)
        else:
            ctx.add("PA002", "warning", st.from_inst.line,
                    f"stage {st.label} is pinned to --platform={value}{via}: it runs as "
                    f"{value} for every target (emulated on other machines), and anything "
                    "built in it is for that platform only", _FIXED_HINT, st)


# -- PA003 -------------------------------------------------------------------

_NATIVE_NPM = {
    "bcrypt", "sharp", "sqlite3", "better-sqlite3", "canvas", "node-sass", "argon2",
    "bufferutil", "utf-8-validate", "grpc", "leveldown", "re2", "node-pty", "cpu-features",
    "ssh2", "usb", "serialport", "@serialport/bindings-cpp", "kerberos", "zeromq", "isolated-vm",
    "esbuild", "@swc/core", "lightningcss", "@parcel/watcher", "microtime", "farmhash",
    "node-rdkafka", "oracledb", "libxmljs", "libxmljs2", "hiredis", "deasync", "fsevents",
}
_NATIVE_SIGNS = re.compile(
    r"node-gyp|--build-from-source|npm\s+rebuild|prebuild-install|node-pre-gyp"
    r"|\bbuild-base\b|\bbuild-essential\b|\bg\+\+|\bmake\b.*\bpython3?\b|\bpython3?\b.*\bmake\b"
)
_C_TOOLS = {"gcc", "g++", "cc", "c++", "clang", "clang++", "make", "gmake", "cmake", "ninja",
            "meson", "configure", "autoreconf"}


@dataclass
class _Heavy:
    kind: str  # go, cargo, c, npm, pip
    line: int
    what: str


def _heavy_ops(st: Stage) -> list[_Heavy]:
    out: list[_Heavy] = []
    for inst in st.instructions:
        if inst.keyword != "RUN":
            continue
        texts = [Text(" ".join(inst.json_args), inst.args.marks)] if inst.json_args \
            else inst.texts()
        for t in texts:
            for c in simple_commands(t.value):
                line = t.line_at(c.offset)
                a0 = c.args[0] if c.args else ""
                name = c.name
                if name in ("go", "xx-go") and a0 in ("build", "install"):
                    out.append(_Heavy("go", line, f"{name} {a0}"))
                elif name in ("cargo", "xx-cargo") and a0 in ("build", "install", "zigbuild"):
                    out.append(_Heavy("cargo", line, f"{name} {a0}"))
                elif name in _C_TOOLS or name.endswith("/configure") or \
                        re.fullmatch(r"(?:xx-)?(?:[\w.-]+-)?(?:gcc|g\+\+|clang|clang\+\+)", name):
                    out.append(_Heavy("c", line, name))
                elif (name in ("npm", "pnpm") and a0 in ("ci", "install", "i", "rebuild", "add")) \
                        or (name == "yarn" and a0 in ("", "install", "add", "--frozen-lockfile",
                                                      "--immutable")):
                    out.append(_Heavy("npm", line, f"{name} {a0}".strip()))
                elif _is_pip_sdist(c):
                    out.append(_Heavy("pip", line, c.text.strip()))
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


def _native_npm(text: str) -> bool:
    """Whether a stage's text shows native Node modules being built or installed."""
    return _NATIVE_SIGNS.search(text) is not None or any(
        re.search(rf"(?<![\w@/-]){re.escape(n)}(?![\w-])", text) for n in _NATIVE_NPM)


def _stage_text(ctx: _Ctx, st: Stage) -> str:
    """Every instruction of the stage and the ENV of the stages it is built FROM."""
    parts = [inst.full_text() for inst in st.instructions]
    p = st.parent
    while p is not None:
        parent = ctx.df.stages[p]
        parts.extend(i.full_text() for i in parent.instructions if i.keyword in ("ENV", "ARG"))
        p = parent.parent
    return "\n".join(parts)


_TARGET_AWARE = re.compile(r"\$\{?TARGET(?:ARCH|PLATFORM|OS|VARIANT)\b|\bxx-")
_CROSS_SIGNS = {
    "go": re.compile(r"\bGOARCH\s*=|\bxx-go\b"),
    "cargo": re.compile(r"--target[= ]|CARGO_BUILD_TARGET|\bxx-cargo\b|\bcross\s+build"),
    "c": re.compile(r"\bCC\s*=|--host[= ]|CROSS_COMPILE|CMAKE_TOOLCHAIN_FILE|"
                    r"CMAKE_SYSTEM_PROCESSOR|\bxx-(?:clang|gcc|cc)|-linux-gnu\w*-g(?:cc|\+\+)|"
                    r"--target[= ]|-target\s"),
    "npm": re.compile(r"--cpu[= ]|--arch[= ]|npm_config_arch|--target_arch|--os[= ]"),
    "pip": re.compile(r"--platform[= ]"),
}
_CGO = re.compile(r"CGO_ENABLED\s*=\s*['\"]?1|\b(?:gcc|musl-dev|build-base|build-essential)\b")
_EMU_WHY = {
    "go": ("Go cross-compiles without emulation: safe to move",
           "FROM --platform=$BUILDPLATFORM golang...; ARG TARGETOS TARGETARCH; RUN "
           "CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build ..."),
    "cargo": ("Rust cross-compiles with --target and a cross linker: safe to move once "
              "the linker is set up",
              "FROM --platform=$BUILDPLATFORM rust...; COPY --from=tonistiigi/xx / /; ARG "
              "TARGETPLATFORM; RUN xx-cargo build --release (or cargo build --target "
              "<triple> with a cross linker)"),
    "c": ("C/C++ cross-compiles with a cross toolchain: safe to move once CC/--host (or a "
          "CMake toolchain file) name the target",
          "FROM --platform=$BUILDPLATFORM ...; install a cross compiler (tonistiigi/xx: "
          "xx-clang, or gcc-aarch64-linux-gnu) and pass --host=/CC= for $TARGETPLATFORM"),
    "npm": ("only architecture-independent files leave this stage, so it can run "
            "natively: safe to move",
            "FROM --platform=$BUILDPLATFORM node...; keep `npm ci` for node_modules that "
            "ship in the image on the target platform"),
    "pip": ("Python C extensions cannot practically be cross-compiled, so moving the stage "
            "is not safe",
            "install binary wheels (drop --no-binary / sdist URLs) so nothing compiles, or "
            "build the wheels on native runners and COPY them in"),
}
_DEP_PATHS = re.compile(r"node_modules|site-packages|dist-packages|venv|\.local|wheel|\.whl")


def _copies_deps(ctx: _Ctx, st: Stage, workdirs: set[str]) -> list[str]:
    """Copied sources out of ``st`` that carry installed dependencies."""
    out = []
    for consumer, _inst, srcs in ctx.copies_from(st):
        if consumer.mode == "build":
            continue
        for s in srcs:
            norm = s.rstrip("/") or "/"
            if _DEP_PATHS.search(s) or norm in workdirs or norm in ("/", ".", "/*"):
                out.append(s)
    return out


def _workdirs(ctx: _Ctx, st: Stage) -> set[str]:
    out: set[str] = set()
    for s in [*reversed(_ancestors(ctx, st)), st]:
        for inst in s.instructions:
            if inst.keyword == "WORKDIR":
                out.add(inst.args.value.strip().rstrip("/") or "/")
    return out


def _ancestors(ctx: _Ctx, st: Stage) -> list[Stage]:
    out = []
    p = st.parent
    while p is not None:
        out.append(ctx.df.stages[p])
        p = ctx.df.stages[p].parent
    return out


def _rule_emulated_build(ctx: _Ctx) -> None:
    multi = len(ctx.platforms) > 1
    for st in ctx.df.stages:
        ops = _heavy_ops(st)
        if not ops:
            continue
        text = _stage_text(ctx, st)
        kinds: dict[str, _Heavy] = {}
        for op in ops:
            kinds.setdefault(op.kind, op)
        consumers = ctx.copies_from(st)
        final_like = not ctx.is_used(st) or st.index in ctx.final_lineage() or any(
            o.parent is not None and o.mode != "build" and ctx.df.stages[o.parent] is st
            for o in ctx.df.stages)
        if st.mode in ("target", "fixed") and multi:
            for kind, op in kinds.items():
                why, fix = _EMU_WHY[kind]
                if kind == "npm":
                    deps = _copies_deps(ctx, st, _workdirs(ctx, st))
                    if final_like or deps or not consumers:
                        continue  # node_modules ship in the image: they must be built there.
                    if not _native_npm(text):
                        continue  # no compiling: emulation costs little here.
                    srcs = sorted({s for _, _, ss in consumers for s in ss})
                    why = f"only {', '.join(srcs)} leave{'s' if len(srcs) == 1 else ''} this " \
                          "stage (no node_modules), so it can run natively: safe to move"
                if kind == "go" and _CGO.search(text):
                    why = ("Go cross-compiles, but this stage uses cgo: moving is safe only "
                           "with a C cross toolchain (tonistiigi/xx: xx-go, xx-clang)")
                where = "" if st.mode == "target" else f" (pinned to {st.platform})"
                ctx.add("PA003", "warning", op.line,
                        f"stage {st.label}{where} runs `{_short(op.what, 40)}` under "
                        "emulation for every non-native platform (QEMU, often 5-20x slower); "
                        f"{why}", fix, st)
        elif st.mode == "build":
            target_aware = bool(_TARGET_AWARE.search(text))
            into_target = [(c, i) for c, i, _ in consumers if c.mode != "build"]
            for kind, op in kinds.items():
                if _CROSS_SIGNS[kind].search(text):
                    continue
                if kind in ("go", "cargo", "c"):
                    if target_aware or not into_target:
                        continue
                    c, i = into_target[0]
                    ctx.add("PA003", "error", op.line,
                            f"stage {st.label} runs on $BUILDPLATFORM and `{op.what}` has no "
                            f"target set, so it builds for the build machine; stage "
                            f"{c.label} copies its output (line {i.line}) into every "
                            "platform's image",
                            _EMU_WHY[kind][1].replace("FROM --platform=$BUILDPLATFORM ", "keep "
                                                      "the stage on $BUILDPLATFORM and "), st)
                elif kind in ("npm", "pip"):
                    deps = _copies_deps(ctx, st, _workdirs(ctx, st))
                    if not deps:
                        continue
                    native = kind == "npm" and _native_npm(text)
                    what = "node_modules" if kind == "npm" else "Python packages"
                    ctx.add("PA003", "error" if native else "warning", op.line,
                            f"stage {st.label} runs `{op.what}` on $BUILDPLATFORM and its "
                            f"{what} ({', '.join(deps)}) are copied into target-platform "
                            "stages: native modules and platform wheels are picked for the "
                            "build machine, not the target"
                            + (" (native modules are built here)" if native else ""),
                            "install dependencies in a stage that runs on the target platform "
                            "(drop --platform) and copy only architecture-independent output "
                            "from $BUILDPLATFORM stages" if kind == "npm" else
                            "install on the target platform, or download target wheels with "
                            "`pip install --platform <tag> --only-binary=:all: --target ...`",
                            st)


# -- PA004 -------------------------------------------------------------------

_PLATFORM_REF = re.compile(
    r"(?<!\\)\$(?:\{(" + "|".join(PLATFORM_ARGS) + r")(?![A-Za-z0-9_])|("
    + "|".join(PLATFORM_ARGS) + r")(?![A-Za-z0-9_]))"
)


def _rule_undeclared_args(ctx: _Ctx) -> None:
    global_names = {a.name for a in ctx.df.global_args}
    for st in ctx.df.stages:
        declared: set[str] = set()
        env_defined: set[str] = set()
        for anc in _ancestors(ctx, st):
            for inst in anc.instructions:
                if inst.keyword == "ENV":
                    env_defined.update(k for k, _ in _parse_env(inst))
        reported: set[str] = set()
        for inst in st.instructions:
            texts = inst.texts()
            for t in texts:
                for m in _PLATFORM_REF.finditer(t.value):
                    name = m.group(1) or m.group(2)
                    if name in declared or name in env_defined or name in reported:
                        continue
                    if re.search(rf"(?<![\w$]){name}=|\bfor\s+{name}\b|\bread\s+{name}\b",
                                 t.value):
                        continue
                    reported.add(name)
                    glob = (f"; the global `ARG {name}` only reaches FROM lines"
                            if name in global_names else "")
                    ctx.add("PA004", "error", t.line_at(m.start()),
                            f"stage {st.label}: {inst.keyword} uses ${name} but the stage never "
                            f"declares `ARG {name}`, so it is empty{glob}",
                            f"add `ARG {name}` (no value; the builder fills it in) after the "
                            f"FROM of stage {st.label}, before line {inst.line}", st)
            if inst.keyword == "ARG":
                declared.update(a.name for a in _parse_arg(inst))
            elif inst.keyword == "ENV":
                env_defined.update(k for k, _ in _parse_env(inst))


# -- PA007 -------------------------------------------------------------------


def _rule_build_platform_detection(ctx: _Ctx) -> None:
    for st in ctx.df.stages:
        if st.mode != "build":
            continue
        for inst in st.instructions:
            if inst.keyword != "RUN":
                continue
            for t in inst.texts():
                script = _blank_comments(t.value)
                m = _RUNTIME_DETECT.search(script)
                if m:
                    ctx.add("PA007", "info", t.line_at(m.start()),
                            f"stage {st.label} runs on $BUILDPLATFORM, where "
                            f"{m.group(0).strip()!r} reports the build machine's architecture, "
                            "not the target's",
                            "fine for tools that run during the build; for anything that ends "
                            "up in the image use ARG TARGETARCH / TARGETPLATFORM", st)
                    break


# -- PA005 / PA006 -----------------------------------------------------------


def external_images(df: Dockerfile, platforms: Sequence[Platform]
                    ) -> list[tuple[Stage, int, str, str | None, tuple[Platform, ...]]]:
    """(stage, line, image text, unresolved-reason, platforms it is pulled for) of every
    image pulled for a target platform: FROM lines and ``COPY --from=<image>``, with
    global ARG defaults and the target platform ARGs expanded."""
    found: dict[tuple[int, str], tuple[Stage, str | None, list[Platform]]] = {}
    defaults = df.global_defaults()
    for st in df.stages:
        if st.mode != "target":
            continue
        cands: list[tuple[int, str]] = []
        if st.parent is None:
            cands.append((st.from_inst.line, st.image))
        for inst in st.instructions:
            src = inst.flags.get("from") if inst.keyword in ("COPY", "ADD") else None
            if src and df.stage_by_ref(src.lower(), before=st.index) is None:
                cands.append((inst.line, src))
        for line, image in cands:
            for p in platforms:
                env = dict(defaults)
                env.update({"TARGETPLATFORM": str(p), "TARGETOS": p.os,
                            "TARGETARCH": p.architecture, "TARGETVARIANT": p.variant})
                value, missing = expand(image, env)
                if value.lower() == "scratch" or df.stage_by_ref(value.lower(),
                                                                 before=st.index):
                    continue
                why = (f"uses ${', $'.join(sorted(missing))} which has no default"
                       if missing else None)
                found.setdefault((line, value), (st, why, []))[2].append(p)
    return [(st, line, value, why, tuple(plats))
            for (line, value), (st, why, plats) in found.items()]


def _rule_base_platforms(ctx: _Ctx, lookup: PlatformLookup) -> None:
    cache: dict[str, list[Platform] | str] = {}
    for st, line, image, unresolved, wanted in external_images(ctx.df, ctx.platforms):
        if unresolved:
            ctx.add("PA006", "note", line,
                    f"base image {image!r} not checked: it {unresolved}",
                    "give the ARG a default, or check the image with `polyarch inspect`", st)
            continue
        try:
            ref = parse_ref(image)
        except ReferenceError as e:
            ctx.add("PA000", "error", line, f"invalid image reference {image!r}: {e}",
                    "fix the image name", st)
            continue
        if image not in cache:
            try:
                got = lookup(ref)
                cache[image] = got if got is not None else "the registry gave no answer"
            except LookupFailed as e:
                cache[image] = str(e) or "lookup failed"
            except Exception as e:  # noqa: BLE001 - any lookup failure is only a note
                cache[image] = f"{type(e).__name__}: {e}"
        res = cache[image]
        if isinstance(res, str):
            ctx.add("PA006", "note", line,
                    f"base image {image} not checked: {res}",
                    "run again with registry access (and credentials) to check its platforms",
                    st)
            continue
        missing = [p for p in wanted
                   if not any(p.matches(q.os, q.architecture, q.variant or None) for q in res)]
        if missing:
            has = ", ".join(str(q) for q in res) or "none"
            ctx.add("PA005", "error", line,
                    f"base image {image} does not provide "
                    f"{', '.join(str(p) for p in missing)} (it has: {has})",
                    "pick a tag or digest whose index covers every target platform (a digest "
                    "of one platform's manifest pins that platform), or build only for the "
                    "platforms it has", st)
