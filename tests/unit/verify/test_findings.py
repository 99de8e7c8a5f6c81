"""Findings across layers: deleted-but-shipped credentials, micro-architecture levels."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from faultproxy import make_layer, write_oci_layout

from polyarch.checks.verify import verify_source
from polyarch.platforms import EM_AARCH64, EM_X86_64, Platform, parse_platforms
from polyarch.registry import OCILayout

TOKEN = b"npm_S3cretTokenValue42abcdefgh"
NPMRC = b"//registry.npmjs.org/:_authToken=" + TOKEN + b"\n"
ARM = parse_platforms("linux/arm64")


def elf(machine: int) -> bytes:
    return b"\x7fELF\x02\x01\x01\x00" + b"\0" * 8 + struct.pack("<HHI", 2, machine, 1) + b"\0" * 99


def verify_layers(tmp: Path, *layers: dict[str, bytes | tuple[str, str | None]],
                  allow: tuple[str, ...] = ()) -> tuple[dict[str, object], list[str]]:
    blobs = [make_layer(files) for files in layers]
    d = write_oci_layout(tmp, [("linux/arm64", [(*b, "gzip") for b in blobs])])
    lay = OCILayout(d)
    digests = [str(x["digest"]) for x in lay.manifest(
        lay.root().json["manifests"][0]["digest"]).json["layers"]]
    report = verify_source(lay, ARM, allow=allow, cache=None)
    return report.to_json(), digests


def test_a_token_deleted_by_a_later_layer_is_still_shipped(tmp_path: Path) -> None:
    doc, digests = verify_layers(tmp_path, {"bin/app": elf(EM_AARCH64), "root/.npmrc": NPMRC},
                                 {"root/.wh..npmrc": b""})
    assert doc["ok"] is False
    (plat,) = doc["platforms"]  # type: ignore[misc]
    (f,) = plat["findings"]
    assert (f["check"], f["severity"], f["kind"], f["path"]) == (
        "secrets", "error", "deleted-but-shipped", "/root/.npmrc")
    assert f["layer"] == digests[0]  # the blob that holds it
    assert digests[1][7:19] in f["message"] and "npm auth token" in f["message"]
    assert TOKEN.decode() not in json.dumps(doc)


def test_overwritten_and_opaque_removals_count_too(tmp_path: Path) -> None:
    doc, _ = verify_layers(
        tmp_path,
        {"root/.npmrc": NPMRC, "home/u/.docker/config.json":
         b'{"auths": {"ghcr.io": {"auth": "dXNlcjpwYXNzd29yZA=="}}}'},
        {"root/.npmrc": b"registry=https://registry.npmjs.org/\n",
         "home/u/.docker/.wh..wh..opq": b""})
    found = sorted((f["path"], f["kind"]) for p in doc["platforms"]  # type: ignore[attr-defined]
                   for f in p["findings"])
    assert found == [("/home/u/.docker/config.json", "deleted-but-shipped"),
                     ("/root/.npmrc", "deleted-but-shipped")]
    msgs = " ".join(f["message"] for p in doc["platforms"] for f in p["findings"])  # type: ignore[attr-defined]
    assert "overwritten by layer" in msgs and "deleted by layer" in msgs


def test_a_directory_replaced_by_a_file_takes_its_binaries_along(tmp_path: Path) -> None:
    doc, _ = verify_layers(tmp_path, {"opt/tool/bin/x": elf(EM_X86_64)},
                           {"opt/tool": b"now a file\n"})
    assert doc["ok"] is True


def test_a_file_over_one_directory_leaves_its_neighbours_in_place(tmp_path: Path) -> None:
    # /opt/tool becomes a file: what was below it goes, at any depth; /opt/toolbox and
    # /opt/other keep theirs (their wrong-machine binaries are still found), and so does
    # a binary the same layer adds under a directory it does not replace.
    doc, _ = verify_layers(tmp_path, {"opt/tool/bin/deep/x": elf(EM_X86_64),
                                      "opt/tool/y": elf(EM_X86_64),
                                      "opt/toolbox/bin/z": elf(EM_X86_64),
                                      "opt/other/bin/w": elf(EM_X86_64)},
                           {"opt/tool": b"now a file\n", "opt/new/bin/v": elf(EM_X86_64)})
    (plat,) = doc["platforms"]  # type: ignore[misc]
    wrong = sorted(f["path"] for f in plat["findings"] if f["severity"] == "error")
    assert wrong == ["/opt/new/bin/v", "/opt/other/bin/w", "/opt/toolbox/bin/z"]


def test_allowed_deleted_credentials_are_a_note(tmp_path: Path) -> None:
    doc, _ = verify_layers(tmp_path, {"root/.npmrc": NPMRC}, {"root/.wh..npmrc": b""},
                           allow=("/root/.npmrc",))
    assert doc["ok"] is True
    (f,) = doc["platforms"][0]["findings"]  # type: ignore[index]
    assert f["severity"] == "info" and "allowed by /root/.npmrc" in f["message"]


def test_amd64_levels_are_checked_as_x86_64_with_a_note(tmp_path: Path) -> None:
    good = make_layer({"bin/app": elf(EM_X86_64)})
    bad = make_layer({"bin/app": elf(EM_AARCH64)})
    d = write_oci_layout(tmp_path, [("linux/amd64/v3", [(*good, "gzip")]),
                                    ("linux/amd64/v2", [(*bad, "gzip")])])
    want = [Platform("linux", "amd64", "v3"), Platform("linux", "amd64", "v2")]
    report = verify_source(OCILayout(d), want, cache=None)
    by = {p.platform: p for p in report.platforms}
    v3, v2 = by["linux/amd64/v3"], by["linux/amd64/v2"]
    assert v3.ok and v3.files_checked == 1
    (note,) = [f for f in v3.findings if f.severity == "info"]
    assert "micro-architecture level" in note.message and "v3" in note.message
    assert [f.path for f in v2.findings if f.severity == "error"] == ["/bin/app"]
