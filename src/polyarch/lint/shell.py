"""Just enough of a POSIX shell to read RUN scripts: words, operators, simple commands.

Quotes, escapes, ``$(...)``, ``${...}``, ``$((...))`` and backticks are kept inside
one word (so ``apt-get install ${BUILD_PACKAGES} make`` is one command whose arguments
are package names), commands inside command substitutions and ``sh -c '...'`` are
found too, ``case`` patterns and ``for`` lists are not commands, and installers
(``apt-get``, ``apk``, ``dnf``, ``yum``, ``pip``, ``npm``...) are known so their
package lists never count as commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_OPS = ("&&", "||", ";;", ";&", "|&", "<<-", "<<", ">>", ">&", "<&", ";", "&", "|", "(", ")",
        "\n", "<", ">")
_CONTROL = {"&&", "||", ";;", ";&", "|&", ";", "&", "|", "(", ")", "\n"}
_REDIRECT = {"<<-", "<<", ">>", ">&", "<&", "<", ">"}
_RESERVED = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}",
             "time", "esac"}
_SKIP_SEGMENT = {"for", "select", "function"}
_PREFIX = {"sudo", "env", "exec", "nice", "nohup", "command", "builtin", "doas", "xargs",
           "stdbuf", "timeout", "su-exec", "gosu", "chroot"}
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\+)?=")

#: Installer commands and the sub-commands after which every other word is a package.
INSTALLERS: dict[str, set[str]] = {
    "apt-get": {"install", "build-dep", "source"}, "apt": {"install"},
    "xx-apt-get": {"install"}, "xx-apt": {"install"},
    "apk": {"add"}, "xx-apk": {"add"}, "dnf": {"install"}, "yum": {"install"},
    "microdnf": {"install"}, "zypper": {"install", "in"}, "tdnf": {"install"},
    "pacman": {"-S", "-Sy", "-Syu"}, "brew": {"install"}, "emerge": {""},
    "pip": {"install", "download", "wheel"}, "pip3": {"install", "download", "wheel"},
    "uv": {"add"}, "poetry": {"add"}, "pipx": {"install"},
    "npm": {"install", "i", "add", "ci"}, "pnpm": {"install", "add", "i"},
    "yarn": {"add", "install"}, "bun": {"add", "install"}, "gem": {"install"},
    "conda": {"install"}, "mamba": {"install"}, "micromamba": {"install"},
}


@dataclass(frozen=True)
class Word:
    raw: str
    start: int
    end: int

    @property
    def value(self) -> str:
        return unquote(self.raw)


@dataclass(frozen=True)
class SimpleCommand:
    offset: int
    name: str
    args: tuple[str, ...]
    #: The whole command as written (from its first word to its last).
    text: str
    #: ``NAME=value`` words before the command name.
    assigns: tuple[tuple[str, str], ...] = ()
    words: tuple[Word, ...] = field(default=(), compare=False)

    @property
    def packages(self) -> tuple[str, ...]:
        """For an installer's install sub-command: the package arguments."""
        subs = INSTALLERS.get(self.name)
        if not subs:
            return ()
        for k, a in enumerate(self.args):
            if a in subs:
                return tuple(x for x in self.args[k + 1:] if not x.startswith("-"))
        return ()


def unquote(s: str) -> str:
    out = []
    quote = ""
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and quote != "'" and i + 1 < len(s):
            out.append(s[i + 1])
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
            else:
                out.append(ch)
        elif ch in "'\"":
            quote = ch
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _skip_balanced(s: str, i: int, open_: str, close: str) -> int:
    """From just after an opening ``open_``, the index just past its matching ``close``."""
    depth = 1
    n = len(s)
    while i < n:
        ch = s[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "'" and open_ != "{":
            j = s.find("'", i + 1)
            i = n if j < 0 else j + 1
            continue
        if ch == '"':
            i = _skip_double(s, i + 1)
            continue
        if ch == "`":
            j = s.find("`", i + 1)
            i = n if j < 0 else j + 1
            continue
        if ch == open_:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _skip_double(s: str, i: int) -> int:
    n = len(s)
    while i < n:
        ch = s[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        if s.startswith("$(", i):
            i = _skip_balanced(s, i + 2, "(", ")")
            continue
        if s.startswith("${", i):
            i = _skip_balanced(s, i + 2, "{", "}")
            continue
        if ch == "`":
            j = s.find("`", i + 1)
            i = n if j < 0 else j + 1
            continue
        i += 1
    return n


def _substitutions(s: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans (inner start, inner end) of ``$(...)`` and backtick substitutions in s[start:end]."""
    out = []
    i = start
    quote = ""
    while i < end:
        ch = s[i]
        if ch == "\\":
            i += 2
            continue
        if quote == "'":
            if ch == "'":
                quote = ""
            i += 1
            continue
        if ch == "'" and not quote:
            quote = "'"
        elif ch == '"':
            quote = "" if quote == '"' else '"'
        elif s.startswith("$((", i):
            i = _skip_balanced(s, i + 3, "(", ")") + 1
            continue
        elif s.startswith("$(", i):
            j = _skip_balanced(s, i + 2, "(", ")")
            out.append((i + 2, j - 1))
            i = j
            continue
        elif ch == "`":
            j = s.find("`", i + 1)
            j = end if j < 0 else j
            out.append((i + 1, j))
            i = j + 1
            continue
        i += 1
    return out


def tokenize(s: str) -> list[Word | str]:
    """Words and operators (operators as plain strings; their offsets are not needed)."""
    out: list[Word | str] = []
    i = 0
    n = len(s)
    while i < n:
        ch = s[i]
        if ch in " \t\r":
            i += 1
            continue
        if ch == "\\" and i + 1 < n and s[i + 1] == "\n":
            i += 2
            continue
        if ch == "#":
            j = s.find("\n", i)
            i = n if j < 0 else j
            continue
        op = next((o for o in _OPS if s.startswith(o, i)), None)
        if op is not None:
            out.append(op)
            i += len(op)
            continue
        start = i
        while i < n:
            ch = s[i]
            if ch in " \t\r\n;&|()<>":
                break
            if ch == "\\":
                i += 2
            elif ch == "'":
                j = s.find("'", i + 1)
                i = n if j < 0 else j + 1
            elif ch == '"':
                i = _skip_double(s, i + 1)
            elif s.startswith("$((", i):
                i = _skip_balanced(s, i + 3, "(", ")") + 1
            elif s.startswith("$(", i):
                i = _skip_balanced(s, i + 2, "(", ")")
            elif s.startswith("${", i):
                i = _skip_balanced(s, i + 2, "{", "}")
            elif ch == "`":
                j = s.find("`", i + 1)
                i = n if j < 0 else j + 1
            else:
                i += 1
        i = min(i, n)
        out.append(Word(s[start:i], start, i))
    return out


def simple_commands(script: str, _base: int = 0, _depth: int = 0) -> list[SimpleCommand]:
    """Every simple command of ``script`` (nested substitutions and ``sh -c`` included),
    with offsets into ``script``."""
    out: list[SimpleCommand] = []
    toks = tokenize(script)
    seg: list[Word] = []
    case_stack: list[str] = []  # "word", "in", "pattern", "body"
    skip_next = False

    def flush() -> None:
        nonlocal seg
        if seg:
            _emit(script, seg, out, _base, _depth)
        seg = []

    for t in toks:
        if isinstance(t, str):
            if t in _REDIRECT:
                skip_next = True
                continue
            if case_stack and case_stack[-1] == "pattern":
                if t == ")":
                    case_stack[-1] = "body"
                continue
            if case_stack and case_stack[-1] == "body" and t in (";;", ";&"):
                flush()
                case_stack[-1] = "pattern"
                continue
            if t in _CONTROL:
                flush()
            continue
        if skip_next:
            skip_next = False
            continue
        v = t.raw
        if case_stack and case_stack[-1] == "word":
            case_stack[-1] = "in"
            continue
        if case_stack and case_stack[-1] == "in":
            if v == "in":
                case_stack[-1] = "pattern"
            continue
        if case_stack and case_stack[-1] == "pattern":
            if v == "esac":
                case_stack.pop()
            continue
        if not seg and v == "case":
            case_stack.append("word")
            continue
        if not seg and v == "esac" and case_stack:
            case_stack.pop()
            continue
        seg.append(t)
    flush()
    out.sort(key=lambda c: c.offset)
    return out


def _emit(script: str, seg: list[Word], out: list[SimpleCommand], base: int, depth: int) -> None:
    # Commands inside $(...) and backticks, wherever they are in this command.
    if depth < 4:
        for w in seg:
            for a, b in _substitutions(script, w.start, w.end):
                out.extend(simple_commands(script[a:b], base + a, depth + 1))
    k = 0
    assigns: list[tuple[str, str]] = []
    while k < len(seg):
        v = seg[k].raw
        if v in _SKIP_SEGMENT:
            return
        if v in _RESERVED:
            k += 1
            continue
        if _ASSIGN.match(v):
            name, _, val = v.partition("=")
            assigns.append((name.rstrip("+"), unquote(val)))
            k += 1
            continue
        name = unquote(v)
        if name in _PREFIX or name.rsplit("/", 1)[-1] in _PREFIX:
            k += 1
            # Options of the prefix command (and `timeout 10`, `nice -n 5`).
            while k < len(seg) and (seg[k].raw.startswith("-")
                                    or (seg[k].raw.isascii() and seg[k].raw.isdigit())):
                k += 1
            continue
        break
    if k >= len(seg):
        return
    w0 = seg[k]
    name = unquote(w0.raw)
    if "/" in name and not name.startswith("$"):
        name = name.rsplit("/", 1)[-1]
    args = tuple(unquote(w.raw) for w in seg[k + 1:])
    text = script[w0.start:seg[-1].end]
    out.append(SimpleCommand(base + w0.start, name, args, text, tuple(assigns),
                             tuple(seg[k:])))
    if name in ("sh", "bash", "ash", "dash", "zsh") and depth < 4:
        for j, w in enumerate(seg[k + 1:-1], k + 1):
            if w.raw.startswith("-") and "c" in w.raw[1:] and not w.raw.startswith("--"):
                inner = seg[j + 1]
                raw = inner.raw
                off = inner.start + (1 if raw[:1] in "'\"" else 0)
                out.extend(simple_commands(unquote(raw), base + off, depth + 1))
                break


def blank_comments(script: str) -> str:
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


def split_outside_quotes(script: str, seps: re.Pattern[str]) -> list[tuple[int, str]]:
    """Split a script at separator matches that are not inside quotes."""
    parts: list[tuple[int, str]] = []
    start = 0
    quote = ""
    j = 0
    while j < len(script):
        ch = script[j]
        if quote:
            if ch == quote:
                quote = ""
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
