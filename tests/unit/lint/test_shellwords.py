"""The expander against BuildKit's own shell-lexer test vectors, plus split_raw."""

from __future__ import annotations

from pathlib import Path

import pytest

from polyarch.lint.shellwords import ExpandError, expand, split_raw

DATA = Path(__file__).resolve().parents[2] / "data" / "lint" / "buildkit_shell"
ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def _env_cases() -> list[tuple[int, str, str]]:
    out = []
    for n, line in enumerate((DATA / "envVarTest").read_text().splitlines(), 1):
        if line.startswith("#") or not line.strip():
            continue
        plat, src, expected = (p.strip() for p in line.split("|"))
        if plat in ("A", "U"):
            out.append((n, src, expected))
    return out


def _word_cases() -> list[tuple[int, dict[str, str], str, list[str]]]:
    out = []
    env: dict[str, str] = {}
    for n, line in enumerate((DATA / "wordsTest").read_text().splitlines(), 1):
        if line.startswith("#"):
            continue
        if line.startswith("ENV "):
            k, _, v = line[3:].lstrip(" ").partition("=")
            env = {**env, k: v}
            continue
        src, expected = line.split("|")
        out.append((n, env, src.strip(), expected.lstrip(" ").split(",")))
    return out


ENV_CASES = _env_cases()
WORD_CASES = _word_cases()


def test_the_vectors_are_all_there() -> None:
    assert len(ENV_CASES) > 200 and len(WORD_CASES) > 20


@pytest.mark.parametrize(("line", "src", "expected"), ENV_CASES, ids=[str(c[0]) for c in ENV_CASES])
def test_env_var_vectors(line: int, src: str, expected: str) -> None:
    if expected == "error":
        with pytest.raises(ExpandError):
            expand(src, ENV)
    else:
        assert expand(src, ENV).result == expected


@pytest.mark.parametrize(("line", "env", "src", "expected"), WORD_CASES,
                         ids=[str(c[0]) for c in WORD_CASES])
def test_word_splitting_matches_the_buildkit_vectors(line: int, env: dict[str, str], src: str,
                                                     expected: list[str]) -> None:
    try:
        got = expand(src, env).words
    except ExpandError:
        got = ["error"]
    assert got == expected


def test_unset_and_used_names_are_reported() -> None:
    e = expand("${REGISTRY}/${OWNER:-me}/img:$TAG", {"REGISTRY": "ghcr.io"})
    assert e.result == "ghcr.io/me/img:"
    assert e.used == {"REGISTRY"} and e.unset == {"OWNER", "TAG"}


def test_prefix_suffix_and_replace_modifiers_expand() -> None:
    env = {"V": "dockerfile/1.2.3-labs", "P": "linux/arm/v7"}
    assert expand("${V#dockerfile/}", env).result == "1.2.3-labs"
    assert expand("${V%%-*}", env).result == "dockerfile/1.2.3"
    assert expand("${V%.*}", env).result == "dockerfile/1.2"
    assert expand("${V##*/}", env).result == "1.2.3-labs"
    assert expand("${P//\\//-}", env).result == "linux-arm-v7"
    assert expand("${P/arm/aarch}", env).result == "linux/aarch/v7"


def test_backtick_escape_character_escapes_a_dollar() -> None:
    assert expand("a`$B c", {"B": "x"}, escape="`").result == "a$B c"


def test_split_raw_keeps_quotes() -> None:
    assert split_raw('A="x y" B=${C:-"d e"} \'f g\' h\\ i') == [
        'A="x y"', 'B=${C:-"d e"}', "'f g'", "h\\ i"]
