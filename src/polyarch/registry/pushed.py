"""Where blobs were pushed before: the repositories of a registry that hold them.

A publish into a new repository of a registry that already holds the image's blobs
elsewhere (an earlier release under another name, the same layers built again) mounts
them from there instead of uploading them again: ``POST .../blobs/uploads/?mount=
DIGEST&from=REPO``. containerd keeps the same knowledge as ``distribution.source``
labels in its content store, which is how ``docker buildx build --push`` mounts them.

The record is a directory per registry in polyarch's cache directory, holding one small
JSON file per first two hex digits of the digests (256 shards): digest -> the
repositories it was last pushed to (most recent first, at most :data:`MAX_REPOS`), at
most :data:`MAX_PER_SHARD` digests per shard (the oldest are forgotten), so about
:data:`MAX_DIGESTS` in all. A push reads and writes only the shards of its own blobs: a
full record costs what an empty one does (one file of 20,000 digests cost about 50 ms
to read and rewrite on every push). It is a hint only: a mount the registry refuses
(the blob was deleted, the credentials cannot read that repository) falls back to an
upload, and a record that cannot be read or written is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote

MAX_DIGESTS = 20_000
MAX_REPOS = 4
SHARDS = 256
MAX_PER_SHARD = MAX_DIGESTS // SHARDS + 1
#: Largest shard file read (a bigger one is ignored, and replaced by the next push).
MAX_BYTES = 256 << 10
_HEX = frozenset("0123456789abcdef")


def _shard(digest: str) -> str | None:
    """The shard of ``sha256:HEX`` (its first two hex digits), ``None`` for anything
    else."""
    hexd = digest.removeprefix("sha256:")
    if len(digest) - len(hexd) != 7 or len(hexd) != 64 or not _HEX.issuperset(hexd):
        return None
    return hexd[:2]


class PushRecord:
    """The record of one registry (``host[:port]``) in ``directory``."""

    def __init__(self, directory: Path, registry: str) -> None:
        name = quote(registry.lower(), safe="")
        self.dir = directory / name
        #: Where the record was one file (before it was sharded): removed on the next add.
        self.old_file = directory / f"{name}.json"

    def _load(self, shard: str) -> dict[str, list[str]]:
        try:
            with (self.dir / f"{shard}.json").open("rb") as f:
                data = f.read(MAX_BYTES + 1)
            doc = json.loads(data) if len(data) <= MAX_BYTES else {}
        except (OSError, ValueError):
            return {}
        if not isinstance(doc, dict):
            return {}
        return {d: [r for r in repos if isinstance(r, str)][:MAX_REPOS]
                for d, repos in doc.items()
                if isinstance(d, str) and _shard(d) == shard and isinstance(repos, list)}

    @staticmethod
    def _by_shard(digests: Iterable[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for d in digests:
            s = _shard(d)
            if s is not None:
                out.setdefault(s, []).append(d)
        return out

    def sources(self, digests: Iterable[str]) -> Mapping[str, list[str]]:
        """digest -> repositories that held it, for those of ``digests`` the record knows."""
        found: dict[str, list[str]] = {}
        for shard, ds in self._by_shard(digests).items():
            known = self._load(shard)
            found.update({d: known[d] for d in ds if d in known})
        return found

    def add(self, repository: str, digests: Iterable[str]) -> None:
        """``digests`` are now in ``repository``: remember it first for each."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            return
        with contextlib.suppress(OSError):
            self.old_file.unlink()
        for shard, ds in self._by_shard(digests).items():
            doc = self._load(shard)
            for d in ds:
                repos = [repository, *(r for r in doc.pop(d, []) if r != repository)]
                doc[d] = repos[:MAX_REPOS]  # re-inserted: the most recent are last
            if len(doc) > MAX_PER_SHARD:
                doc = dict(list(doc.items())[-MAX_PER_SHARD:])
            path = self.dir / f"{shard}.json"
            tmp = path.with_name(f".{shard}.{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                tmp.write_text(json.dumps(doc, separators=(",", ":")))
                os.replace(tmp, path)
            except OSError:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                return
