"""OCI distribution client and OCI layouts.

Modules, from the bottom: ``trust`` (TLS trust as docker has it), ``bounded`` (size
limits and the minimum rate of every answer), ``transport`` (scheme, deadlines,
retries), ``credentials`` and ``auth`` (docker config, Basic and Bearer as an
``httpx.Auth``), ``calls`` (one request of the distribution protocol), ``manifests``
and ``blobs`` (its calls), ``api`` (the protocol in one class), ``layout`` (OCI layouts
on disk), ``upload`` (resumable blob uploads), ``mounts`` (where a blob already is on
the registry), ``push`` (a layout to a repository, by digest), ``copy`` (between
repositories, into layouts), ``client`` (:class:`RegistryClient`, all of it in one
object).

The registry layer talks HTTP only; it never runs an engine. The one program it may
start is a docker credential helper named in ``config.json``.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import TYPE_CHECKING, Any

# httpx imports its command-line tool (httpx._main: click, rich.progress, rich.syntax,
# pygments) with itself when those are installed; polyarch never runs that tool, and
# loading it costs more than the rest of httpx. A None entry makes that import fail,
# and httpx falls back to a stub.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

if TYPE_CHECKING:
    from polyarch.registry.client import BlobNotFound, ManifestNotFound, RegistryClient
    from polyarch.registry.copy import pull_layout, write_layout
    from polyarch.registry.layout import BlobLocation, OCILayout, parse_oci_spec
    from polyarch.registry.media import Manifest
    from polyarch.registry.push import PushEvent, PushResult, push_layout
    from polyarch.registry.source import ImageSource, RegistrySource, open_source
    from polyarch.registry.upload import upload_blob

# Names are imported on first use: ``inspect`` needs the API, not the push machinery.
_WHERE = {
    "BlobLocation": "layout", "BlobNotFound": "blobs", "ImageSource": "source",
    "Manifest": "media", "ManifestNotFound": "manifests", "OCILayout": "layout",
    "PushEvent": "push", "PushResult": "push", "RegistryClient": "client",
    "RegistrySource": "source", "open_source": "source", "parse_oci_spec": "layout",
    "pull_layout": "copy", "push_layout": "push", "upload_blob": "upload",
    "write_layout": "copy",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'polyarch.registry' has no attribute {name!r}")
    value = getattr(import_module(f"polyarch.registry.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "BlobLocation",
    "BlobNotFound",
    "ImageSource",
    "Manifest",
    "ManifestNotFound",
    "OCILayout",
    "PushEvent",
    "PushResult",
    "RegistryClient",
    "RegistrySource",
    "open_source",
    "parse_oci_spec",
    "pull_layout",
    "push_layout",
    "upload_blob",
    "write_layout",
]
