"""What verification prints: a line per platform with its counts below error and where
to read them, and on failure the ``--allow PLATFORM=GLOB`` line that accepts each error,
which, given back to the command, really does."""

from __future__ import annotations

import json
import re
import shlex
import struct
from pathlib import Path

import pytest
from faultproxy import make_layer, write_oci_layout

from polyarch.checks.verify import verify_source
from polyarch.cli import run
from polyarch.pipeline.verify import allow_lines, findings_text, platform_lines
from polyarch.platforms import EM_AARCH64, EM_X86_64, parse_platforms
from polyarch.registry import OCILayout

NODE = "/opt/node-v20.11.0-linux-x64/bin/node"
ODD = "/srv/tools [x64]/run*"  # glob characters in a real path must not act as globs


def elf(machine: int) -> bytes:
    return b"\x7fELF\x02\x01\x01\x00" + b"\0" * 8 + struct.pack("<HHI", 2, machine, 1) + b"\0" * 99


def layout(tmp: Path) -> Path:
    """linux/amd64 clean; linux/arm64/v8 (the variant as some indexes write it) with an
    x86-64 node on PATH, an x86-64 program at an odd path, and an inert multiarch lib."""
    arm = {NODE.lstrip("/"): elf(EM_X86_64), ODD.lstrip("/"): elf(EM_X86_64),
           "srv/tools [x64]/runner": elf(EM_X86_64),  # what the escaped glob must not hit
           "usr/lib/x86_64-linux-gnu/libz.so.1": elf(EM_X86_64),
           "usr/bin/env": elf(EM_AARCH64)}
    amd = {"usr/bin/env": elf(EM_X86_64)}
    return write_oci_layout(tmp / "layout", [
        ("linux/amd64", [(*make_layer(amd), "gzip")]),
        ("linux/arm64/v8", [(*make_layer(arm), "gzip")])],
        run={"linux/arm64/v8": {"Env": ["PATH=/opt/node-v20.11.0-linux-x64/bin:/usr/bin"]}})


def test_the_printed_allow_lines_accept_exactly_those_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = layout(tmp_path)
    assert run(["verify", f"oci:{d}", "--platform", "linux/amd64,linux/arm64"]) == 5
    out = capsys.readouterr()
    text = out.out + out.err
    assert "/srv/tools [x64]/run*" in text  # the table prints paths as they are
    lines = re.findall(r"^\s*(--allow .+)$", text, re.M)
    assert sorted(lines) == sorted([
        f"--allow linux/arm64={NODE}",
        "--allow 'linux/arm64=/srv/tools [[]x64]/run[*]'",
        "--allow 'linux/arm64=/srv/tools [[]x64]/runner'"])
    assert "linux/arm64/v8: 3 errors, 0 warnings, 1 note (--json lists every finding)" in text
    assert "linux/amd64: 0 errors, 0 warnings, 0 notes" in text
    # Given back as a shell would split them, the lines accept every error.
    args = [w for line in lines for w in shlex.split(line)]
    assert run(["verify", f"oci:{d}", "--platform", "linux/amd64,linux/arm64", "--json",
                *args]) == 0
    doc = json.loads(capsys.readouterr().out)
    allowed = [f for p in doc["platforms"] for f in p["findings"] if "(allowed by" in
               f["message"]]
    assert sorted(f["path"] for f in allowed) == sorted([NODE, ODD, "/srv/tools [x64]/runner"])
    assert all(f["severity"] == "info" for f in allowed)
    # Only the escaped path is accepted, not the other file the raw glob would match.
    odd_only = shlex.split(next(x for x in lines if "[*]" in x))
    assert run(["verify", f"oci:{d}", "--platform", "linux/amd64,linux/arm64",
                *odd_only]) == 5
    text = "".join(capsys.readouterr())
    assert "--allow 'linux/arm64=/srv/tools [[]x64]/run[*]'" not in text
    assert "--allow 'linux/arm64=/srv/tools [[]x64]/runner'" in text


def test_a_failed_build_says_the_allow_lines_and_the_counts(tmp_path: Path) -> None:
    report = verify_source(OCILayout(layout(tmp_path)),
                           parse_platforms("linux/amd64,linux/arm64"), cache=None)
    text = findings_text(report)
    assert f"  linux/arm64/v8: binaries: {NODE} ELF 64-bit LSB x86-64" in text
    assert "a directory of the config's PATH" in text
    assert f"  --allow linux/arm64={NODE}" in text
    assert text.splitlines()[-1] == ("  linux/arm64/v8: 3 errors, 0 warnings, 1 note (this"
                                     " command with --json lists every finding)")
    assert allow_lines(report)[0].startswith("--allow linux/arm64=")


def test_counts_name_the_way_to_see_them_only_when_there_is_something(tmp_path: Path) -> None:
    report = verify_source(OCILayout(layout(tmp_path)),
                           parse_platforms("linux/amd64,linux/arm64"), cache=None)
    lines = platform_lines(report, "polyarch verify --json reg/app:1 shows them")
    assert lines == ["  linux/amd64: 0 errors, 0 warnings, 0 notes",
                     "  linux/arm64/v8: 3 errors, 0 warnings, 1 note (polyarch verify --json"
                     " reg/app:1 shows them)"]
