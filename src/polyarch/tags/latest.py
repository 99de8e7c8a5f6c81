"""Whether ``latest`` moves: metadata-action's rule, and polyarch's ``latest=auto``, which
never moves it backwards (no pre-release; not below a release already in the registry)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from polyarch.tags.specs import Flavor
from polyarch.tags.versions import Semver, parse_pep440, parse_semver

if TYPE_CHECKING:
    from packaging.version import Version


def _strip_flavor(tag: str, fl: Flavor) -> str | None:
    if fl.prefix:
        if not tag.startswith(fl.prefix):
            return None
        tag = tag[len(fl.prefix):]
    if fl.suffix:
        if not tag.endswith(fl.suffix):
            return None
        tag = tag[: -len(fl.suffix)]
    return tag


def _higher_release(rel: Semver | Version, existing: Iterable[str], fl: Flavor) -> str | None:
    """The highest release among ``existing`` that is above ``rel``, if any."""
    best: tuple[object, str] | None = None
    for t in existing:
        bare = _strip_flavor(t, fl)
        if bare is None:
            continue
        if isinstance(rel, Semver):
            sv = parse_semver(bare)
            if sv is None or sv.is_prerelease or sv.key() <= rel.key():
                continue
            key: object = sv.key()
        else:
            pv = parse_pep440(bare) if re.fullmatch(r"v?\d+(\.\d+)+", bare) else None
            if pv is None or pv <= rel:
                continue
            key = pv
        if best is None or key > best[0]:  # type: ignore[operator]
            best = (key, t)
    return best[1] if best else None


def decide_latest(takes: bool | None, rel: Semver | Version | None, fl: Flavor,
                  existing_tags: Iterable[str] | None) -> tuple[bool, str]:
    """Whether ``latest`` is added, and why. ``takes``: what the highest-priority tag's
    type says (metadata-action's rule); ``rel``: the version being released, if any."""
    if fl.latest == "false":
        return False, "flavor latest=false"
    if fl.latest == "true":
        return True, "flavor latest=true"
    if not takes:
        return False, "the highest-priority tag does not take latest"
    if fl.latest == "metadata-action":
        return True, "the highest-priority tag takes latest (latest=metadata-action)"
    if isinstance(rel, Semver) and rel.is_prerelease:
        return False, f"{rel.raw} is a pre-release"
    if existing_tags is None:
        return True, "release tag (existing tags unknown)"
    if rel is None:
        return False, "not a semantic or PEP 440 version, and existing tags are known"
    higher = _higher_release(rel, existing_tags, fl)
    shown = rel.version if isinstance(rel, Semver) else str(rel)
    if higher:
        return False, f"{shown} is lower than {higher}, already published"
    return True, f"{shown} is the highest release"
