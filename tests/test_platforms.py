import pytest

from polyarch.platforms import (
    EM_AARCH64,
    EM_ARM,
    EM_X86_64,
    Platform,
    binfmt_name_for,
    parse_platform,
    parse_platforms,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", "linux/amd64"),
        ("amd64", "linux/amd64"),
        ("x86_64", "linux/amd64"),
        ("x86-64", "linux/amd64"),
        ("linux/x86_64", "linux/amd64"),
        ("arm64", "linux/arm64"),
        ("aarch64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("LINUX/ARM64", "linux/arm64"),
        ("arm", "linux/arm/v7"),
        ("linux/arm/v7", "linux/arm/v7"),
        ("armhf", "linux/arm/v7"),
        ("arm/v6", "linux/arm/v6"),
        ("386", "linux/386"),
        ("i386", "linux/386"),
        ("ppc64le", "linux/ppc64le"),
        ("s390x", "linux/s390x"),
        ("riscv64", "linux/riscv64"),
    ],
)
def test_aliases_normalise(text: str, expected: str) -> None:
    assert str(parse_platform(text)) == expected


def test_unknown_platform_suggests() -> None:
    with pytest.raises(ValueError, match=r"unknown platform 'linux/arm65'.*did you mean linux/arm64"):
        parse_platform("linux/arm65")


def test_non_linux_rejected() -> None:
    with pytest.raises(ValueError, match="only linux"):
        parse_platform("windows/amd64")


def test_parse_list_dedupes_and_keeps_order() -> None:
    got = parse_platforms(["linux/arm64,amd64", "aarch64", " x86_64 "])
    assert [str(p) for p in got] == ["linux/arm64", "linux/amd64"]


def test_empty_list_rejected() -> None:
    with pytest.raises(ValueError, match="no platform"):
        parse_platforms([" , "])


def test_maps() -> None:
    arm64 = parse_platform("arm64")
    assert (arm64.uname, arm64.elf_machine, arm64.elf_class, arm64.qemu) == (
        "aarch64", EM_AARCH64, 2, "qemu-aarch64")
    amd64 = parse_platform("amd64")
    assert (amd64.uname, amd64.elf_machine) == ("x86_64", EM_X86_64)
    v7 = parse_platform("arm/v7")
    assert (v7.uname, v7.elf_machine, v7.elf_class) == ("armv7l", EM_ARM, 1)
    assert parse_platform("s390x").elf_little_endian is False
    assert binfmt_name_for(arm64) == "qemu-aarch64"


def test_matches_default_variant() -> None:
    arm64 = Platform("linux", "arm64")
    assert arm64.matches("linux", "arm64", "v8")
    assert arm64.matches("linux", "arm64", None)
    assert not arm64.matches("linux", "amd64", None)
    v7 = Platform("linux", "arm", "v7")
    assert v7.matches("linux", "arm", "v7")
    assert not v7.matches("linux", "arm", "v6")
