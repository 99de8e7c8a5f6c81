"""Read many layers at once: threads, or processes for large reads of a layout on disk.

Decompression and the digest check release the GIL, so threads keep every core busy
with them; the content scanner's regular expressions and the tar walker do not. When
a layout on disk has at least :data:`PROCESS_BYTES` to read in two or more layers,
the layers are read in worker processes (one per core, started with ``spawn``), each
opening the layout itself and sending back the scan as plain data. Registry sources,
small reads and one-core machines use the threads.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyarch.checks.layers import LayerFormatError, LayerScan, scan_layer
from polyarch.errors import RegistryError

if TYPE_CHECKING:
    from polyarch.registry.source import ImageSource

#: Least compressed bytes to read for worker processes to pay for their start.
PROCESS_BYTES = 64 << 20
_CHUNK = 1 << 20


def _scan_in_worker(layout: str, digest: str) -> tuple[str, Any]:
    """In a worker process: ("ok", scan as JSON data) or (error class, message). Reads
    ``LAYOUT/blobs/sha256/HEX`` itself (checking its digest), so that a worker imports
    the walker and nothing of the registry client."""
    try:
        return "ok", scan_layer(digest, _blob(Path(layout), digest)).to_json()
    except LayerFormatError as e:
        return "layer", str(e)
    except OSError as e:
        return "registry", f"oci:{layout}: blob {digest} cannot be read: {e.strerror or e}"
    except ValueError as e:
        return "registry", f"oci:{layout}: {e}"


def _blob(layout: Path, digest: str) -> Iterator[bytes]:
    algo, _, hexd = digest.partition(":")
    if algo != "sha256" or len(hexd) != 64 or not all(c in "0123456789abcdef" for c in hexd):
        raise ValueError(f"unsupported digest {digest}")
    h = hashlib.sha256()
    with (layout / "blobs" / "sha256" / hexd).open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            yield chunk
    if "sha256:" + h.hexdigest() != digest:
        raise ValueError(f"blob {digest} does not match its digest")


def _unwrap(result: tuple[str, Any]) -> LayerScan:
    kind, value = result
    if kind == "ok":
        return LayerScan.from_json(value)
    if kind == "layer":
        raise LayerFormatError(value)
    raise RegistryError(str(value))


def scan_all(src: ImageSource, digests: Sequence[str], sizes: dict[str, int], *,
             workers: int, threads: ThreadPoolExecutor
             ) -> Iterator[tuple[str, Callable[[], LayerScan]]]:
    """(digest, result getter) for each of ``digests``, largest first; the getter
    raises what reading the layer raised."""
    order = sorted(digests, key=lambda d: -sizes.get(d, 0))
    total = sum(sizes.get(d, 0) for d in order)
    cores = min(workers, os.cpu_count() or 1)
    from polyarch.registry.source import OCILayout  # the caller has it loaded already

    if (isinstance(src, OCILayout) and src.path.is_dir() and len(order) >= 2 and cores >= 2
            and total >= PROCESS_BYTES):
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(cores, len(order)), mp_context=ctx) as pool:
            futs = {d: pool.submit(_scan_in_worker, str(src.path), d) for d in order}
            for d, f in futs.items():
                yield d, _getter(f, _unwrap)
        return
    tfuts = {d: threads.submit(_scan, src, d) for d in order}
    for d, tf in tfuts.items():
        yield d, tf.result


def _getter(fut: Future[tuple[str, Any]], unwrap: Callable[[tuple[str, Any]], LayerScan]
            ) -> Callable[[], LayerScan]:
    return lambda: unwrap(fut.result())


def _scan(src: ImageSource, digest: str) -> LayerScan:
    return scan_layer(digest, src.iter_blob(digest))
