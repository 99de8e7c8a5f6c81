"""Where blobs were pushed before: the repositories of a registry that hold them.

A publish into a new repository of a registry that already holds the image's blobs
elsewhere (an earlier release under another name, the same layers built again) mounts
them from there instead of uploading them again: ``POST .../blobs/uploads/?mount=
DIGEST&from=REPO``. containerd keeps the same knowledge as ``distribution.source``
labels in its content store, which is how ``docker buildx build --push`` mounts them.

The record is one small JSON file per registry in polyarch's cache directory: digest ->
the repositories it was last pushed to (most recent first, at most
:data:`MAX_REPOS`), at most :data:`MAX_DIGESTS` digests (the oldest are forgotten). A
push reads it before and rewrites it after: a full record costs about 15 ms each time
(20,000 digests cost 50-90 ms; one file per digest prefix cost 10 ms even when nearly
empty, as a push touches 20 or more of them). It is a hint only: a mount the registry
refuses (the blob was deleted, the credentials cannot read that repository) falls back
to an upload, and a record that cannot be read or written is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote

MAX_DIGESTS = 5_000
MAX_REPOS = 4
MAX_BYTES = 4 << 20
#: One rewrite at a time in this process (batches of one push may record side by side).
_writing = threading.Lock()


class PushRecord:
    """The record of one registry (``host[:port]``) in ``directory``."""

    def __init__(self, directory: Path, registry: str) -> None:
        self.file = directory / f"{quote(registry.lower(), safe='')}.json"

    def load(self) -> dict[str, list[str]]:
        try:
            with self.file.open("rb") as f:
                data = f.read(MAX_BYTES + 1)
            doc = json.loads(data) if len(data) <= MAX_BYTES else {}
        except (OSError, ValueError):
            return {}
        if not isinstance(doc, dict):
            return {}
        return {d: [r for r in repos if isinstance(r, str)][:MAX_REPOS]
                for d, repos in doc.items()
                if isinstance(d, str) and d.startswith("sha256:") and isinstance(repos, list)}

    def sources(self, digests: Iterable[str]) -> Mapping[str, list[str]]:
        """digest -> repositories that held it, for those of ``digests`` the record knows."""
        known = self.load()
        return {d: known[d] for d in digests if d in known}

    def add(self, repository: str, digests: Iterable[str]) -> None:
        """``digests`` are now in ``repository``: remember it first for each."""
        with _writing:  # (each rewrite reads the record anew under the lock)
            self._add(repository, digests)

    def _add(self, repository: str, digests: Iterable[str]) -> None:
        doc = self.load()
        for d in digests:
            repos = [repository, *(r for r in doc.pop(d, []) if r != repository)]
            doc[d] = repos[:MAX_REPOS]  # re-inserted: the most recent are last
        if len(doc) > MAX_DIGESTS:
            doc = dict(list(doc.items())[-MAX_DIGESTS:])
        tmp = self.file.with_name(f"{self.file.name}.{os.getpid()}.tmp")
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(doc, separators=(",", ":")))
            os.replace(tmp, self.file)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
