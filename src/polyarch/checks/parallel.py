"""Read many layers at once, largest first, in threads.

Decompression (zlib, ISA-L, zstandard) and the digest check release the GIL, so the
threads keep every core busy with them; the tar walker and the content scanner's
regular expressions hold it. Worker processes were measured too: they add a Python
interpreter per core (about 35 MiB each, over the 100 MiB a verify may take) and,
started with ``spawn``, re-import the caller's main module, which breaks scripts that
call verification without an ``if __name__ == "__main__"`` guard.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from polyarch.checks.layers import LayerScan, scan_layer

if TYPE_CHECKING:
    from polyarch.registry.source import ImageSource


def scan_all(src: ImageSource, digests: Sequence[str], sizes: dict[str, int], *,
             threads: ThreadPoolExecutor) -> Iterator[tuple[str, Callable[[], LayerScan]]]:
    """(digest, result getter) for each of ``digests``, largest first (the longest
    reads start at once, the small ones fill in); the getter raises what reading the
    layer raised."""
    order = sorted(digests, key=lambda d: -sizes.get(d, 0))
    futures = {d: threads.submit(_scan, src, d) for d in order}
    for d, fut in futures.items():
        yield d, fut.result


def _scan(src: ImageSource, digest: str) -> LayerScan:
    return scan_layer(digest, src.iter_blob(digest))
