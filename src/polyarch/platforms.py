"""Platform strings: parse, normalise, and map to uname/ELF/QEMU names.

Imports nothing of polyarch's except errors-free stdlib; raises ``ValueError`` with a
helpful message, which callers wrap into a usage error.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Platform:
    """An OCI platform: ``os/architecture[/variant]``."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base

    @property
    def info(self) -> ArchInfo:
        return ARCHES[(self.architecture, self.variant)]

    @property
    def uname(self) -> str:
        """What ``uname -m`` prints inside a native container of this platform."""
        return self.info.uname

    @property
    def elf_machine(self) -> int:
        return self.info.elf_machine

    @property
    def elf_class(self) -> int:
        """1 for 32-bit, 2 for 64-bit ELF."""
        return self.info.elf_class

    @property
    def elf_little_endian(self) -> bool:
        return self.info.little_endian

    @property
    def qemu(self) -> str:
        """The binfmt_misc handler name that emulates this platform (``qemu-aarch64``)."""
        return self.info.qemu

    def matches(self, os: str, architecture: str, variant: str | None) -> bool:
        """Whether an image config's os/architecture/variant describe this platform.

        A missing variant in the config is accepted where the variant is the default
        one for the architecture (``arm64`` -> ``v8``).
        """
        if os != self.os or architecture != self.architecture:
            return False
        got = variant or ""
        if got == self.variant:
            return True
        default = DEFAULT_VARIANT.get(self.architecture, "")
        return {got, self.variant} <= {"", default}


@dataclass(frozen=True)
class ArchInfo:
    uname: str
    elf_machine: int
    elf_class: int
    little_endian: bool
    qemu: str


# ELF e_machine values (from elf.h).
EM_386 = 3
EM_PPC64 = 21
EM_S390 = 22
EM_ARM = 40
EM_X86_64 = 62
EM_AARCH64 = 183
EM_RISCV = 243

#: (architecture, variant) -> facts. Variant "" means "none given".
ARCHES: dict[tuple[str, str], ArchInfo] = {
    ("amd64", ""): ArchInfo("x86_64", EM_X86_64, 2, True, "qemu-x86_64"),
    ("arm64", ""): ArchInfo("aarch64", EM_AARCH64, 2, True, "qemu-aarch64"),
    ("arm", "v7"): ArchInfo("armv7l", EM_ARM, 1, True, "qemu-arm"),
    ("arm", "v6"): ArchInfo("armv6l", EM_ARM, 1, True, "qemu-arm"),
    ("386", ""): ArchInfo("i686", EM_386, 1, True, "qemu-i386"),
    ("ppc64le", ""): ArchInfo("ppc64le", EM_PPC64, 2, True, "qemu-ppc64le"),
    ("s390x", ""): ArchInfo("s390x", EM_S390, 2, False, "qemu-s390x"),
    ("riscv64", ""): ArchInfo("riscv64", EM_RISCV, 2, True, "qemu-riscv64"),
}

#: Variants that an OCI index may carry or omit for the same thing.
DEFAULT_VARIANT = {"arm64": "v8"}

#: Aliases accepted on input, all mapping to the canonical (architecture, variant).
_ALIASES: dict[str, tuple[str, str]] = {
    "amd64": ("amd64", ""),
    "x86_64": ("amd64", ""),
    "x86-64": ("amd64", ""),
    "x64": ("amd64", ""),
    "arm64": ("arm64", ""),
    "aarch64": ("arm64", ""),
    "arm64/v8": ("arm64", ""),
    "aarch64/v8": ("arm64", ""),
    "arm": ("arm", "v7"),
    "arm/v7": ("arm", "v7"),
    "armv7": ("arm", "v7"),
    "armv7l": ("arm", "v7"),
    "armhf": ("arm", "v7"),
    "arm/v6": ("arm", "v6"),
    "armv6": ("arm", "v6"),
    "armv6l": ("arm", "v6"),
    "armel": ("arm", "v6"),
    "386": ("386", ""),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "x86": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "ppc64el": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}

DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64")


def parse_platform(text: str) -> Platform:
    """Parse one platform string (``linux/arm64``, ``arm64``, ``linux/arm/v7``, ``x86_64``).

    Raises ``ValueError`` naming the closest known platform.
    """
    raw = text.strip()
    s = raw.lower()
    if not s:
        raise ValueError("empty platform")
    os_name = "linux"
    rest = s
    if "/" in s:
        head, tail = s.split("/", 1)
        # "linux/arm64", or an unknown os ("windows/amd64"); "arm/v7" has no os part.
        if head not in _ALIASES:
            os_name, rest = head, tail
    if os_name != "linux":
        raise ValueError(
            f"unsupported platform {raw!r}: only linux images are supported (try linux/{rest})"
        )
    key = _ALIASES.get(rest)
    if key is None:
        canonical = [str(p) for p in known_platforms()]
        close = difflib.get_close_matches(f"linux/{rest}", canonical, n=1, cutoff=0.6)
        if not close:
            alias = difflib.get_close_matches(rest, list(_ALIASES), n=1, cutoff=0.6)
            close = [str(Platform("linux", *_ALIASES[alias[0]]))] if alias else []
        hint = f"; did you mean {close[0]}?" if close else ""
        known = ", ".join(str(p) for p in known_platforms())
        raise ValueError(f"unknown platform {raw!r}{hint} (known: {known})")
    return Platform("linux", key[0], key[1])


def parse_platforms(values: str | list[str] | tuple[str, ...]) -> tuple[Platform, ...]:
    """Parse a comma list (or several) into a de-duplicated tuple, order kept."""
    items: list[str] = []
    for v in [values] if isinstance(values, str) else values:
        items.extend(x for x in (p.strip() for p in v.split(",")) if x)
    if not items:
        raise ValueError("no platform given")
    out: list[Platform] = []
    for item in items:
        p = parse_platform(item)
        if p not in out:
            out.append(p)
    return tuple(out)


def known_platforms() -> list[Platform]:
    return [Platform("linux", a, v) for (a, v) in ARCHES]


def from_uname(machine: str) -> Platform:
    """The platform of a native machine from ``uname -m`` / ``platform.machine()``."""
    return parse_platform(machine)


def elf_machine_name(machine: int) -> str:
    names = {
        EM_386: "i386",
        EM_PPC64: "ppc64",
        EM_S390: "s390",
        EM_ARM: "arm",
        EM_X86_64: "x86-64",
        EM_AARCH64: "aarch64",
        EM_RISCV: "riscv",
    }
    return names.get(machine, f"machine {machine}")


def binfmt_name_for(p: Platform) -> str:
    """The name Debian's qemu-user-static (and tonistiigi/binfmt) register the handler under."""
    return p.qemu
