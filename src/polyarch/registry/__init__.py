"""OCI distribution client and OCI layout reader.

The registry layer talks HTTP only; it never runs an engine. The one program it may
start is a docker credential helper named in ``config.json``.
"""

from __future__ import annotations

from polyarch.registry import _no_httpx_cli  # noqa: F401  (before httpx is imported)
from polyarch.registry.client import BlobNotFound, ManifestNotFound, RegistryClient
from polyarch.registry.media import Manifest
from polyarch.registry.source import ImageSource, OCILayout, RegistrySource, open_source

__all__ = [
    "BlobNotFound",
    "ImageSource",
    "Manifest",
    "ManifestNotFound",
    "OCILayout",
    "RegistryClient",
    "RegistrySource",
    "open_source",
]
