"""Variable expansion the way BuildKit's Dockerfile shell lexer does it.

BuildKit expands ``$VAR``, ``${VAR}``, ``${VAR:-word}``, ``${VAR-word}``,
``${VAR:+word}``, ``${VAR+word}``, ``${VAR:?msg}``, ``${VAR?msg}``, ``${VAR#pat}``,
``${VAR##pat}``, ``${VAR%pat}``, ``${VAR%%pat}`` and ``${VAR/pat/repl}`` (``//`` for
all) in ``FROM``, ``ARG``, ``ENV``, ``COPY``/``ADD``, ``WORKDIR``, ``LABEL``... It
removes single and double quotes, honours the escape character (``\\`` or the
``# escape=`` one), leaves positional and special parameters (``$1``, ``$@``) empty,
and refuses ``${}``, ``${:...}`` and unknown modifiers. The behaviour is pinned by
BuildKit's own test vectors (tests/data/lint/buildkit_shell/).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_SPECIAL = set("@*#?-$!0")


class ExpandError(ValueError):
    """The word is not valid for BuildKit's lexer (BuildKit refuses the instruction)."""


#: Most characters one expansion may take from variables. ``ARG A2=${A1}${A1}`` chains
#: double at each line; past this polyarch stops (rule PA000) instead of growing.
MAX_EXPANSION = 16 * 1024


class ExpansionTooLarge(ExpandError):
    """The expansion would exceed :data:`MAX_EXPANSION` characters (not a BuildKit error)."""


@dataclass
class Expansion:
    #: The word with variables expanded and quotes removed.
    result: str
    #: The result split into words the way BuildKit does for ``ProcessWords``.
    words: list[str]
    #: Variables that were referenced but not set.
    unset: set[str] = field(default_factory=set)
    #: Variables that were referenced and set.
    used: set[str] = field(default_factory=set)


class _Words:
    def __init__(self) -> None:
        self.words: list[str] = []
        self.buf: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.buf:
                self.words.append("".join(self.buf))
                self.buf = []
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, s: str) -> None:
        self.buf.append(s)
        self.in_word = True

    def add_string(self, s: str) -> None:
        for ch in s:
            self.add_char(ch)

    def finish(self) -> list[str]:
        if self.buf:
            self.words.append("".join(self.buf))
            self.buf = []
        return self.words


class _Lexer:
    def __init__(self, src: str, env: Mapping[str, str], escape: str, skip_unset: bool) -> None:
        self.s = src
        self.i = 0
        self.env = env
        self.esc = escape
        self.skip_unset = skip_unset
        self.raw_escapes = False
        self.unset: set[str] = set()
        self.used: set[str] = set()
        self.fetched = 0

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def next(self) -> str:
        ch = self.peek()
        self.i += 1 if ch else 0
        return ch

    def get(self, name: str) -> str | None:
        if name in self.env:
            self.used.add(name)
            value = self.env[name]
            self.fetched += len(value)
            if self.fetched > MAX_EXPANSION:
                raise ExpansionTooLarge(f"expanding ${{{name}}} takes more than "
                                        f"{MAX_EXPANSION} characters")
            return value
        self.unset.add(name)
        return None

    def stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        saved = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            return self._stop_on(stop)
        finally:
            self.raw_escapes = saved

    def _stop_on(self, stop: str) -> tuple[str, list[str]]:
        out: list[str] = []
        words = _Words()
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(out), words.finish()
            if ch == "$":
                tmp = self.dollar()
                out.append(tmp)
                words.add_string(tmp)
            elif ch == "<" and self.s.startswith("<<", self.i):
                self.i += 2
                sp = ""
                while self.peek() in (" ", "\t") and self.peek():
                    sp += self.next()
                out.append("<<" + sp)
                words.add_raw("<<" + sp)
            elif ch == "'":
                tmp = self.single()
                out.append(tmp)
                words.add_raw(tmp)
            elif ch == '"':
                tmp = self.double()
                out.append(tmp)
                words.add_raw(tmp)
            else:
                ch = self.next()
                if ch == self.esc:
                    if self.raw_escapes:
                        words.add_raw(ch)
                        out.append(ch)
                    ch = self.next()
                    if not ch:
                        break
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                out.append(ch)
        if stop:
            raise ExpandError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out), words.finish()

    def single(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if not ch:
                raise ExpandError("unexpected end of statement while looking for matching "
                                  "single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise ExpandError("unexpected end of statement while looking for matching "
                                  "double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.esc:
                if self.raw_escapes:
                    out.append(ch)
                nxt = self.peek()
                if not nxt:
                    continue
                if nxt in ('"', "$", self.esc):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        buf: list[str] = []
        while self.peek():
            ch = self.peek()
            if not buf and ch.isascii() and ch.isdigit():
                while self.peek() and self.peek().isascii() and self.peek().isdigit():
                    buf.append(self.next())
                return "".join(buf)
            if not buf and ch in _SPECIAL:
                return self.next()
            if not (ch.isalnum() or ch == "_"):
                break
            buf.append(self.next())
        return "".join(buf)

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value = self.get(name)
            if value is None:
                return "$" + name if self.skip_unset else ""
            return value
        self.next()
        if self.peek() in ("", "{", "}", ":"):
            raise ExpandError("syntax error: bad substitution" if self.peek()
                              else "syntax error: missing '}'")
        name = self.name()
        ch = self.next()
        chs = ch
        null_is_unset = False
        if ch == "}":
            value = self.get(name)
            if value is None:
                return "${" + name + "}" if self.skip_unset else ""
            return value
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            chs += ch
        if ch in ("+", "-", "?", "#", "%"):
            raw = ch in ("#", "%")
            if null_is_unset and raw:
                raise ExpandError(f"unsupported modifier ({chs}) in substitution")
            try:
                word, _ = self.stop_on("}", raw)
            except ExpandError:
                if not self.peek():
                    raise ExpandError("syntax error: missing '}'") from None
                raise
            value = self.get(name)
            if value is None and self.skip_unset:
                return "${" + name + chs + word + "}"
            empty = value is None or (null_is_unset and value == "")
            if ch == "-":
                return word if empty else str(value)
            if ch == "+":
                return "" if empty else word
            if ch == "?":
                if empty:
                    raise ExpandError(f"{name}: {word or 'is not allowed to be unset'}")
                return str(value)
            greedy = word.startswith(ch)
            if greedy:
                word = word[1:]
            return _trim(value or "", word, greedy, suffix=ch == "%")
        if ch == "/" and not null_is_unset:
            replace_all = self.peek() == "/"
            if replace_all:
                self.next()
            try:
                pattern, _ = self.stop_on("/", True)
                repl, _ = self.stop_on("}", True)
            except ExpandError:
                raise ExpandError("syntax error: missing '}'") from None
            value = self.get(name)
            if value is None and self.skip_unset:
                return "${" + name + "/" + pattern + "/" + repl + "}"
            rx = re.compile(_glob_to_regex(pattern, greedy=True))
            return rx.sub(lambda m: repl, value or "", count=0 if replace_all else 1)
        raise ExpandError(f"unsupported modifier ({chs}) in substitution")


def _glob_to_regex(pattern: str, greedy: bool) -> str:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            out.append(".*" if greedy else ".*?")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _trim(value: str, pattern: str, greedy: bool, suffix: bool) -> str:
    rx = re.compile(_glob_to_regex(pattern, greedy))
    n = len(value)
    if suffix:
        # %% removes the longest matching suffix, % the shortest.
        starts = range(n + 1) if greedy else range(n, -1, -1)
        for start in starts:
            if rx.fullmatch(value, start):
                return value[:start]
        return value
    # ## removes the longest matching prefix, # the shortest.
    ends = range(n, -1, -1) if greedy else range(n + 1)
    for end in ends:
        if rx.fullmatch(value, 0, end):
            return value[end:]
    return value


def expand(word: str, env: Mapping[str, str], *, escape: str = "\\",
           skip_unset: bool = False) -> Expansion:
    """Expand ``word`` with ``env`` (unset variables are absent keys).

    Raises :class:`ExpandError` where BuildKit would refuse the word.
    """
    lx = _Lexer(word, env, escape, skip_unset)
    result, words = lx.stop_on("", False)
    return Expansion(result, words, lx.unset, lx.used)


def try_expand(word: str, env: Mapping[str, str], *, escape: str = "\\") -> Expansion | None:
    """:func:`expand`, or ``None`` where BuildKit would refuse the word."""
    try:
        return expand(word, env, escape=escape)
    except ExpandError:
        return None


def split_raw(text: str, escape: str = "\\") -> list[str]:
    """Split an instruction's arguments into words at unquoted white space, quotes and
    escapes kept (the form ``ARG``/``ENV``/``LABEL`` values take before expansion)."""
    out: list[str] = []
    buf: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == escape and i + 1 < len(text) and quote != "'":
            buf.append(text[i:i + 2])
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch.isspace():
            if buf:
                out.append("".join(buf))
                buf = []
            i += 1
            continue
        buf.append(ch)
        i += 1
    if buf:
        out.append("".join(buf))
    return out
