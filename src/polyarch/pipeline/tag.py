"""Tag: put the same index manifest (same bytes, same digest) under every tag.

The index and everything it references are already in each target repository (pushed
by digest). Where each tag pointed before is read first; if one tag cannot be written,
or the command is interrupted, every tag already tried is put back where it was.

A registry moves one tag per request; nothing makes several moves one transaction. So
once every tag is written they are read again: if a concurrent publish left them on
different images, that is an error of its own (:class:`TagsSplit`, exit 7) naming which
tag points where; nothing is put back (the other publish's image is as valid as this
one, and moving tags again could only race again). If they all point at one other
image (another publish came after this one), that is said in a warning.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from polyarch import interrupt
from polyarch.errors import RegistryError, TagsSplit
from polyarch.refs import ImageRef
from polyarch.registry.media import sha256_digest
from polyarch.session import Session

if TYPE_CHECKING:
    from polyarch.registry import RegistryClient


@dataclass(frozen=True)
class TagMove:
    """One tag moved by this run and where it pointed before (None: it did not exist)."""

    ref: ImageRef
    before: str | None


@dataclass(frozen=True)
class Tagged:
    tags: tuple[str, ...]
    seconds: float
    #: What was moved, for a caller that must put it back when a later step fails (the
    #: next image of a project).
    moves: tuple[TagMove, ...] = field(default=(), compare=False, repr=False)


def move_tags(client: RegistryClient, data: bytes, media_type: str,
              targets: Sequence[ImageRef],
              warn: Callable[[str], None] | None = None) -> list[TagMove]:
    """Point every target at ``data``. On any failure (or interruption) the tags already
    tried are rolled back and the error re-raised with what happened to them. Then the
    tags are read again (:func:`check_settled`)."""
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
    moves = [TagMove(t, before[str(t)]) for t in targets]
    # From here on an interruption leaves the tags where they are now: say so.
    moved = ", ".join(map(str, targets))
    interrupt.set_phase(f"handing over the result: the tags moved ({moved}); reading them back")
    note = check_settled(client, sha256_digest(data), targets)
    if note and warn is not None:
        warn(note)
    return moves


def check_settled(client: RegistryClient, digest: str, targets: Sequence[ImageRef]) -> str:
    """Read every tag again after they were all written.

    Raises :class:`TagsSplit` when they point at different manifests (a concurrent
    publish moved some of them in between; a tag deleted meanwhile points at nothing).
    Returns a warning when they all point at one other manifest (a later publish moved
    them all) or when some cannot be read back (those are left out of the comparison:
    a failed read is not a split), else ``""``.
    """
    now: dict[str, str | None] = {}
    unread: list[str] = []
    for t in targets:
        try:
            now[str(t)] = client.head_manifest(t)
        except RegistryError:
            unread.append(str(t))
    note = (f"could not read back {', '.join(unread)} after moving it (the registry did not"
            " answer); whether a concurrent publish moved it is not known" if unread else "")

    def where(d: str | None) -> str:
        if d == digest:
            return f"{d} (this publish)"
        return f"{d} (another publish)" if d else "nothing (deleted meanwhile)"

    listing = ", ".join(f"{t} -> {where(d)}" for t, d in now.items())
    if len(set(now.values())) > 1:
        raise TagsSplit(
            f"the tags were moved, but another publish moved some of them at the same time"
            f" and they now point at different images: {listing}"
            + (f" ({note})" if note else ""),
            hint="run one publish again to put every tag on one image; a registry moves"
                 " one tag at a time, so publishes of the same tags must not run at once")
    if all(d == digest for d in now.values()):
        return note
    other = (f"another publish moved every tag after this one: {listing}; this publish's"
             f" image {digest} is pushed but no tag points at it")
    return f"{other}; {note}" if note else other


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


def tag(s: Session, data: bytes, media_type: str, targets: Sequence[ImageRef], *,
        title: str | None = None) -> Tagged:
    """The tag step: move every tag (:func:`move_tags`) inside a group named ``title``
    (default: how many tags), saying each one."""
    n = len(targets)
    with s.rep.group(title or f"tag {n} tag{'s' if n != 1 else ''}"):
        t0 = time.monotonic()
        moves = move_tags(s.client, data, media_type, targets, warn=s.rep.warn)
        for t in targets:
            s.rep.info(f"tag {t}")
    return Tagged(tuple(str(t) for t in targets), time.monotonic() - t0, tuple(moves))
