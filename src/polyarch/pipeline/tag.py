"""Tag: put the same index manifest (same bytes, same digest) under every tag.

The index and everything it references are already in each target repository (pushed
by digest). Where each tag pointed before is read first; if one tag cannot be written,
or the command is interrupted, every tag already tried is put back where it was.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from polyarch import interrupt
from polyarch.errors import RegistryError
from polyarch.refs import ImageRef
from polyarch.registry import RegistryClient
from polyarch.session import Session


@dataclass(frozen=True)
class Tagged:
    tags: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class TagMove:
    """One tag moved by this run and where it pointed before (None: it did not exist)."""

    ref: ImageRef
    before: str | None


def move_tags(client: RegistryClient, data: bytes, media_type: str,
              targets: Sequence[ImageRef]) -> list[TagMove]:
    """Point every target at ``data``. On any failure (or interruption) the tags already
    tried are rolled back and the error re-raised with what happened to them."""
    before = {str(t): client.head_manifest(t) for t in targets}
    interrupt.set_phase("moving tags: every tag already moved was put back")
    # A PUT that failed may still have been stored (the answer was lost): every tag
    # tried counts, and the rollback looks at where each one points now.
    attempted: list[ImageRef] = []
    try:
        for t in targets:
            attempted.append(t)
            client.put_manifest(t, data, media_type)
    except RegistryError as e:
        undone = roll_back(client, [TagMove(t, before[str(t)]) for t in attempted])
        e.message += f" ({undone})" if undone else ""
        raise
    except BaseException:  # interrupted: put back, then let it go on
        undone = roll_back(client, [TagMove(t, before[str(t)]) for t in attempted])
        interrupt.set_phase(f"moving tags: {undone}")
        raise
    # From here on an interruption leaves the tags where they are now: say so.
    moved = ", ".join(map(str, targets))
    interrupt.set_phase(f"handing over the result: the tags moved ({moved})")
    return [TagMove(t, before[str(t)]) for t in targets]


def roll_back(client: RegistryClient, moves: Sequence[TagMove]) -> str:
    """Best effort: point tags moved by a failed run back where they were. Returns a
    sentence saying what was put back and what could not be."""
    restored: list[str] = []
    stuck: list[str] = []
    new_tags: list[tuple[ImageRef, str]] = []  # tags that did not exist, and where they point
    for mv in moves:
        t, old = mv.ref, mv.before
        try:
            now = client.head_manifest(t)
            if now == old:
                continue  # never moved
            if old is None:
                if client.delete_manifest(t):
                    restored.append(str(t))
                elif now is not None:
                    new_tags.append((t, now))  # the registry cannot delete tags
                continue
            m = client.get_manifest(t.untagged().with_digest(old))
            client.put_manifest(t, m.data, m.media_type)
            restored.append(str(t))
        except RegistryError:
            stuck.append(str(t))
    for t, ok in _untag_by_digest(client, new_tags):
        (restored if ok else stuck).append(str(t))
    if not restored and not stuck:
        return "no tag was moved"
    parts = []
    if restored:
        parts.append(f"moved back: {', '.join(restored)}")
    if stuck:
        parts.append(f"could not move back: {', '.join(stuck)}")
    return "; ".join(parts)


def _untag_by_digest(client: RegistryClient,
                     new_tags: list[tuple[ImageRef, str]]) -> list[tuple[ImageRef, bool]]:
    """Remove tags this run created on a registry that cannot delete tags (the
    distribution registry 2.x) by deleting the manifest they point at, which removes
    every tag pointing at it: done only when no other tag of the repository points there."""
    out: list[tuple[ImageRef, bool]] = []
    by_target: dict[tuple[str, str], list[ImageRef]] = {}
    for t, digest in new_tags:
        by_target.setdefault((t.name, digest), []).append(t)
    for (_name, digest), tags in by_target.items():
        repo = tags[0].untagged()
        mine = {t.tag for t in tags}
        try:
            others = [x for x in client.list_tags(repo) if x not in mine]
            shared = any(client.head_manifest(repo.with_tag(x)) == digest for x in others)
            ok = not shared and client.delete_manifest(repo.with_digest(digest))
        except RegistryError:
            ok = False
        out.extend((t, ok) for t in tags)
    return out


def tag(s: Session, data: bytes, media_type: str, targets: Sequence[ImageRef]) -> Tagged:
    n = len(targets)
    with s.rep.group(f"tag {n} tag{'s' if n != 1 else ''}"):
        t0 = time.monotonic()
        move_tags(s.client, data, media_type, targets)
        for t in targets:
            s.rep.info(f"tag {t}")
    return Tagged(tuple(str(t) for t in targets), time.monotonic() - t0)
