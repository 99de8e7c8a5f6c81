"""A Dockerfile parser that reads files the way BuildKit does.

Parser directives at the top (``# syntax=``, ``# escape=``, ``# check=``), a BOM,
CRLF line ends, line continuations with comment and empty lines inside them dropped,
heredocs in ``RUN``/``COPY``/``ADD`` (``<<EOF``, ``<<-EOF``, ``<<"EOF"``, several on
one line), JSON (exec) and shell form, flags, global ``ARG`` and stages.

Its agreement with BuildKit's own parser (the ``dockerfile`` package on PyPI) is
checked by differential tests; see docs/lint.md for why polyarch keeps this parser at
run time.
"""

from __future__ import annotations

import json
import re

from polyarch.lint.model import ArgDecl, Dockerfile, Heredoc, Instruction, Stage, Text
from polyarch.lint.shellwords import split_raw

_DIRECTIVE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*$")
_HEREDOC = re.compile(r"(?<!<)<<(?!<)(-?)(\"|')?([A-Za-z_][A-Za-z0-9_]*)(?(2)\2)")
KNOWN = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
    "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME",
    "WORKDIR",
}
_JSON_FORM = {"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"}


def parse(text: str) -> Dockerfile:
    """Parse a Dockerfile into global ARGs and stages."""
    if text.startswith("\ufeff"):
        text = text[1:]
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
        raw_flags, rest_off = _flags(joined, rest_off)
        flags: dict[str, str | None] = {}
        for f in raw_flags:
            k, eq, v = f[2:].partition("=")
            flags[k.lower()] = v if eq else None
        args = whole.tail(rest_off)
        inst = Instruction(keyword, start, end, args, flags, raw_flags)
        if keyword not in KNOWN:
            problems.append((start, f"unknown instruction {km.group(1)!r}"))
        body = args.value.strip()
        hc = re.match(r"CMD\s+(?=\[)", body, re.IGNORECASE) if keyword == "HEALTHCHECK" else None
        if (keyword in _JSON_FORM and body.startswith("[")) or hc:
            try:
                parsed = json.loads(body[hc.end():] if hc else body)
            except (ValueError, RecursionError):  # not JSON, or nested too deeply for it
                parsed = None
            if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
                inst.json_args = (["CMD"] if hc else []) + parsed
        if keyword in ("RUN", "COPY", "ADD") and inst.json_args is None:
            i = _read_heredocs(inst, lines, i, problems)
        instructions.append(inst)

    global_args: list[ArgDecl] = []
    stages: list[Stage] = []
    df = Dockerfile(directives, escape, global_args, stages, problems, instructions, lines)
    for inst in instructions:
        if inst.keyword == "FROM":
            stages.append(_make_stage(df, inst))
        elif not stages:
            if inst.keyword == "ARG":
                global_args.extend(parse_arg(inst, escape))
            else:
                problems.append((inst.line, f"{inst.keyword} before the first FROM (only ARG "
                                            "may come before FROM)"))
        else:
            stages[-1].instructions.append(inst)
    if not stages and not problems:
        problems.append((1, "no FROM instruction: a Dockerfile needs at least one stage"))
    return df


def _flags(line: str, pos: int) -> tuple[list[str], int]:
    """Leading ``--name[=value]`` words (any instruction may carry them; BuildKit checks
    which ones an instruction allows later), and where the arguments start."""
    out: list[str] = []
    n = len(line)
    while True:
        while pos < n and line[pos].isspace():
            pos += 1
        if not line.startswith("--", pos):
            return out, pos
        word: list[str] = []
        quote = ""
        while pos < n and (quote or not line[pos].isspace()):
            ch = line[pos]
            if quote:
                if ch == quote:
                    quote = ""
                else:
                    word.append(ch)
            elif ch in "'\"":
                quote = ch
            elif ch == "\\" and pos + 1 < n:
                pos += 1
                word.append(line[pos])
            else:
                word.append(ch)
            pos += 1
        w = "".join(word)
        if w == "--":
            return out, pos
        out.append(w)


def _read_heredocs(inst: Instruction, lines: list[str], i: int,
                   problems: list[tuple[int, str]]) -> int:
    n = len(lines)
    for hm in _HEREDOC.finditer(inst.args.value):
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
            problems.append((inst.line, f"heredoc <<{name} is never closed (no line reading "
                                        f"exactly {name!r})"))
        if not body_marks:
            body_marks.append((0, body_start + 1))
        inst.heredocs.append(Heredoc(name, Text("\n".join(body), tuple(body_marks)),
                                     bool(hm.group(2)), strip_tabs))
    inst.end_line = i
    return i


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
    return Stage(len(df.stages), name, image, inst.flags.get("platform"), inst)


def parse_arg(inst: Instruction, escape: str = "\\") -> list[ArgDecl]:
    """The names and raw defaults an ``ARG`` declares."""
    out = []
    for w in split_raw(inst.args.value, escape):
        k, eq, v = w.partition("=")
        out.append(ArgDecl(k, v if eq else None, inst.line))
    return out


def parse_env(inst: Instruction, escape: str = "\\") -> list[tuple[str, str]]:
    """The (name, raw value) pairs an ``ENV`` sets (``ENV k=v ...`` or legacy ``ENV k v``)."""
    words = split_raw(inst.args.value, escape)
    if words and "=" not in words[0]:
        rest = inst.args.value.strip()[len(words[0]):].strip()
        return [(words[0], rest)]
    out = []
    for w in words:
        k, _, v = w.partition("=")
        out.append((k, v))
    return out
