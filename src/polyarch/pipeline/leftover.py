"""What an early push (:mod:`.overlap`) left in the registries, when the run does not
end with its push step: said in words, and told to the record of pushes
(:mod:`polyarch.registry.pushed`), so that a re-run asks for those blobs."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from polyarch.refs import ImageRef
from polyarch.session import Session

if TYPE_CHECKING:
    from polyarch.pipeline.overlap import EarlyPush


def record_confirmed(s: Session, repos: Sequence[ImageRef],
                     confirmed: Mapping[str, Collection[str]]) -> None:
    """Tell the record of pushes (:mod:`polyarch.registry.pushed`) which blobs are in
    which repository (``confirmed``: repository name -> digests), when a push fails
    before its end records them all."""
    from polyarch.registry.pushed import PushRecord

    for repo in repos:
        if confirmed.get(repo.name):
            PushRecord(s.ws.root / "pushed", repo.registry).add(repo.repository,
                                                                confirmed[repo.name])


def left_early(early: EarlyPush) -> str:
    """What ``early`` pushed, in words, for a run that ends otherwise than by its push
    step (its batches ended or were cancelled)."""
    with early._lock:
        started, done = set(early.started), set().union(set(), *early.sent.values())
    n = len(started)
    if not n:
        return ""
    some = "" if done >= started else "up to "
    return (f"{some}{n} verified blob{'s' if n != 1 else ''} of platforms that passed"
            f" {'was' if n == 1 else 'were'} pushed by digest")


def what_left(early: EarlyPush, otherwise: str) -> str:
    """The consequence of a failed verification, in words (``otherwise``: when no blob
    left early)."""
    with early._lock:
        started, done = set(early.started), set().union(*early.sent.values())
    if not started:
        return otherwise
    n = len(started)
    # A batch a registry failure ended may have sent some of its blobs.
    some = "" if done >= started else "up to "
    blobs, were = (f"{some}1 blob", "was") if n == 1 else (f"{some}{n} blobs", "were")
    if early.all_passed:
        # Only the whole index failed (its annotations, an attestation attached to no
        # platform): the platforms' layers, configs and attestations may have left.
        return (f"every platform passed on its own and {blobs} of theirs {were} pushed by"
                " digest, but the index failed: no manifest, no tag")
    # (no config left: the configs wait for every platform)
    return (f"nothing of a failing platform was pushed ({blobs} of platforms that passed"
            f" {were}, by digest: no manifest, no tag)")
