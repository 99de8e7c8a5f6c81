"""ELF header reading: class, byte order, type and machine from the first 20 bytes.

Only executables and shared objects (``ET_EXEC``, ``ET_DYN``) are judged against a
platform; relocatable objects (``.o``, kernel modules) and core files are not run by a
container and are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from polyarch.platforms import ARCHES, EM_386, EM_ARM, EM_X86_64, ArchInfo, Platform, elf_machine_name

MAGIC = b"\x7fELF"
#: Bytes needed to read a header.
PROBE = 20
#: Bytes of a file's start the layer walker keeps to look at (ELF header and more).
HEAD = 64

ET_REL = 1
ET_EXEC = 2
ET_DYN = 3
ET_CORE = 4
_TYPES = {ET_REL: "relocatable", ET_EXEC: "executable", ET_DYN: "shared object", ET_CORE: "core"}


@dataclass(frozen=True)
class ElfHeader:
    elf_class: int  # 1: 32-bit, 2: 64-bit
    little_endian: bool
    type: int
    machine: int

    @property
    def bits(self) -> int:
        return 64 if self.elf_class == 2 else 32

    @property
    def runnable(self) -> bool:
        """An executable or shared object (what the platform check looks at)."""
        return self.type in (ET_EXEC, ET_DYN)

    def describe(self) -> str:
        order = "LSB" if self.little_endian else "MSB"
        kind = _TYPES.get(self.type, f"type {self.type}")
        return f"ELF {self.bits}-bit {order} {elf_machine_name(self.machine)} {kind}"


def read_elf_header(data: bytes) -> ElfHeader | None:
    """Parse the start of a file; ``None`` when it is not (a plausible) ELF file."""
    if len(data) < PROBE or data[:4] != MAGIC:
        return None
    ei_class, ei_data = data[4], data[5]
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        return None
    if ei_data == 1:
        e_type = int.from_bytes(data[16:18], "little")
        e_machine = int.from_bytes(data[18:20], "little")
    else:
        e_type = int.from_bytes(data[16:18], "big")
        e_machine = int.from_bytes(data[18:20], "big")
    return ElfHeader(ei_class, ei_data == 1, e_type, e_machine)


@dataclass(frozen=True)
class ElfVerdict:
    severity: str  # "error" or "warning"
    message: str


def arch_facts(platform: Platform) -> ArchInfo | None:
    """The ELF facts of ``platform``: by (architecture, variant), else by architecture
    alone (``amd64/v3`` has the machine of ``amd64``), else ``None``."""
    info = ARCHES.get((platform.architecture, platform.variant))
    if info is not None:
        return info
    return next((i for (a, _v), i in ARCHES.items() if a == platform.architecture), None)


def fits(header: ElfHeader, platform: Platform) -> bool | None:
    """Whether ``header`` has the machine, class and byte order of ``platform``
    (``None``: a platform without ELF facts)."""
    facts = arch_facts(platform)
    if facts is None:
        return None
    return (header.machine, header.elf_class, header.little_endian) == (
        facts.elf_machine, facts.elf_class, facts.little_endian)


def judge(header: ElfHeader, platform: Platform) -> ElfVerdict | None:
    """``None`` when ``header`` fits ``platform``; otherwise what is wrong with it."""
    if not header.runnable:
        return None
    facts = arch_facts(platform)
    if facts is None:
        return None  # a platform we know nothing about: nothing to compare with
    want_machine, want_class, want_le = facts.elf_machine, facts.elf_class, facts.little_endian
    if (header.machine, header.elf_class, header.little_endian) == (want_machine, want_class,
                                                                    want_le):
        return None
    got = header.describe()
    if want_machine == EM_X86_64 and header.machine in (EM_386, EM_X86_64) and header.little_endian:
        # i386 and x32 binaries run on x86-64 kernels built with 32-bit support.
        return ElfVerdict("warning", f"{got} in a {platform} image (needs 32-bit x86 support"
                                     " in the kernel)")
    want = f"{64 if want_class == 2 else 32}-bit {'LSB' if want_le else 'MSB'}" \
           f" {elf_machine_name(want_machine)}"
    return ElfVerdict("error", f"{got}, but {platform} needs {want}")


def variant_note(platform: Platform) -> str | None:
    """The caveat for platforms whose variants share one ELF machine: 32-bit ARM
    (v6, v7) and the x86-64 micro-architecture levels (amd64/v2, v3, v4)."""
    facts = arch_facts(platform)
    if facts is None or not platform.variant:
        return None
    if facts.elf_machine == EM_ARM:
        return (f"ELF headers do not tell arm/v6 from arm/v7 binaries: {platform} was checked"
                " as 32-bit ARM, not for its variant")
    if facts.elf_machine == EM_X86_64:
        return (f"ELF headers do not carry the x86-64 micro-architecture level: {platform}"
                f" was checked as x86-64; that its binaries need no more than"
                f" {platform.variant} cannot be proved from the header")
    return None


#: The earlier name (32-bit ARM was the only case).
arm_variant_note = variant_note
