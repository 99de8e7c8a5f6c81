"""Pruning of the per-layer verification cache (:mod:`polyarch.checks.cache`): its
entry files by age and size only, without the modules that make the entries, so that
the thread pruning the cache directory beside a build loads nothing heavy."""

from __future__ import annotations

import threading
from pathlib import Path

MAX_BYTES = 256 << 20
MAX_AGE = 30 * 86400.0
#: A temporary file this old is a write that never finished.
TMP_AGE = 3600.0


def prune_entries(root: Path, *, max_bytes: int = MAX_BYTES, max_age: float = MAX_AGE,
                  stop: threading.Event | None = None) -> int:
    """Drop the entries under ``root``'s rule directories older than ``max_age``, then
    the least recently used until they hold at most ``max_bytes``; return how many were
    removed. ``stop`` set: no more is removed."""
    import time

    now = time.time()
    entries: list[tuple[float, int, Path]] = []
    removed = 0
    try:
        for sub in root.iterdir():
            if not sub.is_dir():
                continue
            for f in sub.iterdir():
                if stop is not None and stop.is_set():
                    return removed
                try:
                    st = f.stat()
                except OSError:
                    continue
                if now - st.st_mtime > max_age or (
                        f.suffix == ".tmp" and now - st.st_mtime > TMP_AGE):
                    removed += _unlink(f)
                else:
                    entries.append((st.st_mtime, st.st_size, f))
    except OSError:
        return removed
    total = sum(size for _, size, _ in entries)
    for _mtime, size, f in sorted(entries):
        if total <= max_bytes or (stop is not None and stop.is_set()):
            break
        removed += _unlink(f)
        total -= size
    return removed


def _unlink(f: Path) -> int:
    try:
        f.unlink()
        return 1
    except OSError:
        return 0
