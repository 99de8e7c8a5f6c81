"""The layer walker on every tar format engines read (the differential test against
Go's archive/tar is tests/engine/test_tar_reading.py): what each crafted layer holds,
and cut or corrupt streams that no engine can apply."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from pathlib import Path

import pytest
import zstandard
from oci_images import write_oci_layout
from tar_craft import BAD, ELF, GOOD, data, header, pax

from polyarch.checks.filesystem import merge
from polyarch.checks.layers import LayerFormatError, scan_layer
from polyarch.checks.tarstream import list_entries
from polyarch.cli import run as cli_run

DIGEST = "sha256:" + "0" * 64


def scan(blob: bytes, size: int = 700) -> set[str]:
    return set(scan_layer(DIGEST, [blob[i:i + size] for i in range(0, len(blob), size)]).elf)


@pytest.mark.parametrize("version", ["pax-sparse-0.0", "pax-sparse-0.1", "pax-sparse-1.0"])
def test_a_binary_in_a_pax_sparse_file_is_found_under_its_real_name(version: str) -> None:
    name = {"pax-sparse-0.0": "/sparse/v00", "pax-sparse-0.1": "/sparse/v01-real-name",
            "pax-sparse-1.0": "/sparse/v10-real-name"}[version]
    assert scan(GOOD[version]()) == {name}
    listed = list(list_entries([GOOD[version]()]))
    assert [(n, t, s) for n, t, s, _l, _d in listed] == [(name.lstrip("/"), "0", 10000)]


def test_old_gnu_sparse_files_are_read_with_their_holes() -> None:
    # The second file starts with a hole: its first bytes are zeros, not an ELF header.
    assert scan(GOOD["gnu-sparse-old"](), 100) == {"/sparse/old"}
    sizes = {n: s for n, _t, s, _l, _d in list_entries([GOOD["gnu-sparse-old"]()])}
    assert sizes == {"sparse/old": 30000, "sparse/hole-first": 10000}


def test_the_star_prefix_is_131_bytes() -> None:
    assert scan(GOOD["star-prefix"]()) == {"/opt/" + "p" * 127 + "/star-file"}


def test_entries_without_data_do_not_hide_the_next_header() -> None:
    # A directory whose size field covers the next entry: Go reads that entry.
    assert scan(GOOD["header-only-sizes"]()) == {"/hidden/x86"}


def test_odd_headers_as_go_reads_them() -> None:
    names = [n for n, *_ in list_entries([GOOD["odd-headers"]()])]
    assert names[:4] == ["olddir/", "oldfile", "real-name", "kept-name"]
    assert "global-evil" not in names and "from-long" in names and "short" not in names
    assert {"/pax-size", "/pax-link", "/long-link", "/octal", "/base256", "/spaced",
            "/contig"} == scan(GOOD["odd-headers"]())


@pytest.mark.parametrize("case", sorted(BAD))
def test_broken_layers_are_errors(case: str) -> None:
    with pytest.raises(LayerFormatError):
        scan_layer(DIGEST, [BAD[case]()])


def layer_bytes() -> bytes:
    return header(b"bin/app", size=len(ELF)) + data(ELF) + header(b"etc/big", size=9000) \
        + data(os.urandom(9000)) + b"\0" * 1024


@pytest.mark.parametrize(("compression", "keep"), [
    (c, k) for c in ("gzip", "zstd", "none") for k in (0.3, 0.7, -8)
    # A plain tar cut in its end-of-archive blocks is complete for Go too.
    if (c, k) != ("none", -8)])
def test_a_cut_stream_is_an_error(compression: str, keep: float) -> None:
    raw = layer_bytes()
    blob = {"gzip": lambda: gzip.compress(raw), "none": lambda: raw,
            "zstd": lambda: zstandard.ZstdCompressor().compress(raw)}[compression]()
    cut = blob[:int(len(blob) * keep)] if keep > 0 else blob[:int(keep)]
    with pytest.raises(LayerFormatError, match="truncated"):
        scan_layer(DIGEST, [cut])
    assert scan(blob) == {"/bin/app"}  # the whole stream is fine


def test_zstd_frames_of_every_kind_are_followed() -> None:
    raw = layer_bytes()
    cctx = zstandard.ZstdCompressor(write_checksum=True, write_content_size=False)
    skippable = (0x184D2A5A).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"skip!"
    blob = cctx.compress(raw[:1024]) + skippable + zstandard.ZstdCompressor(level=19) \
        .compress(raw[1024:])
    for size in (1, 3, 4096):
        assert scan(blob, size) == {"/bin/app"}
    stream = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(stream, closefd=False) as w:
        w.write(raw)
    assert scan(stream.getvalue(), 5) == {"/bin/app"}


def test_verify_reports_a_truncated_gzip_layer(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYARCH_CACHE_DIR", str(tmp_path / "cache"))
    raw = layer_bytes()
    cut = gzip.compress(raw)[:-20]
    d = write_oci_layout(tmp_path / "L", [
        ("linux/amd64", [(cut, "sha256:" + hashlib.sha256(raw).hexdigest(), "gzip")])])
    code = cli_run(["verify", f"oci:{d}", "--platform", "linux/amd64"])
    out, err = capsys.readouterr()
    assert code == 5
    assert "gzip stream is truncated" in out + err
    assert "Traceback" not in err


def test_a_hard_link_to_a_binary_of_a_lower_layer_is_that_binary() -> None:
    lower = header(b"opt/tool/bin/real", size=len(ELF)) + data(ELF) + b"\0" * 1024
    long = b"usr/bin/" + b"t" * 111
    # The link's name from a GNU long name, its target from a PAX linkpath record (the
    # header's own link name is another path).
    upper = (pax([(b"linkpath", b"/opt/tool/bin/real")])
             + header(b"././@LongLink", typ=b"L", size=len(long) + 1) + data(long + b"\0")
             + header(b"short", typ=b"1", link=b"wrong/target") + b"\0" * 1024)
    files = merge([scan_layer("sha256:lower", [lower]), scan_layer("sha256:upper", [upper])]).files
    linked = files["/" + long.decode()]
    assert linked.elf is not None and linked.elf == files["/opt/tool/bin/real"].elf
    assert linked.layer == "sha256:upper"


def test_a_sparse_map_over_1_mib_is_refused_before_it_fills_memory() -> None:
    count = 150_000  # 300,001 lines: about 1.5 MB of map
    mapping = data(b"%d\n" % count + b"".join(b"%d\n1\n" % (2 * i) for i in range(count)))
    layer = (pax([(b"GNU.sparse.major", b"1"), (b"GNU.sparse.minor", b"0"),
                  (b"GNU.sparse.realsize", b"%d" % (2 * count))])
             + header(b"s", size=len(mapping) + count) + mapping + data(b"x" * count)
             + b"\0" * 1024)
    with pytest.raises(LayerFormatError, match="sparse map larger than 1048576 bytes"):
        scan_layer(DIGEST, [layer])
