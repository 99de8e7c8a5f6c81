"""Push: upload a verified layout to each target repository by digest (no tag).

The first repository gets the blobs; every other repository on the same registry mounts
them from it. Blobs the registry already has are skipped, so a re-run after a failure
uploads only what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polyarch import interrupt
from polyarch.refs import ImageRef
from polyarch.registry.layout import OCILayout
from polyarch.registry.push import push_layout
from polyarch.session import Session


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
         mount_from: Sequence[str] = ()) -> Pushed:
    """Push ``layout`` (root ``digest``) to the repository of every target, by digest."""
    repos = repositories(targets)
    t0 = time.monotonic()
    interrupt.set_phase("pushing by digest: no tag was moved (blobs already uploaded stay"
                        " untagged; a re-run skips them)")
    up = skip = mnt = sent = 0
    with s.rep.group(f"push {digest[:19]} to {', '.join(r.name for r in repos)}"):
        done: list[ImageRef] = []
        for repo in repos:
            same_registry = [d.repository for d in done if d.registry == repo.registry]
            res = push_layout(s.client, OCILayout(layout), repo, root_digest=digest,
                              mount_from=[*mount_from, *same_registry])
            up += res.blobs_uploaded
            skip += res.blobs_skipped
            mnt += res.blobs_mounted
            sent += res.bytes_sent
            done.append(repo)
            s.rep.info(f"{repo.name}@{digest}: {res.blobs_uploaded} blobs uploaded,"
                       f" {res.blobs_skipped} already there, {res.blobs_mounted} mounted")
    return Pushed(tuple(r.name for r in repos), digest, up, skip, mnt, sent,
                  time.monotonic() - t0)
