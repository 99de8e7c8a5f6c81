"""Version grammars the tag specs use: semantic versions (as node-semver reads them, for
``type=semver``) and PEP 440 versions (through ``packaging``, for ``type=pep440``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.version import Version

_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][a-zA-Z0-9-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][a-zA-Z0-9-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)

SemverKey = tuple[int, int, int, tuple[tuple[int, int | str], ...]]


@dataclass(frozen=True)
class Semver:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...]
    build: tuple[str, ...]
    raw: str

    @property
    def version(self) -> str:
        """``major.minor.patch[-pre]`` (build metadata dropped, as node-semver does)."""
        core = f"{self.major}.{self.minor}.{self.patch}"
        return core + ("-" + ".".join(self.prerelease) if self.prerelease else "")

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def key(self) -> SemverKey:
        # A release sorts after its pre-releases; numeric identifiers sort before
        # alphanumeric ones and compare as numbers (semver.org, item 11).
        pre: tuple[tuple[int, int | str], ...]
        if self.prerelease:
            pre = tuple((0, int(p)) if p.isdigit() else (1, p) for p in self.prerelease)
            return (self.major, self.minor, self.patch, ((0, 0), *pre))
        return (self.major, self.minor, self.patch, ((1, 0),))


def parse_semver(text: str) -> Semver | None:
    """A strict semantic version with an optional leading ``v`` (node-semver's ``valid``);
    ``None`` if it is not one."""
    raw = text.strip()
    if len(raw) > 256:
        return None
    m = _SEMVER.match(raw)
    if not m:
        return None
    return Semver(
        int(m.group(1)), int(m.group(2)), int(m.group(3)),
        tuple(m.group(4).split(".")) if m.group(4) else (),
        tuple(m.group(5).split(".")) if m.group(5) else (),
        raw,
    )


def semver_key(text: str) -> SemverKey | None:
    v = parse_semver(text)
    return v.key() if v else None


def parse_pep440(text: str) -> Version | None:
    """A PEP 440 version (``1.2.3rc2``, ``v1.0.post1``, ``1!2.0``); ``None`` if it is not one."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text.strip())
    except InvalidVersion:
        return None


def pep440_part(v: Version, index: int) -> str:
    """Release segment ``index`` (0 major, 1 minor, 2 patch); ``0`` where it is missing."""
    return str(v.release[index]) if index < len(v.release) else "0"
