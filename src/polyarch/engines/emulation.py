"""Which platforms this machine runs: natively, or through a QEMU handler registered in
binfmt_misc. Shared by the engines' preflights."""

from __future__ import annotations

from pathlib import Path

from polyarch.platforms import Platform, from_uname

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


def binfmt_machines(root: Path = BINFMT_DIR) -> set[tuple[int, int]]:
    """(ELF class, ELF machine) pairs that an enabled binfmt_misc handler runs."""
    out: set[tuple[int, int]] = set()
    try:
        entries = list(root.iterdir())
    except OSError:
        return out
    for e in entries:
        if e.name in {"register", "status"}:
            continue
        try:
            text = e.read_text()
        except OSError:
            continue
        lines = text.splitlines()
        if not lines or lines[0].strip() != "enabled":
            continue
        magic = next((ln.split()[1] for ln in lines if ln.startswith("magic ")), "")
        offset = next((ln.split()[1] for ln in lines if ln.startswith("offset ")), "0")
        if offset != "0" or len(magic) < 40 or not magic.startswith("7f454c46"):
            continue
        raw = bytes.fromhex(magic[:40])
        cls, endian = raw[4], raw[5]
        machine = int.from_bytes(raw[18:20], "little" if endian == 1 else "big")
        out.add((cls, machine))
    return out


def native(engine_arch: str, p: Platform) -> bool:
    """Whether an engine on ``engine_arch`` (as uname or GOARCH names it) runs ``p``
    without emulation."""
    try:
        host = from_uname(engine_arch)
    except ValueError:
        return False
    if host.architecture == p.architecture:
        return True
    # 64-bit hosts run their 32-bit siblings natively.
    return (host.architecture, p.architecture) in {("amd64", "386"), ("arm64", "arm")}


def emulator_remedy(p: Platform) -> str:
    arch = p.architecture if p.architecture != "arm" else "arm"
    return (
        f"install QEMU user emulation: on Debian/Ubuntu 'apt-get install qemu-user-static"
        f" binfmt-support', or 'docker run --privileged --rm tonistiigi/binfmt --install {arch}'"
    )
