"""Push: upload a verified layout to each target repository by digest (no tag).

The first repository gets the blobs; every other repository on the same registry mounts
them from it. Blobs the registry already has are skipped, so a re-run after a failure
uploads only what is missing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polyarch import interrupt
from polyarch.refs import ImageRef
from polyarch.registry import Manifest, OCILayout, RegistryClient
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
            res = _push_layout(s.client, layout, repo, root_digest=digest,
                              mount_from=[*mount_from, *same_registry], progress=s.rep.info)
            up += res.blobs_uploaded
            skip += res.blobs_skipped
            mnt += res.blobs_mounted
            sent += res.bytes_sent
            done.append(repo)
            s.rep.info(f"{repo.name}@{digest}: {res.blobs_uploaded} blobs uploaded,"
                       f" {res.blobs_skipped} already there, {res.blobs_mounted} mounted")
    return Pushed(tuple(r.name for r in repos), digest, up, skip, mnt, sent,
                  time.monotonic() - t0)


@dataclass(frozen=True)
class _LayoutPush:
    blobs_uploaded: int
    blobs_skipped: int
    blobs_mounted: int
    bytes_sent: int


def _push_layout(client: RegistryClient, layout: Path, repo: ImageRef, *, root_digest: str,
                 mount_from: Sequence[str], progress: Callable[[str], None]) -> _LayoutPush:
    """Blobs first (skip, mount or upload, four at a time), then every manifest by digest,
    children before the root. Nothing is tagged."""
    src = OCILayout(layout)
    root = src.manifest(root_digest)
    manifests: list[Manifest] = []
    blobs: dict[str, int] = {}

    def walk(m: Manifest) -> None:
        if m.is_index:
            for d in m.json.get("manifests") or []:
                walk(src.manifest(str(d["digest"])))
        else:
            for d in [m.json.get("config") or {}, *(m.json.get("layers") or [])]:
                if isinstance(d, dict) and d.get("digest"):
                    blobs[str(d["digest"])] = int(d.get("size") or 0)
        manifests.append(m)

    walk(root)
    counts = {"up": 0, "skip": 0, "mount": 0, "bytes": 0}
    lock = threading.Lock()

    def one(digest: str) -> None:
        if client.blob_exists(repo, digest):
            how = "skip"
        elif any(client.mount_blob(repo, digest, r) for r in mount_from if r != repo.repository):
            how = "mount"
        else:
            client.upload_blob(repo, digest, layout / "blobs" / "sha256" / digest[7:])
            how = "up"
        with lock:
            counts[how] += 1
            if how == "up":
                counts["bytes"] += blobs[digest]

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, blobs))
    for m in manifests:  # children were appended before their parents
        client.put_manifest(repo.with_digest(m.digest), m.data, m.media_type)
    return _LayoutPush(counts["up"], counts["skip"], counts["mount"], counts["bytes"])
