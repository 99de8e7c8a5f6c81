"""The stream marks skip only files that cannot give a content finding: a layer's
findings are the same with them (the default) and with every file scanned on its own
(a content hook given, as before the marks)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oci_images import make_layer

from polyarch import redact
from polyarch.checks import layers
from polyarch.checks.secrets import ContentScanner, formats, marks, prefilter

from .test_prefilter import PIECES

if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
    import hyperscan  # noqa: F401 - in CI the prefilter is tested, never skipped
else:
    pytest.importorskip("hyperscan")

KNOWN = "kn0wn-Value-7Hq2"
TOKEN = b"ghp_Zq8VYuTtW3x9kPp0aLmN4rS7dE2fG6hJ1cBv"


def chunks(blob: bytes, size: int = 777) -> list[bytes]:
    return [blob[i:i + size] for i in range(0, len(blob), size)]


def both(files: dict[str, bytes | tuple[str, str | None]], compression: str = "none",
         ) -> tuple[layers.LayerScan, layers.LayerScan, int]:
    """(every file scanned, default with marks, files the marks let pass unscanned)."""
    blob, _ = make_layer(files, compression)
    every = layers.scan_layer("sha256:x", chunks(blob), hook=layers.content_scanner)
    made = 0
    real = ContentScanner.__init__

    def counting(self: ContentScanner, path: str, *, binary: bool = False) -> None:
        nonlocal made
        made += 1
        real(self, path, binary=binary)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ContentScanner, "__init__", counting)
        default = layers.scan_layer("sha256:x", chunks(blob))
    return every, default, made


@pytest.fixture(autouse=True)
def _small_lookahead(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A small read-ahead, so that files larger than it (decided only by their own
    scan) are common here; one known value of this build."""
    monkeypatch.setattr(marks, "AHEAD", 1500)
    redact.register([KNOWN])
    yield
    redact.REDACTOR.clear()


def test_a_clean_file_is_not_scanned_and_a_token_is_still_found() -> None:
    files: dict[str, bytes | tuple[str, str | None]] = {
        f"app/node_modules/m{i}/index.js": b"module.exports = 1 // @param x\n" * 20
        for i in range(30)}
    files["app/src/config.js"] = b"const t = '" + TOKEN + b"'\n"
    files["app/src/big.js"] = b"x\n" * 5000 + TOKEN + b"\n"  # past the read-ahead
    files["app/.env"] = b"DB_PASSWORD=hunter2hunter2\n"  # read by its name rules
    files["app/utf16.txt"] = ("token " + TOKEN.decode()).encode("utf-16")
    files["app/known.txt"] = b"v=" + KNOWN.encode() + b"\n"
    files["app/db.yml"] = b"url: postgres://admin:Zq8VYuTtW3x9kPp0@db.internal:5432/app\n"
    every, default, made = both(files, "gzip")
    assert default.secrets == every.secrets
    assert set(every.secrets) == {"/app/src/config.js", "/app/src/big.js", "/app/.env",
                                  "/app/utf16.txt", "/app/known.txt", "/app/db.yml"}
    assert made < 10  # the 30 clean modules were not scanned on their own


def test_too_many_places_give_up_and_scan_every_file(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    monkeypatch.setattr(marks, "MAX_PLACES", 50)
    files: dict[str, bytes | tuple[str, str | None]] = {
        "a/many.txt": b"npm_ eyJ AKIA " * 2000, "a/clean.txt": b"nothing here\n",
        "a/tok.txt": TOKEN}
    every, default, made = both(files)
    assert default.secrets == every.secrets and "/a/tok.txt" in every.secrets
    assert made == 3


def test_the_seam_is_longer_than_any_match_of_the_prefilter() -> None:
    import re._parser as sre  # the regex parser's widths

    def widest(pattern: bytes) -> int:
        return int(sre.parse(pattern.decode("latin-1")).getwidth()[1])

    # The URL pattern is unbounded; a URL credential the scanner reports is not.
    widths = [widest(p) for a, p, _ in prefilter.patterns() if a != b"@"]
    url = widest(formats.URL_CREDENTIALS.pattern)
    assert max(widths) < url < marks.SEAM


def test_a_short_layer_is_walked_without_the_prefilter(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    monkeypatch.setattr(prefilter, "_PREFILTER", prefilter._UNLOADED)
    monkeypatch.setattr(marks, "AHEAD", 1 << 20)
    every, default, made = both({"a/tok.txt": TOKEN, "a/clean.txt": b"clean"})
    assert default.secrets == every.secrets and made == 2
    assert prefilter._PREFILTER is prefilter._UNLOADED  # not loaded for it


def test_tokens_across_the_stream_pieces_are_found() -> None:
    # One token per file, at every offset: some cross the 777-byte pieces read.
    files: dict[str, bytes | tuple[str, str | None]] = {
        f"a/f{shift}.txt": b"." * shift + TOKEN + b"." * 30 for shift in range(0, 800, 9)}
    every, default, _ = both(files)
    assert default.secrets == every.secrets and len(every.secrets) == len(files)


def test_a_value_of_this_build_across_read_chunks_is_found() -> None:
    filler = b"." * 2990  # the value straddles the scan's chunks of 777 bytes
    every, default, _ = both({"a/f.txt": filler + KNOWN.encode(), "a/g.txt": b"clean"})
    assert default.secrets == every.secrets and "/a/f.txt" in every.secrets


URL = "https://deploy:Zq8VYuTtW3x9kPp0@registry.internal/x"
NAMES = ["app/config.js", "app/.env", "root/.npmrc", "srv/app/settings.json",
         "usr/lib/node_modules/x/index.js", "usr/share/doc/x/README.md", "app/x.txt"]


@settings(max_examples=150, deadline=None)
@given(files=st.lists(st.tuples(
    st.sampled_from(NAMES), st.integers(0, 99),
    st.lists(st.sampled_from([*PIECES, TOKEN.decode(), KNOWN, KNOWN[:9], URL]), max_size=60),
    st.integers(0, 2), st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-16-le"])),
    min_size=1, max_size=12))
def test_generated_layers_give_the_same_findings(
        files: list[tuple[str, int, list[str], int, str]]) -> None:
    layer: dict[str, bytes | tuple[str, str | None]] = {}
    for name, n, parts, grow, codec in files:
        text = "".join(parts)
        # 0: as is; 1: after filler past the read-ahead; 2: the same text repeated
        data = (("line of filler\n" * 300 + text) if grow == 1 else text * (1 + 30 * (grow == 2)))
        layer[f"{n}/{name}"] = data.encode(codec, "surrogatepass")
    every, default, _ = both(layer)
    assert default.secrets == every.secrets
