"""Read many layers at once: threads, or processes for large reads of a layout on disk.

Decompression and the digest check release the GIL, so threads keep every core busy
with them; the content scanner's regular expressions and the tar walker do not. When
a layout on disk has at least :data:`PROCESS_BYTES` to read in two or more layers,
the layers are read in worker processes (one per core, started with ``spawn``), each
opening the layout itself and sending back the scan as plain data. Registry sources,
small reads and one-core machines use the threads.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from polyarch.checks.layers import LayerFormatError, LayerScan, scan_layer
from polyarch.errors import FatalError, RegistryError
from polyarch.registry.source import ImageSource, OCILayout

#: Least compressed bytes to read for worker processes to pay for their start.
PROCESS_BYTES = 64 << 20


def _scan_in_worker(path: str, name: str | None, digest: str) -> tuple[str, Any]:
    """In a worker process: ("ok", scan as JSON data) or (error class, message)."""
    try:
        src = OCILayout(Path(path), name)
        return "ok", scan_layer(digest, src.iter_blob(digest)).to_json()
    except LayerFormatError as e:
        return "layer", str(e)
    except FatalError as e:
        return "registry", e.message
    except OSError as e:
        return "registry", f"{path}: {e}"


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
    if (isinstance(src, OCILayout) and len(order) >= 2 and cores >= 2
            and total >= PROCESS_BYTES):
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(cores, len(order)), mp_context=ctx) as pool:
            futs = {d: pool.submit(_scan_in_worker, str(src.path), src.name, d) for d in order}
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
