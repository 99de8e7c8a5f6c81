"""Layer streaming, whiteouts and verify() on OCI layouts written by the test (no engine)."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
from faultproxy import make_layer, write_oci_layout

from polyarch.checks.filesystem import merge
from polyarch.checks.layers import LayerFormatError, scan_layer
from polyarch.checks.verify import verify
from polyarch.cli import run as cli_run
from polyarch.errors import RegistryError
from polyarch.platforms import EM_AARCH64, EM_X86_64, parse_platforms
from polyarch.registry import OCILayout

BOTH = parse_platforms("linux/amd64,linux/arm64")


def elf(machine: int) -> bytes:
    ident = b"\x7fELF\x02\x01\x01\x00" + b"\0" * 8
    return ident + struct.pack("<HHI", 2, machine, 1) + b"\0" * 4000


AMD = elf(EM_X86_64)
ARM = elf(EM_AARCH64)


def chunks(blob: bytes, size: int = 777) -> list[bytes]:
    return [blob[i:i + size] for i in range(0, len(blob), size)]


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_scan_layer_reads_every_compression(compression: str) -> None:
    long_name = "usr/lib/" + "x" * 150 + "/libfoo.so"
    blob, _ = make_layer({"bin/app": AMD, long_name: ARM, "etc/hosts": b"127.0.0.1 localhost\n",
                          "root/.npmrc": b"//r/:_authToken=npm_abcdefghijklmnopqrstu\n",
                          "bin/app2": ("link", "bin/app")}, compression)
    scan = scan_layer("sha256:x", chunks(blob))
    assert scan.compression == compression
    assert scan.compressed_bytes == len(blob)
    final = merge([scan]).files
    assert sorted(final) == sorted(["/bin/app", "/bin/app2", "/" + long_name, "/root/.npmrc"])
    assert final["/bin/app"].elf is not None
    assert final["/bin/app"].elf.machine == EM_X86_64
    assert final["/bin/app2"].elf == final["/bin/app"].elf  # hard link
    assert final["/" + long_name].elf is not None
    assert [h.kind for h in final["/root/.npmrc"].secrets] == ["npm auth token"]


def test_multi_member_gzip() -> None:
    import gzip

    blob, _ = make_layer({"a": AMD}, "none")
    # Split the tar across two gzip members, as some tools write it.
    two = gzip.compress(blob[:700]) + gzip.compress(blob[700:])
    final = merge([scan_layer("sha256:x", chunks(two, 100))]).files
    assert list(final) == ["/a"]


def test_whiteouts_and_opaque_directories() -> None:
    lower, _ = make_layer({"opt/wrong": AMD, "opt/keep": AMD, "srv/a/x": AMD, "srv/a/y": AMD,
                           "data": ("dir", None), "data/z": AMD})
    upper, _ = make_layer({"opt/.wh.wrong": b"", "srv/a/.wh..wh..opq": b"",
                           "srv/a/new": ARM, "data": b"now a file"})
    scans = [scan_layer("sha256:lower", chunks(lower)), scan_layer("sha256:upper", chunks(upper))]
    final = merge(scans).files
    assert sorted(final) == ["/opt/keep", "/srv/a/new"]
    assert final["/opt/keep"].layer == "sha256:lower"
    assert final["/srv/a/new"].layer == "sha256:upper"


def test_a_later_layer_replaces_a_file() -> None:
    lower, _ = make_layer({"bin/tool": AMD})
    upper, _ = make_layer({"bin/tool": b"#!/bin/sh\necho now a script\n"})
    final = merge([scan_layer("sha256:1", [lower]), scan_layer("sha256:2", [upper])]).files
    # No binary is left: the path now holds a script, kept for its #! line.
    assert [(f.path, f.elf, f.script) for f in final.values()] == [("/bin/tool", None, "/bin/sh")]


def test_not_a_tar() -> None:
    with pytest.raises(LayerFormatError):
        scan_layer("sha256:x", [b"{\"this is\": \"json, not a tar stream\"}" + b" " * 600])


def layout(tmp_path: Path, arm_files: dict[str, bytes | tuple[str, str | None]]) -> Path:
    amd_layer = make_layer({"bin/app": AMD, "etc/os-release": b"ID=test\n"})
    arm_layer = make_layer(arm_files, "zstd")
    return write_oci_layout(tmp_path / "layout", [
        ("linux/amd64", [(*amd_layer, "gzip")]),
        ("linux/arm64", [(*arm_layer, "zstd")]),
    ])


def test_verify_layout_good(tmp_path: Path) -> None:
    d = layout(tmp_path, {"bin/app": ARM})
    report = verify(f"oci:{d}", BOTH)
    assert report.ok, report.to_json()
    assert [p.platform for p in report.platforms] == ["linux/amd64", "linux/arm64"]
    for p in report.platforms:
        assert {c: p.check_status(c) for c in ("coverage", "labels", "binaries", "secrets")} == {
            "coverage": "pass", "labels": "pass", "binaries": "pass", "secrets": "pass"}
        assert p.files_checked == 1


def test_verify_layout_wrong_arch_names_file_and_layer(tmp_path: Path) -> None:
    d = layout(tmp_path, {"bin/app": ARM, "usr/bin/helper": AMD})
    report = verify(f"oci:{d}", BOTH)
    assert not report.ok
    arm = next(p for p in report.platforms if p.platform == "linux/arm64")
    errs = [f for f in arm.findings if f.severity == "error"]
    assert [(f.check, f.path) for f in errs] == [("binaries", "/usr/bin/helper")]
    assert errs[0].layer is not None and errs[0].layer.startswith("sha256:")
    assert "x86-64" in errs[0].message
    amd = next(p for p in report.platforms if p.platform == "linux/amd64")
    assert amd.ok
    # --allow turns it into an info finding.
    allowed = verify(f"oci:{d}", BOTH, allow=["/usr/bin/*"])
    assert allowed.ok
    assert any(f.severity == "info" and "allowed" in f.message
               for p in allowed.platforms for f in p.findings)


def test_verify_cli_on_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = layout(tmp_path, {"bin/app": ARM, "root/.npmrc": b"_authToken=npm_S3cretTokenValue42\n"})
    code = cli_run(["verify", f"oci:{d}", "--platform", "linux/amd64,linux/arm64", "--json"])
    out, err = capsys.readouterr()
    assert code == 5
    doc = json.loads(out)
    assert doc["ok"] is False
    arm = next(p for p in doc["platforms"] if p["platform"] == "linux/arm64")
    assert arm["checks"]["secrets"] == "fail"
    assert [f["path"] for f in arm["findings"]] == ["/root/.npmrc"]
    assert "npm_S3cretTokenValue42" not in out + err
    assert "verification failed" in err


def test_tampered_blob_is_detected(tmp_path: Path) -> None:
    d = layout(tmp_path, {"bin/app": ARM})
    lay = OCILayout(d)
    man = lay.manifest(lay.root().json["manifests"][1]["digest"]).json
    blob = d / "blobs" / "sha256" / man["layers"][0]["digest"].split(":")[1]
    data = bytearray(blob.read_bytes())
    data[-5] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises((RegistryError, LayerFormatError)):
        verify(f"oci:{d}", BOTH)


def test_layout_as_tar(tmp_path: Path) -> None:
    d = layout(tmp_path, {"bin/app": ARM})
    archive = shutil.make_archive(str(tmp_path / "img"), "tar", root_dir=d)
    report = verify(f"oci:{archive}", BOTH)
    assert report.ok and report.reference == f"oci:{archive}"
    named = verify(f"oci:{archive}:latest", BOTH, deep=False)
    assert named.index_digest == report.index_digest


def test_corrupt_gzip_layer_is_a_format_error() -> None:
    blob, _ = make_layer({"bin/app": AMD * 50}, "gzip")
    bad = bytearray(blob)
    for i in range(40, 60):
        bad[i] ^= 0x5A
    with pytest.raises(LayerFormatError, match="gzip stream is corrupt"):
        scan_layer("sha256:x", chunks(bytes(bad)))


GHP = "ghp_" + "R8vKq2LmX4tZ9wNc7YbH3jP6sD1fG5aE0uTo"  # made up, in GitHub's format


def test_content_of_any_text_file_is_scanned_across_chunks() -> None:
    text = (b"x = 1\n" * 50_000) + f"token: {GHP}\n".encode()
    blob, _ = make_layer({"srv/app/settings.yaml": text, "bin/app": AMD,
                          "srv/app/logo.png": b"\x89PNG\r\n\x1a\n" + GHP.encode()})
    for size in (100, 4096, 1 << 20):
        scan = scan_layer("sha256:x", chunks(blob, size))
        hits = scan.secrets["/srv/app/settings.yaml"]
        assert [(h.kind, h.line) for h in hits] == [("GitHub token", 50_001)]
        assert GHP not in repr(scan.to_json())
        assert "/srv/app/logo.png" not in scan.secrets  # skipped by its magic bytes
        assert set(scan.elf) == {"/bin/app"}


def test_hard_links_keep_findings_and_name_rules() -> None:
    blob, _ = make_layer({"srv/token.txt": f"{GHP}\n".encode(),
                          "srv/copy": ("link", "srv/token.txt"),
                          "srv/plain.txt": b"nothing here\n",
                          "root/.npmrc": ("link", "srv/plain.txt")})
    scan = scan_layer("sha256:x", [blob])
    assert [h.kind for h in scan.secrets["/srv/copy"]] == ["GitHub token"]
    (named,) = scan.secrets["/root/.npmrc"]
    assert named.severity == "warning" and "srv/plain.txt" in named.where


@pytest.mark.parametrize("fmt", ["ustar", "gnu", "pax"])
def test_long_names_in_every_tar_format(fmt: str) -> None:
    import io
    import tarfile

    name = "usr/lib/" + "/".join(["d" * 40] * 3) + "/libfoo.so"  # needs a prefix or more
    buf = io.BytesIO()
    formats = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}
    with tarfile.open(fileobj=buf, mode="w", format=formats[fmt]) as tf:
        for n, data in ((name, ARM), ("bin/x", AMD)):
            info = tarfile.TarInfo(n)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    scan = scan_layer("sha256:x", chunks(buf.getvalue(), 300))
    assert set(scan.elf) == {"/" + name, "/bin/x"}
    assert scan.elf["/" + name].machine == EM_AARCH64


def test_symlinks_and_executable_scripts_are_kept_for_what_runs() -> None:
    long_interp = "/opt/" + "p" * 120 + "/bin/python3"
    files: dict[str, bytes | tuple[str, str | None]] = {
        "usr/local/bin/node": ("sym", "/opt/node-v20.11.0-linux-x64/bin/node"),
        "usr/local/bin/tool": ("sym", "../lib/tool/run"),
        "usr/local/bin/app": f"#!{long_interp} -u\nprint('x' * 4000)\n".encode() + b"#" * 9000,
        "usr/local/bin/same": ("link", "usr/local/bin/app"),
        "usr/local/bin/replaced": ("sym", "elsewhere"),
    }
    blob, _ = make_layer(files)
    # Every chunk boundary: a #! line that starts in one chunk and ends in the next.
    for size in (100, 511, 777, 1 << 16):
        scan = scan_layer("sha256:s", chunks(blob, size))
        assert scan.symlinks == {
            "/usr/local/bin/node": "/opt/node-v20.11.0-linux-x64/bin/node",
            "/usr/local/bin/tool": "../lib/tool/run",
            "/usr/local/bin/replaced": "elsewhere"}
        assert scan.scripts == {"/usr/local/bin/app": f"{long_interp} -u",
                                "/usr/local/bin/same": f"{long_interp} -u"}
    # A later layer's file replaces a symlink; a script without an exec bit is not one.
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("usr/local/bin/replaced")
        data = b"#!/bin/sh\n"
        info.size, info.mode = len(data), 0o644
        tf.addfile(info, io.BytesIO(data))
    upper = scan_layer("sha256:u", [buf.getvalue()])
    assert upper.scripts == {} and upper.symlinks == {}
    final = merge([scan_layer("sha256:s", [blob]), upper]).files
    assert "/usr/local/bin/replaced" not in final
    assert final["/usr/local/bin/node"].link == "/opt/node-v20.11.0-linux-x64/bin/node"
    assert final["/usr/local/bin/app"].script == f"{long_interp} -u"


def test_a_layer_that_is_not_a_tar_fails_verification_cleanly(run_cli: Any, tmp_path: Path) -> None:
    import gzip
    import hashlib

    from faultproxy import make_layer, write_oci_layout

    good = make_layer({"etc/os-release": b"ID=test\n"})
    junk = gzip.compress(b"this is not a tar archive\n" * 40)
    bad = (junk, "sha256:" + hashlib.sha256(gzip.decompress(junk)).hexdigest(), "gzip")
    layout = write_oci_layout(tmp_path / "lay", [("linux/amd64", [(*good, "gzip")]),
                                                  ("linux/arm64", [bad])])
    run = run_cli("verify", f"oci:{layout}", "--platform", "linux/amd64,linux/arm64", "--json")
    assert run.code == 5, run.err
    assert "internal error" not in run.err
    arm = next(p for p in run.json()["platforms"] if p["platform"] == "linux/arm64")
    assert arm["checks"]["binaries"] == "fail"
