"""polyarch's Dockerfile parser against BuildKit's own (the `dockerfile` package, which
wraps BuildKit's Go parser): the same instructions, lines, flags, JSON forms, heredocs
and shell-form text, on every Dockerfile the tests hold and on generated ones.

The `dockerfile` package has wheels for Linux x86-64 and macOS arm64 only; elsewhere
these tests are skipped (CI runs on Linux x86-64).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from polyarch.lint.parser import parse

from .test_rules import BAD, CLEAN

dockerfile = pytest.importorskip("dockerfile")

CASES = Path(__file__).resolve().parents[2] / "lint_cases"


def difference(text: str) -> str | None:
    """None when both parsers agree on ``text``, else what differs."""
    mine = parse(text).instructions
    theirs = list(dockerfile.parse_string(text))
    if len(mine) != len(theirs):
        return f"{len(mine)} instructions, BuildKit {len(theirs)}"
    for i, c in zip(mine, theirs, strict=True):
        docs = []
        for h, ours in zip(c.heredocs, i.heredocs, strict=False):
            content = h.content[:-1] if h.content.endswith("\n") else h.content
            # Known difference: BuildKit keeps the \r of CRLF lines in heredoc bodies;
            # polyarch reads CRLF files as LF (docs/lint.md).
            content = content.replace("\r\n", "\n").removesuffix("\r")
            if ours.strip_tabs:  # BuildKit strips <<- tabs when it runs the heredoc
                content = "\n".join(ln.lstrip("\t") for ln in content.split("\n"))
            docs.append((h.name, content))
        a = (i.keyword.lower(), i.line, i.end_line, tuple(i.raw_flags), i.json_args is not None,
             tuple(i.json_args) if i.json_args is not None else None,
             tuple((h.name, h.body.value) for h in i.heredocs))
        b = (c.cmd.lower(), c.start_line, c.end_line, tuple(c.flags), c.json,
             tuple(c.value) if c.json else None, tuple(docs))
        if a != b:
            return f"ours {a}\nBuildKit {b}"
        if not c.json and c.cmd.lower() in ("run", "cmd", "entrypoint") and c.value \
                and i.args.value.strip() != c.value[0]:
            return f"ours {i.args.value.strip()!r}\nBuildKit {c.value[0]!r}"
    return None


def _files() -> dict[str, str]:
    out = {f"case:{p.name}": p.read_text() for p in sorted(CASES.glob("*.Dockerfile"))}
    out.update({f"clean:{k}": v for k, v in CLEAN.items()})
    out.update({f"bad:{k}": v for k, (v, _) in BAD.items() if not k.startswith("PA000")})
    return out


FILES = _files()


@pytest.mark.parametrize("name", sorted(FILES))
def test_same_parse_as_buildkit(name: str) -> None:
    assert difference(FILES[name]) is None


# -- generated Dockerfiles ----------------------------------------------------

WORD = st.text("abcxyz019_-./$:{}=", min_size=1, max_size=8).filter(lambda s: s.strip())
ARGWORDS = st.lists(WORD, min_size=1, max_size=4).map(" ".join)
FLAG = st.sampled_from(["--platform=$BUILDPLATFORM", "--mount=type=cache,target=/c",
                        "--from=build", "--chmod=755", "--link", "--network=none"])


@st.composite
def instruction(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["run", "run-cont", "run-heredoc", "copy", "json", "arg",
                                 "env", "label", "from", "comment", "blank"]))
    if kind == "run":
        return f"RUN {draw(ARGWORDS)}"
    if kind == "run-cont":
        parts = draw(st.lists(ARGWORDS, min_size=2, max_size=4))
        sep = draw(st.sampled_from([" \\\n", "\\\n", " \\  \n", " \\\n# inside\n", " \\\n\n"]))
        return "RUN " + sep.join(parts)
    if kind == "run-heredoc":
        dash = draw(st.booleans())
        quote = draw(st.sampled_from(["", "'", '"']))
        body = draw(st.lists(ARGWORDS, min_size=0, max_size=3))
        tab = "\t" if dash else ""
        lines = "".join(f"{tab}{b}\n" for b in body)
        return f"RUN <<{'-' if dash else ''}{quote}EOT{quote}\n{lines}{tab}EOT"
    if kind == "copy":
        flags = " ".join(draw(st.lists(FLAG, max_size=2)))
        return f"COPY {flags} {draw(ARGWORDS)} /dst/".replace("  ", " ")
    if kind == "json":
        items = draw(st.lists(st.text("abc -$/", min_size=1, max_size=6), min_size=1, max_size=3))
        kw = draw(st.sampled_from(["CMD", "ENTRYPOINT", "RUN"]))
        return kw + " [" + ", ".join(f'"{x}"' for x in items) + "]"
    if kind == "arg":
        return f"ARG {draw(WORD)}"
    if kind == "env":
        return f"ENV A={draw(WORD)} B=\"{draw(WORD)}\""
    if kind == "label":
        return f'LABEL a="{draw(WORD)}"'
    if kind == "from":
        flag = draw(st.sampled_from(["", "--platform=linux/arm64 ", "--platform=$TARGETPLATFORM "]))
        return f"FROM {flag}alpine:3.20 AS s{draw(st.integers(0, 9))}"
    if kind == "comment":
        return f"# {draw(ARGWORDS)}"
    return ""


@st.composite
def dockerfiles(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(["", "# syntax=docker/dockerfile:1\n", "# escape=\\\n"]))
    body = draw(st.lists(instruction(), min_size=1, max_size=8))
    text = head + "FROM alpine:3.20\n" + "\n".join(body) + "\n"
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dockerfiles())
def test_generated_dockerfiles_parse_like_buildkit(text: str) -> None:
    try:
        list(dockerfile.parse_string(text))
    except dockerfile.GoParseError:
        assume(False)
    assert difference(text) is None, text
