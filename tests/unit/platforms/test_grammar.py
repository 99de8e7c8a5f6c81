"""Platform grammar: containerd/platforms' own parse cases (tests/data/containerd-platforms)
plus polyarch's maps to uname, ELF machine and QEMU."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from polyarch.platforms import (
    ARCHES,
    EM_AARCH64,
    EM_ARM,
    EM_X86_64,
    Platform,
    binfmt_name_for,
    from_uname,
    host_platform,
    normalize,
    parse_platform,
    parse_platforms,
)

DATA = Path(__file__).parents[2] / "data" / "containerd-platforms" / "parse.json"
CASES: list[dict[str, Any]] = json.loads(DATA.read_text())["cases"]


def _expand(text: str) -> str:
    """containerd's placeholders in polyarch's terms: the default OS is linux, the host
    architecture is this machine's."""
    host = host_platform()
    return (text.replace("$DEFAULT_OS", "linux").replace("$HOST_ARCH", host.architecture)
            .replace("$HOST_VARIANT", "/" + host.variant if host.variant else ""))


def _suggestions(message: str) -> list[str]:
    return re.findall(r"(?:did you mean|use|or) (linux/[a-z0-9]+(?:/v[0-9.]+)?)", message)


@pytest.mark.parametrize("case", CASES, ids=[c["input"] or "<empty>" for c in CASES])
def test_containerd_parse_cases(case: dict[str, Any]) -> None:
    want = case["polyarch"]
    if want == "same":
        got = parse_platform(case["input"])
        assert str(got) == _expand(case["normalized"])
        # Every description containerd's matcher treats as the same platform matches.
        for other in case["matches"]:
            os_, arch, *var = other.split("/")
            assert got.matches(os_, arch, var[0] if var else None), other
        return
    with pytest.raises(ValueError) as err:
        parse_platform(case["input"])
    message = str(err.value)
    assert "\n" not in message and message.endswith(")")
    reason = want.split(":", 1)[1]
    if reason == "not-linux":
        assert "polyarch builds Linux images only" in message
    elif reason == "os-features":
        assert "OS features" in message
    # Whatever is suggested is itself accepted.
    for s in _suggestions(message):
        parse_platform(s)


@pytest.mark.parametrize(("text", "expected"), [
    ("amd64", "linux/amd64"), ("x86_64", "linux/amd64"), ("x64", "linux/amd64"),
    ("linux/amd64/v1", "linux/amd64"), ("LINUX/ARM64", "linux/arm64"),
    ("aarch64", "linux/arm64"), ("arm64/v8", "linux/arm64"), ("armhf", "linux/arm/v7"),
    ("arm", "linux/arm/v7"), ("armv7l", "linux/arm/v7"), ("armv6l", "linux/arm/v6"),
    ("i686", "linux/386"), ("ppc64el", "linux/ppc64le"), ("riscv64", "linux/riscv64"),
    ("linux/amd64/v3", "linux/amd64/v3"), ("linux/arm/5", "linux/arm/v5"),
    # Without the OS part (containerd would read "arm" as an OS): Linux.
    ("arm/v6", "linux/arm/v6"), ("arm64/v8", "linux/arm64"),
])
def test_platform_aliases_normalise_to_canonical_names(text: str, expected: str) -> None:
    assert str(parse_platform(text)) == expected


@pytest.mark.parametrize(("text", "words", "suggested"), [
    ("linux/arm65", "not a known architecture", "linux/arm64"),
    ("windows/amd64", "polyarch builds Linux images only", "linux/amd64"),
    ("darwin/arm64", "polyarch builds Linux images only", "linux/arm64"),
    ("/linux/arm", "starts with '/'", "linux/arm/v7"),
    ("linux/arm/", "empty part", "linux/arm/v7"),
    ("linux /arm", "not an OS name", "linux/arm/v7"),
    ("linux/arm64/v9", "does not build arm64 variant 'v9'", "linux/arm64"),
    ("linux/sparc64", "cannot build and verify", None),
])
def test_errors_say_what_and_suggest_valid_platforms(text: str, words: str,
                                                     suggested: str | None) -> None:
    with pytest.raises(ValueError) as err:
        parse_platform(text)
    message = str(err.value)
    assert words in message
    found = _suggestions(message)
    if suggested:
        assert suggested in found, message
    for s in found:
        assert str(parse_platform(s)) == s


def test_lone_os_means_the_host_architecture() -> None:
    assert parse_platform("linux") == host_platform()
    with pytest.raises(ValueError, match=f"use {host_platform()}"):
        parse_platform("macOS")


def test_parse_list_dedupes_and_keeps_order() -> None:
    got = parse_platforms(["linux/arm64,amd64", "aarch64", " x86_64 ", "linux/arm64/v8"])
    assert [str(p) for p in got] == ["linux/arm64", "linux/amd64"]


def test_empty_list_rejected() -> None:
    with pytest.raises(ValueError, match="no platform"):
        parse_platforms([" , "])


def test_platform_maps_to_uname_elf_machine_and_qemu() -> None:
    arm64 = parse_platform("arm64")
    assert (arm64.uname, arm64.elf_machine, arm64.elf_class, arm64.qemu) == (
        "aarch64", EM_AARCH64, 2, "qemu-aarch64")
    amd64 = parse_platform("amd64")
    assert (amd64.uname, amd64.elf_machine) == ("x86_64", EM_X86_64)
    v7 = parse_platform("arm/v7")
    assert (v7.uname, v7.elf_machine, v7.elf_class) == ("armv7l", EM_ARM, 1)
    assert parse_platform("s390x").elf_little_endian is False
    assert binfmt_name_for(arm64) == "qemu-aarch64"
    assert from_uname("armv7l") == v7 and from_uname("x86_64") == amd64


def test_amd64_levels_are_x86_64_in_elf_and_say_so() -> None:
    v3 = parse_platform("linux/amd64/v3")
    assert (v3.uname, v3.elf_machine, v3.qemu) == ("x86_64", EM_X86_64, "qemu-x86_64")
    assert v3.variant_caveat and "micro-architecture level" in v3.variant_caveat
    assert parse_platform("linux/amd64").variant_caveat is None
    assert parse_platform("linux/arm/v6").variant_caveat is not None


def test_every_known_platform_round_trips() -> None:
    for arch, var in ARCHES:
        p = Platform("linux", arch, var)
        assert parse_platform(str(p)) == p
        assert normalize(p.os, p.architecture, p.variant) == (p.os, arch, var)


def test_matches_default_variants() -> None:
    arm64 = Platform("linux", "arm64")
    assert arm64.matches("linux", "arm64", "v8")
    assert arm64.matches("linux", "arm64", None)
    assert arm64.matches("linux", "aarch64", None)
    assert not arm64.matches("linux", "amd64", None)
    v7 = Platform("linux", "arm", "v7")
    assert v7.matches("linux", "arm", "v7")
    assert v7.matches("linux", "arm", None)
    assert not v7.matches("linux", "arm", "v6")
    amd64 = Platform("linux", "amd64")
    assert amd64.matches("linux", "amd64", "v1")
    assert not amd64.matches("linux", "amd64", "v2")


_PIECES = ["linux", "Linux", "windows", "macOS", "arm", "arm64", "amd64", "386", "aarch64",
           "x86_64", "armhf", "v7", "v8", "V2", "7", "/", "/", "//", " ", "(", ")", "+gpu", "%",
           "*", ".", "-", "_", "&", "sparc64", "riscv64", "v9"]


def test_any_text_gives_a_known_platform_or_one_clear_line() -> None:
    # containerd's FuzzPlatformsParse, seeded: every input gives a platform polyarch
    # builds, or one error line ending with the fix whose suggestions are accepted.
    rnd = random.Random(20201)
    for _ in range(3000):
        text = "".join(rnd.choice(_PIECES) for _ in range(rnd.randint(0, 5)))
        try:
            p = parse_platform(text)
        except ValueError as e:
            message = str(e)
            assert "\n" not in message and message.endswith(")"), text
            for s in _suggestions(message):
                parse_platform(s)
            continue
        assert (p.architecture, p.variant) in ARCHES and p.os == "linux", text
