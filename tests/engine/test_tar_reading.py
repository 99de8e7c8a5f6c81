"""polyarch reads layers as Go's ``archive/tar`` does (what containerd and BuildKit
extract them with): a differential test on crafted layers.

A small Go program (written here, built with Debian's ``golang-go`` into a temporary
directory) lists every entry of each layer: name, type flag, size, link name, the
SHA-256 and first bytes of its content, or the error that stops it. polyarch's
:func:`~polyarch.checks.tarstream.list_entries` must give the same list and fail where
Go fails; its layer scan must find an ELF file exactly where Go's content is one.
Layers are made with Python's ``tarfile`` (GNU, PAX, ustar) and, for what it cannot
write (the star prefix, sparse files, odd headers), block by block here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI
from tar_craft import BAD, GOOD

from polyarch.checks.layers import LayerFormatError, normalise, scan_layer
from polyarch.checks.tarstream import list_entries
from polyarch.platforms import EM_X86_64

LISTER = r"""
package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
)

type entry struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Size   int64  `json:"size"`
	Link   string `json:"link"`
	Digest string `json:"digest"`
	Head   string `json:"head"`
}

type result struct {
	Entries []entry `json:"entries"`
	Error   string  `json:"error"`
}

type headWriter struct{ head []byte }

func (w *headWriter) Write(p []byte) (int, error) {
	if n := 4 - len(w.head); n > 0 {
		if n > len(p) {
			n = len(p)
		}
		w.head = append(w.head, p[:n]...)
	}
	return len(p), nil
}

func list(path string) (res result) {
	res.Entries = []entry{}
	f, err := os.Open(path)
	if err != nil {
		res.Error = err.Error()
		return
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			res.Error = err.Error()
			return
		}
		r = gz
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			res.Error = err.Error()
			return
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // containerd ignores these
		}
		h, hw := sha256.New(), &headWriter{}
		if _, err := io.Copy(io.MultiWriter(h, hw), tr); err != nil {
			res.Error = err.Error()
			return
		}
		res.Entries = append(res.Entries, entry{hdr.Name, string([]byte{hdr.Typeflag}),
			hdr.Size, hdr.Linkname, hex.EncodeToString(h.Sum(nil)), hex.EncodeToString(hw.head)})
	}
	// containerd reads what follows the archive too (to check the diff ID).
	if _, err := io.Copy(io.Discard, r); err != nil {
		res.Error = err.Error()
	}
	return
}

func main() {
	out := json.NewEncoder(os.Stdout)
	for _, p := range os.Args[1:] {
		out.Encode(list(p))
	}
}
"""


@pytest.fixture(scope="module")
def go_lister(tmp_path_factory: pytest.TempPathFactory) -> Callable[[list[Path]], list[Any]]:
    go = shutil.which("go")
    if go is None:
        if IN_CI:
            pytest.fail("go is not installed (scripts/engine up installs golang-go)")
        pytest.skip("go is not installed (scripts/engine up installs golang-go on Debian)")
    work = tmp_path_factory.mktemp("golister")
    (work / "lister.go").write_text(LISTER)
    env = {**os.environ, "GOCACHE": str(work / "cache"), "GOPATH": str(work / "gopath"),
           "GO111MODULE": "off", "GOFLAGS": ""}
    subprocess.run([go, "build", "-o", str(work / "lister"), str(work / "lister.go")],
                   check=True, env=env, timeout=600, capture_output=True)

    def run(paths: list[Path]) -> list[Any]:
        out = subprocess.run([str(work / "lister"), *map(str, paths)], check=True,
                             capture_output=True, text=True, timeout=120).stdout
        return [json.loads(line) for line in out.splitlines()]

    return run


def ours(blob: bytes) -> tuple[list[dict[str, Any]], str]:
    got: list[dict[str, Any]] = []
    try:
        for name, typ, size, link, digest in list_entries([blob[i:i + 700]
                                                           for i in range(0, len(blob), 700)]):
            got.append({"name": name, "type": typ, "size": size, "link": link,
                        "digest": digest})
    except LayerFormatError as e:
        return got, str(e)
    return got, ""


@pytest.fixture(scope="module")
def listed(go_lister: Callable[[list[Path]], list[Any]],
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, Any]]:
    work = tmp_path_factory.mktemp("layers")
    cases = {**GOOD, **BAD}
    blobs = {name: make() for name, make in cases.items()}
    paths = []
    for name, blob in blobs.items():
        (work / name).write_bytes(blob)
        paths.append(work / name)
    return {name: (blobs[name], res)
            for name, res in zip(blobs, go_lister(paths), strict=True)}


@pytest.mark.parametrize("case", sorted(GOOD))
def test_polyarch_lists_every_entry_as_go_does(
        case: str, listed: dict[str, tuple[bytes, Any]]) -> None:
    blob, go = listed[case]
    assert go["error"] == "", f"Go could not read the {case} layer: {go['error']}"
    assert go["entries"], case
    got, err = ours(blob)
    assert err == ""
    want = [{k: e[k] for k in ("name", "type", "size", "link", "digest")}
            for e in go["entries"]]
    assert got == want


@pytest.mark.parametrize("case", sorted(GOOD))
def test_the_scan_finds_elf_files_where_go_reads_them(
        case: str, listed: dict[str, tuple[bytes, Any]]) -> None:
    blob, go = listed[case]
    elf_names: set[str] = set()
    for e in go["entries"]:
        if (e["head"] == "7f454c46" and e["type"] in "07S") or (
                e["type"] == "1" and normalise(e["link"]) in elf_names):  # the same file
            elf_names.add(normalise(e["name"]))
    scan = scan_layer("sha256:" + "0" * 64, [blob])
    assert set(scan.elf) == elf_names
    assert all(h.machine == EM_X86_64 for h in scan.elf.values())


@pytest.mark.parametrize("case", sorted(BAD))
def test_polyarch_fails_where_go_fails(case: str,
                                       listed: dict[str, tuple[bytes, Any]]) -> None:
    blob, go = listed[case]
    assert go["error"], f"Go read the {case} layer without an error"
    got, err = ours(blob)
    assert err, f"polyarch read the {case} layer without an error (Go: {go['error']})"
    want = [{k: e[k] for k in ("name", "type", "size", "link", "digest")}
            for e in go["entries"]]
    assert got == want
    with pytest.raises(LayerFormatError):
        scan_layer("sha256:" + "0" * 64, [blob])
