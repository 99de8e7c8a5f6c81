"""The per-layer verification cache: a layer's scan, kept by its digest.

A :class:`~polyarch.checks.layers.LayerScan` depends only on the layer's bytes, on the
rules that read them (the walker, the tar reader under it, the ELF reader, the
credential detectors) and on the values given to the build that the content scanner
looks for (an entry's name carries a keyed hash of them, :func:`known_suffix`). So the
key is the layer digest plus :data:`RULES`, a hash of those rules' source: a
changed detector starts a fresh cache instead of trusting old results. The platform
a layer is judged against and the ``--allow`` globs are applied after the scan, so
they are not part of the key; one entry serves every platform sharing the layer.

Entries are zlib-compressed JSON files (no pickle: a cache file is data, never code)
under ``DIR/RULES/``, where DIR is what the caller gives, else
``$POLYARCH_CACHE_DIR/verify``, else ``$XDG_CACHE_HOME/polyarch/verify`` (default
``~/.cache/polyarch/verify``). Reading an entry refreshes its time; :meth:`prune`
removes entries older than ``max_age`` and then the least recently used until the
directory holds at most ``max_bytes``; a command's session runs it in the thread that
prunes the rest of the cache directory (:meth:`polyarch.session.Session.prune_cache`),
off the path of the verification. A cache that cannot be written is skipped:
verification reads the layers instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import zlib
from pathlib import Path

from polyarch.checks import elf, layers, secrets, stream, tarformat, tarstream
from polyarch.checks.layers import LayerScan
from polyarch.checks.pruning import MAX_AGE, MAX_BYTES, prune_entries

#: Layout version of the entries (bumped when :meth:`LayerScan.to_json` changes).
FORMAT = 2


def _rules() -> str:
    h = hashlib.sha256(f"format {FORMAT}".encode())
    sources: list[Path] = []
    for mod in (layers, tarstream, tarformat, stream, elf, secrets):
        f = Path(mod.__file__ or "")
        # A package (the credential detectors): every module of it.
        sources += sorted(f.parent.glob("*.py")) if f.name == "__init__.py" else [f]
    for f in sources:
        try:
            h.update(f.read_bytes())
        except OSError:  # no source next to the module: its name still counts
            h.update(f.name.encode())
    return h.hexdigest()[:16]


#: Hash of the rules that produce a scan: part of every key.
RULES = _rules()


def default_dir() -> Path:
    """The verify cache in the cache directory, as :mod:`polyarch.workspace` finds it
    (``POLYARCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/polyarch``, ``~/.cache/polyarch``)."""
    from polyarch.workspace import Workspace

    return Workspace.open().verify_cache


class LayerCache:
    def __init__(self, directory: Path | None = None, *, max_bytes: int = MAX_BYTES,
                 max_age: float = MAX_AGE) -> None:
        self.root = directory if directory is not None else default_dir()
        self.dir = self.root / RULES
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.hits = 0
        self.misses = 0
        self.writable = True

    def _file(self, digest: str, known: str | None = None) -> Path | None:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64 or not all(c in "0123456789abcdef" for c in hexd):
            return None
        return self.dir / f"{hexd}{known_suffix() if known is None else known}.json.z"

    def get(self, digest: str) -> LayerScan | None:
        f = self._file(digest)
        try:
            if f is None:
                raise FileNotFoundError(digest)
            doc = json.loads(zlib.decompress(f.read_bytes()))
            scan = LayerScan.from_json(doc)
            if scan.digest != digest:
                raise ValueError("entry for another layer")
        except (OSError, ValueError, KeyError, TypeError, zlib.error):
            self.misses += 1
            return None
        with contextlib.suppress(OSError):
            os.utime(f)
        self.hits += 1
        return scan

    def has(self, digest: str) -> bool:
        """Whether an entry for the layer is there (it may still prove unreadable)."""
        f = self._file(digest)
        return f is not None and f.is_file()

    def put(self, scan: LayerScan, known: str | None = None) -> None:
        """Keep ``scan``, made looking for the values :func:`known_suffix` named when it
        began (``known``; default: now)."""
        f = self._file(scan.digest, known)
        if f is None or not self.writable:
            return
        data = zlib.compress(json.dumps(scan.to_json(), separators=(",", ":")).encode(), 6)
        # One name per thread: two verifications of one process may store the same
        # layer at once (the platforms of a publish are verified side by side).
        tmp = f.with_name(f"{f.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, f)
        except OSError:
            self.writable = False  # read-only or full: verify on without the cache
            with contextlib.suppress(OSError):
                tmp.unlink()

    def prune(self, stop: threading.Event | None = None) -> int:
        """Drop old entries, then the least recently used over the size limit; return
        how many were removed. ``stop`` set: no more is removed."""
        return prune_entries(self.root, max_bytes=self.max_bytes, max_age=self.max_age,
                             stop=stop)


def known_suffix() -> str:
    """The values given to this build are looked for in every layer (a build argument,
    a registry password): a scan made without them does not answer for them. A
    64-bit keyed hash of them names the entries made with them (no value is stored)."""
    known = secrets.known_values()
    if not known:
        return ""
    h = hashlib.blake2b(b"\0".join(sorted(known)), digest_size=8, key=b"polyarch-known-values")
    return "-" + h.hexdigest()
