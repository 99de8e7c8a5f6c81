"""The hyperscan prefilter finds every place the content scanner's regexes can match:
the findings are the same with and without it, on the detector vectors, the data
files and generated text dense with the formats' fixed parts."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyarch.checks.secrets import ContentScanner, SecretHit, formats, prefilter

if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
    import hyperscan  # noqa: F401 - in CI the prefilter is tested, never skipped
else:
    pytest.importorskip("hyperscan")

DATA = Path(__file__).parent / "data"
CASES: list[dict[str, Any]] = tomllib.loads((DATA / "vectors.toml").read_text())["case"]


def scan(path: str, data: bytes, *, binary: bool = False, size: int = 1 << 20
         ) -> list[SecretHit]:
    s = ContentScanner(path, binary=binary)
    for i in range(0, len(data), size):
        s.feed(data[i:i + size])
    return s.finish()


def both(monkeypatch: pytest.MonkeyPatch, path: str, data: bytes, **kw: Any
         ) -> tuple[list[SecretHit], list[SecretHit]]:
    """(regex passes, prefilter) findings of one file; the prefilter reads buffers of
    any size here."""
    monkeypatch.setattr(prefilter, "MIN_BYTES", 0)
    with_prefilter = scan(path, data, **kw)
    with monkeypatch.context() as m:
        m.setattr(prefilter, "_PREFILTER", None)
        without = scan(path, data, **kw)
    return without, with_prefilter


def test_the_prefilter_is_in_use_where_hyperscan_is_installed() -> None:
    assert prefilter.available()
    places = prefilter.candidates(b"x" * 5000 + b" token ghp_abc AKIA eyJ https://user:pw@host", False)
    assert places is not None
    assert set(places) == {b"_", b"K", b"J", b"@"}


def test_literal_prefix_stops_before_a_quantified_character() -> None:
    assert prefilter.literal_prefix("IA[A-Z2-7]{16}") == "IA"
    assert prefilter.literal_prefix("ey\\s{0,2}=") == "ey"
    assert prefilter.literal_prefix("BEGIN (?P<x>a)") == "BEGIN "
    assert prefilter.literal_prefix("abc?d") == "ab"
    assert prefilter.literal_prefix("ab{2}") == "a"
    assert prefilter.literal_prefix("[0-9]") == ""


def test_every_format_has_a_pattern_ending_where_its_regex_starts() -> None:
    pats = prefilter.patterns()
    assert len(pats) == len(formats.FORMATS) + 1  # and the URL scan's '@'
    assert {a for a, _, _ in pats} == {f.anchor.encode() for f in formats.FORMATS} | {b"@"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: str(c["source"])[:60])
def test_vectors_give_the_same_findings(case: dict[str, Any],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    text = str(case["text"]).encode()
    # Alone, and far into a large file (other blocks, a token across a block's edge).
    for data in (text, b"filler text line\n" * 16000 + text + b"tail\n" * 10):
        without, with_prefilter = both(monkeypatch, str(case["path"]), data, size=4093)
        assert with_prefilter == without


@pytest.mark.parametrize("f", sorted(p for d in ("found", "clean") for p in (DATA / d).iterdir()
                                     if p.is_file()), ids=lambda p: p.name)
def test_data_files_give_the_same_findings(f: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without, with_prefilter = both(monkeypatch, f"/app/{f.name}", f.read_bytes())
    assert with_prefilter == without


#: Pieces of every format's fixed part, and what surrounds tokens: generated text is
#: dense with near-misses (a prefix without its body, overlapping candidates).
PIECES = [*{f.behind.replace("[pousr]", "p").replace("[sr]", "s").replace("[baprs]", "b")
            .replace("[Aa][Ww][Ss]", "aWs") for f in formats.FORMATS if f.lead},
          "hvs.", "live_", "IA", "ey", "eyJ", "pat_", "-----BEGIN ", "PRIVATE KEY-----\n",
          "RSA ", "AgEIcHlwaS5vcmc", "SECRET_ACCESS_KEY=", "SharedAccessKey=", "authToken=",
          "https://", "user:", "@", "@host.dev", " ", "\n", "=", ".", "_", "-", "/", "\"",
          "0123456789", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz0123456789",
          "Zq8VYuTtW3x9kPp0aLmN4rS7dE2fG6hJ1cBv", "\x00\x01"]


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.sampled_from(PIECES), min_size=1, max_size=400),
       binary=st.booleans(), path=st.sampled_from(["/app/config.env", "/srv/.npmrc",
                                                   "/usr/lib/node_modules/x/index.js"]))
def test_generated_text_gives_the_same_findings(parts: list[str], binary: bool,
                                                path: str) -> None:
    data = "".join(parts).encode()
    with pytest.MonkeyPatch.context() as mp:
        without, with_prefilter = both(mp, path, data, binary=binary, size=997)
    assert with_prefilter == without


def test_patterns_compiled_in_another_process_find_the_same_places(
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"x" * 5000 + b" ghp_abc AKIA eyJ https://user:pw@host -----BEGIN RSA PRIVATE KEY-----"
    here = prefilter.candidates(data, False)
    blob = prefilter.compiled()
    assert blob is not None and here
    monkeypatch.setattr(prefilter, "_PREFILTER", prefilter._PREFILTER)
    prefilter.use_compiled(blob)  # what a worker does with what its parent sent
    assert prefilter.candidates(data, False) == here
    prefilter.use_compiled((b"not a database", b""))  # unusable: compiled here instead
    assert prefilter.candidates(data, False) == here
    prefilter.use_compiled(None)  # the parent had none: the regex passes only
    assert prefilter.candidates(data, False) is None
