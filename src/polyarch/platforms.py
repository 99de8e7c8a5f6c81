"""Platform strings in containerd's grammar: parse, normalise, and map to uname/ELF/QEMU.

The grammar is containerd's (``github.com/containerd/platforms``): ``os[/arch[/variant]]``,
case-insensitive, each part ``[A-Za-z0-9_.-]+``; the OS may carry ``(version+features)``.
Normalising follows containerd's ``Normalize``: ``aarch64`` = ``arm64`` = ``arm64/v8``,
``armhf`` = ``arm`` = ``arm/v7`` = ``arm/7``, ``armel`` = ``arm/v6``, ``x86_64`` =
``amd64`` = ``amd64/v1``, ``i386`` = ``386``; ``amd64/v2``..``v4`` are real variants. A lone
OS (``linux``) means the host's architecture; a lone architecture means Linux.

polyarch builds Linux images only: other operating systems, OS versions and OS features
are refused with a message saying so. Every suggestion in an error message is itself a
platform this module accepts.

Imports nothing of polyarch's; raises ``ValueError`` with a one-line message of the form
``what is wrong (how to fix it)``, which callers turn into a usage error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ArchInfo:
    uname: str
    elf_machine: int
    elf_class: int
    little_endian: bool
    qemu: str
    #: Whether an ELF header tells this variant from the architecture's other variants.
    variant_in_elf: bool = True


# ELF e_machine values (from elf.h).
EM_386 = 3
EM_MIPS = 8
EM_PPC64 = 21
EM_S390 = 22
EM_ARM = 40
EM_X86_64 = 62
EM_AARCH64 = 183
EM_RISCV = 243
EM_LOONGARCH = 258

_X86_64 = ArchInfo("x86_64", EM_X86_64, 2, True, "qemu-x86_64")
_X86_64_LEVEL = ArchInfo("x86_64", EM_X86_64, 2, True, "qemu-x86_64", variant_in_elf=False)

#: (architecture, variant) -> facts, in the normalised spelling. Variant "" means none.
ARCHES: dict[tuple[str, str], ArchInfo] = {
    ("amd64", ""): _X86_64,
    ("amd64", "v2"): _X86_64_LEVEL,
    ("amd64", "v3"): _X86_64_LEVEL,
    ("amd64", "v4"): _X86_64_LEVEL,
    ("arm64", ""): ArchInfo("aarch64", EM_AARCH64, 2, True, "qemu-aarch64"),
    ("arm", "v7"): ArchInfo("armv7l", EM_ARM, 1, True, "qemu-arm", variant_in_elf=False),
    ("arm", "v6"): ArchInfo("armv6l", EM_ARM, 1, True, "qemu-arm", variant_in_elf=False),
    ("arm", "v5"): ArchInfo("armv5tel", EM_ARM, 1, True, "qemu-arm", variant_in_elf=False),
    ("386", ""): ArchInfo("i686", EM_386, 1, True, "qemu-i386"),
    ("ppc64le", ""): ArchInfo("ppc64le", EM_PPC64, 2, True, "qemu-ppc64le"),
    ("s390x", ""): ArchInfo("s390x", EM_S390, 2, False, "qemu-s390x"),
    ("riscv64", ""): ArchInfo("riscv64", EM_RISCV, 2, True, "qemu-riscv64"),
    ("mips64le", ""): ArchInfo("mips64", EM_MIPS, 2, True, "qemu-mips64el"),
    ("loong64", ""): ArchInfo("loongarch64", EM_LOONGARCH, 2, True, "qemu-loongarch64"),
}

#: The variant an OCI descriptor may leave out for the same thing (containerd's matcher).
DEFAULT_VARIANT = {"arm64": "v8", "amd64": "v1", "arm": "v7"}

DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64")

#: Operating systems containerd knows (``isKnownOS``); only linux is built.
KNOWN_OS = frozenset((
    "aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js",
    "linux", "nacl", "netbsd", "openbsd", "plan9", "solaris", "windows", "zos",
))

#: Architectures containerd knows (``isKnownArch``).
KNOWN_ARCH = frozenset((
    "386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "ppc64", "ppc64le",
    "loong64", "mips", "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc",
    "riscv", "riscv64", "s390", "s390x", "sparc", "sparc64", "wasm",
))

#: Spellings beyond containerd's that ``uname -m`` and distributions use:
#: name -> (architecture, variant), both normalised.
_EXTRA_ALIASES: dict[str, tuple[str, str]] = {
    "x64": ("amd64", ""),
    "i486": ("386", ""), "i586": ("386", ""), "i686": ("386", ""), "x86": ("386", ""),
    "armv7": ("arm", "v7"), "armv7l": ("arm", "v7"), "armv8l": ("arm", "v7"),
    "armv6": ("arm", "v6"), "armv6l": ("arm", "v6"),
    "armv5": ("arm", "v5"), "armv5l": ("arm", "v5"), "armv5tel": ("arm", "v5"),
    "armv5tejl": ("arm", "v5"),
    "ppc64el": ("ppc64le", ""),
    "mips64el": ("mips64le", ""),
    "loongarch64": ("loong64", ""),
}

_PART = re.compile(r"^[A-Za-z0-9_.-]+$")
_OS_PART = re.compile(r"^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)((?:\+[A-Za-z0-9_.%-]+)*)\))?$")


@dataclass(frozen=True, order=True)
class Platform:
    """An OCI platform ``os/architecture[/variant]`` in normalised form."""

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

    @property
    def variant_caveat(self) -> str | None:
        """Why an ELF check cannot prove this variant, or ``None`` when it can."""
        if not self.variant or self.info.variant_in_elf:
            return None
        if self.architecture == "amd64":
            return (f"ELF headers do not record the x86-64 micro-architecture level: {self}"
                    " was checked as x86-64, not for level " + self.variant)
        return (f"ELF headers do not tell {self.architecture} variants apart: {self} was"
                f" checked as {self.architecture}, not for its variant")

    def matches(self, os: str, architecture: str, variant: str | None) -> bool:
        """Whether a descriptor's os/architecture/variant describe this platform.

        The descriptor is normalised first (``aarch64`` is ``arm64``); a missing variant
        is accepted where the variant is the architecture's default (``arm64`` -> ``v8``,
        ``amd64`` -> ``v1``, ``arm`` -> ``v7``), as containerd's matcher does.
        """
        o, a, v = normalize(os, architecture, variant or "")
        return (o, a, v) == (self.os, self.architecture, self.variant)


def normalize(os: str, architecture: str, variant: str = "") -> tuple[str, str, str]:
    """containerd's ``Normalize`` in polyarch's canonical spelling: lower case, aliases
    resolved, default variants dropped (``arm64/v8``, ``amd64/v1``) except for 32-bit
    ARM, whose default ``v7`` is always written."""
    os = os.lower()
    if os == "macos":
        os = "darwin"
    arch, var = architecture.lower(), variant.lower()
    if arch in ("i386",):
        arch, var = "386", ""
    elif arch in ("x86_64", "x86-64", "amd64"):
        arch = "amd64"
        if var == "v1":
            var = ""
    elif arch in ("aarch64", "arm64"):
        arch = "arm64"
        if var in ("8", "v8", "v8.0"):
            var = ""
        elif var in ("9", "9.0", "v9.0"):
            var = "v9"
    elif arch == "armhf":
        arch, var = "arm", "v7"
    elif arch == "armel":
        arch, var = "arm", "v6"
    elif arch == "arm":
        if var in ("", "7"):
            var = "v7"
        elif var in ("5", "6", "8"):
            var = "v" + var
    elif arch in _EXTRA_ALIASES and not var:
        arch, var = _EXTRA_ALIASES[arch]
    return os, arch, var


def host_platform() -> Platform:
    """The Linux platform of this machine's CPU (``platform.machine()``)."""
    import platform as host

    machine = host.machine()
    return from_uname(machine)


def _check_syntax(raw: str) -> list[str]:
    if not raw:
        raise ValueError("empty platform (give one such as linux/amd64)")
    if "*" in raw:
        raise ValueError(f"platform {raw!r}: wildcards are not supported"
                         " (name each platform, such as linux/amd64)")
    parts = raw.split("/", 3)
    bad = ""
    if len(parts) > 3:
        bad = "it has more than three parts (os/architecture/variant)"
    elif not _OS_PART.match(parts[0]):
        bad = f"{parts[0]!r} is not an OS name" if parts[0] else "it starts with '/'"
    else:
        for part in parts[1:]:
            if not _PART.match(part):
                bad = (f"{part!r} is not a valid part" if part else "it has an empty part")
                break
    if bad:
        fix = _repair(raw)
        hint = f"did you mean {fix}?" if fix else "write os/architecture[/variant], such as linux/amd64"
        raise ValueError(f"platform {raw!r} is malformed: {bad} ({hint})")
    return parts


def _repair(raw: str) -> str | None:
    """A platform that ``raw`` plausibly meant, if it is one this module accepts."""
    parts = [p for p in re.split(r"[/\s]+", raw) if p]
    if not parts or len(parts) > 3:
        return None
    candidate = "/".join(parts)
    if candidate == raw:
        return None
    try:
        return str(parse_platform(candidate))
    except ValueError:
        return None


def parse_platform(text: str) -> Platform:
    """Parse one platform (``linux/arm64``, ``arm64``, ``linux/arm/v7``, ``x86_64``, ``linux``).

    Raises ``ValueError`` naming what is wrong and a platform that would work.
    """
    raw = text.strip()
    parts = _check_syntax(raw)
    m = _OS_PART.match(parts[0])
    assert m is not None
    os_name = m.group(1).lower()
    if len(parts) == 2 and os_name not in KNOWN_OS and _is_arch(parts[0]):
        # "arm/v7": an architecture and variant without the OS (Linux).
        return _known("linux", *normalize("linux", parts[0], parts[1])[1:], raw)
    if len(parts) == 1 and os_name not in KNOWN_OS and os_name != "macos":
        # A lone architecture: Linux on that architecture.
        _, arch, var = normalize("linux", parts[0])
        return _known("linux", arch, var, raw)
    if len(parts) == 1:
        os_norm = normalize(os_name, "")[0]
        if os_norm != "linux":
            _not_linux(raw, os_norm, None)
        if m.group(2) or m.group(3):
            _os_options(raw)
        return host_platform()
    os_norm, arch, var = normalize(os_name, parts[1], parts[2] if len(parts) == 3 else "")
    if os_norm != "linux":
        _not_linux(raw, os_norm, "/".join(parts[1:]))
    if m.group(2) or m.group(3):
        _os_options(raw)
    return _known("linux", arch, var, raw)


def _is_arch(word: str) -> bool:
    arch = normalize("linux", word)[1]
    return arch in KNOWN_ARCH or any(a == arch for a, _ in ARCHES)


def _not_linux(raw: str, os_name: str, rest: str | None) -> None:
    fix = None
    if rest:
        try:
            fix = str(parse_platform("linux/" + rest))
        except ValueError:
            fix = None
    if fix is None:
        try:
            fix = str(host_platform())
        except ValueError:
            fix = "linux/amd64"
    raise ValueError(f"platform {raw!r} is a {os_name} platform: polyarch builds Linux images"
                     f" only (use {fix})")


def _os_options(raw: str) -> None:
    raise ValueError(f"platform {raw!r} gives an OS version or OS features: polyarch builds"
                     " Linux images without them (drop the part in parentheses)")


def _known(os_name: str, arch: str, var: str, raw: str) -> Platform:
    if (arch, var) in ARCHES:
        return Platform(os_name, arch, var)
    supported = ", ".join(str(p) for p in known_platforms())
    same_arch = [Platform(os_name, a, v) for (a, v) in ARCHES if a == arch]
    if same_arch:
        hint = "use " + " or ".join(str(p) for p in same_arch)
        raise ValueError(f"platform {raw!r}: polyarch does not build {arch} variant {var!r}"
                         f" ({hint})")
    import difflib

    # Canonical names first, then the other spellings.
    canonical = {a: str(Platform("linux", a, "v7" if a == "arm" else "")) for (a, _) in ARCHES}
    aliases = {a: str(Platform("linux", *k)) for a, k in _EXTRA_ALIASES.items()}
    names = {**canonical, **aliases}
    close = (difflib.get_close_matches(arch, list(canonical), n=1, cutoff=0.6)
             or difflib.get_close_matches(arch, list(aliases), n=1, cutoff=0.6))
    what = "an architecture polyarch cannot build and verify" if arch in KNOWN_ARCH else \
        "not a known architecture"
    # A real architecture polyarch does not build is no typo: no "did you mean" then.
    hint = f"did you mean {names[close[0]]}? " if close and arch not in KNOWN_ARCH else ""
    raise ValueError(f"unknown platform {raw!r}: {arch!r} is {what} ({hint}supported:"
                     f" {supported})")


def parse_platforms(values: str | list[str] | tuple[str, ...]) -> tuple[Platform, ...]:
    """Parse a comma list (or several) into a de-duplicated tuple, order kept."""
    items: list[str] = []
    for v in [values] if isinstance(values, str) else values:
        items.extend(x for x in (p.strip() for p in v.split(",")) if x)
    if not items:
        raise ValueError("no platform given (give one such as linux/amd64)")
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
    _, arch, var = normalize("linux", machine.strip())
    if (arch, var) not in ARCHES:
        raise ValueError(f"this machine's architecture {machine!r} is not one polyarch builds"
                         " (supported: " + ", ".join(str(p) for p in known_platforms()) + ")")
    return Platform("linux", arch, var)


def elf_machine_name(machine: int) -> str:
    names = {
        EM_386: "i386",
        EM_MIPS: "mips",
        EM_PPC64: "ppc64",
        EM_S390: "s390",
        EM_ARM: "arm",
        EM_X86_64: "x86-64",
        EM_AARCH64: "aarch64",
        EM_RISCV: "riscv",
        EM_LOONGARCH: "loongarch",
    }
    return names.get(machine, f"machine {machine}")


def binfmt_name_for(p: Platform) -> str:
    """The name Debian's qemu-user-static (and tonistiigi/binfmt) register the handler under."""
    return p.qemu
