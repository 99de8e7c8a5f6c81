"""Push: upload a verified layout to each target repository by digest (no tag).

The first repository gets the blobs; every other repository on the same registry mounts
them from it. Blobs the registry already has are skipped, so a re-run after a failure
uploads only what is missing. Blobs of the images the Dockerfile builds ``FROM`` that
live on the target's registry are mounted from their repositories, not uploaded again
(:mod:`polyarch.registry.mounts`), and so are blobs an earlier push sent to another
repository of that registry (:mod:`polyarch.registry.pushed`).

Layers of platforms that passed may still be on their way when this step starts (the
early push, :mod:`polyarch.pipeline.overlap`): it asks for and sends everything else
meanwhile, and waits for them before the first manifest, which names them, is written;
a registry failure of the early push fails this step there, before any manifest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyarch import interrupt
from polyarch.pipeline.bases import dockerfile_bases
from polyarch.refs import ImageRef
from polyarch.registry.layout import OCILayout
from polyarch.session import Session

if TYPE_CHECKING:
    from polyarch.pipeline.overlap import EarlyPush
    from polyarch.registry.push import PushEvent


@dataclass(frozen=True)
class Pushed:
    repositories: tuple[str, ...]
    digest: str
    blobs_uploaded: int
    blobs_skipped: int
    blobs_mounted: int
    bytes_sent: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"repositories": list(self.repositories), "digest": self.digest,
                "blobs": {"uploaded": self.blobs_uploaded, "skipped": self.blobs_skipped,
                          "mounted": self.blobs_mounted},
                "bytes_sent": self.bytes_sent, "seconds": round(self.seconds, 3)}


def repositories(targets: Sequence[ImageRef]) -> list[ImageRef]:
    """Each target repository once, in the order first named."""
    seen: dict[str, ImageRef] = {}
    for t in targets:
        seen.setdefault(t.name, t.untagged())
    return list(seen.values())


def push(s: Session, layout: Path, digest: str, targets: Sequence[ImageRef], *,
         mount_from: Sequence[str] = (), early: EarlyPush | None = None) -> Pushed:
    """Push ``layout`` (root ``digest``) to the repository of every target, by digest.
    ``early`` pushed verified blobs while verification went on, and may still be
    sending the last of them: those are not asked for again, and the first manifest
    waits for them (a failure of theirs fails this step there)."""
    # The HTTP client's modules load while the engine builds, not before it starts.
    from polyarch.pipeline.leftover import record_confirmed
    from polyarch.registry.push import plan_push, push_layout
    from polyarch.registry.pushed import PushRecord

    repos = repositories(targets)
    t0 = time.monotonic()
    counts = {"uploaded": 0, "exists": 0, "mounted": 0}
    sent = 0
    interrupt.set_phase("pushing by digest: no tag was moved (blobs already uploaded stay"
                        " untagged; a re-run skips them)")
    # The layers sent during verification may still be on their way: this step asks for
    # the rest and sends it meanwhile, and waits for them (once) only before the first
    # manifest names them.
    handed: dict[str, frozenset[str]] = (
        {r.name: frozenset(early.submitted) for r in early.repos} if early else {})
    settled = early is None

    def settle() -> None:
        nonlocal settled, sent
        if settled or early is None:
            return
        t_wait = time.monotonic()
        early.finish()
        settled = True
        if early.error is not None:
            raise early.error  # the registry failed: as if it had failed in this step
        unsent = early.unconfirmed()
        if unsent:  # (cannot happen: a batch that ends without error sent everything)
            raise RuntimeError("layers handed to the early push were not confirmed in"
                               f" {', '.join(sorted(unsent))}")
        for k in counts:
            counts[k] += early.counts[k]
        sent += early.bytes_sent
        if early.pushed():
            s.rep.info(f"{len(early.pushed())} verified blobs were pushed during"
                       f" verification (waited {time.monotonic() - t_wait:.2f} s for the"
                       " last of them)")

    # repository name -> blobs this step found, mounted or uploaded there (recorded when
    # the step fails: a re-run asks for them, see polyarch.registry.push.NO_HEAD_BELOW).
    confirmed: dict[str, set[str]] = {}

    def noting(repo: ImageRef) -> Callable[[PushEvent], None]:
        there = confirmed.setdefault(repo.name, set())

        def note(ev: PushEvent) -> None:
            if ev.action in ("exists", "mounted", "uploaded"):
                there.add(ev.digest)
        return note

    with s.rep.group(f"push {digest[:19]} to {', '.join(r.name for r in repos)}"):
        try:
            if early is not None and early.failed is not None:
                settle()  # it failed already: nothing more to ask the registry
            done: list[ImageRef] = []
            bases: list[ImageRef] | None = None
            lay = OCILayout(layout)
            _, blobs = plan_push(lay, lay.manifest(digest))
            for repo in repos:
                same_registry = [d.repository for d in done if d.registry == repo.registry]
                record = PushRecord(s.ws.root / "pushed", repo.registry)
                recorded = record.sources(blobs)
                # Where blobs can be mounted from: as the early push worked it out, else now.
                sources = (early.sources(repo, wait=s.client.transport.timeout)
                           if early is not None else None)
                if sources is None and bases is None:
                    bases = dockerfile_bases(s.opts.dockerfile, s.opts.platforms,
                                             s.opts.build_args)
                res = push_layout(
                    s.client, lay, repo, root_digest=digest,
                    mount_from=[*mount_from, *same_registry], sources=sources,
                    known_sources=None if sources is not None else recorded,
                    bases=[b for b in bases or () if b.registry == repo.registry],
                    present=handed.get(repo.name, frozenset()), before_manifests=settle,
                    progress=noting(repo),
                    # A blob never pushed to this repository (as far as the record of
                    # earlier pushes knows): it cannot hold the image yet.
                    expect_new=any(repo.repository not in recorded.get(d, ())
                                   for d in blobs))
                settle()  # (not called when the repository held the whole image already)
                counts["uploaded"] += res.blobs_uploaded
                counts["exists"] += res.blobs_skipped
                counts["mounted"] += res.blobs_mounted
                sent += res.bytes_sent
                done.append(repo)
                record.add(repo.repository, blobs)
                s.rep.info(f"{repo.name}@{digest}: {res.blobs_uploaded} blobs uploaded,"
                           f" {res.blobs_skipped} already there, {res.blobs_mounted} mounted")
        except BaseException as e:
            if not settled and early is not None:
                # The uploads in flight end (within their deadlines) before the error is
                # said, so that the registry's state is settled then; unless interrupted.
                early.finish(cancel=True, wait=isinstance(e, Exception))
            if early is not None:
                with early._lock:
                    for name, there in early.confirmed.items():
                        confirmed.setdefault(name, set()).update(there)
            record_confirmed(s, repos, confirmed)  # (interrupted too: a quick local write)
            raise
    return Pushed(tuple(r.name for r in repos), digest, counts["uploaded"], counts["exists"],
                  counts["mounted"], sent, time.monotonic() - t0)
