"""OCI distribution client and OCI layouts.

Modules, from the bottom: ``trust`` (TLS trust as docker has it), ``transport``
(scheme, deadlines, retries), ``credentials`` and ``auth`` (docker config, Basic and
Bearer as an ``httpx.Auth``), ``api`` (the distribution protocol), ``layout`` (OCI
layouts on disk), ``upload`` (resumable blob uploads), ``push`` (a layout to a
repository, by digest), ``copy`` (between repositories, into layouts), ``client``
(:class:`RegistryClient`, all of it in one object).

The registry layer talks HTTP only; it never runs an engine. The one program it may
start is a docker credential helper named in ``config.json``.
"""

from __future__ import annotations

from polyarch.registry.client import BlobNotFound, ManifestNotFound, RegistryClient
from polyarch.registry.copy import pull_layout, write_layout
from polyarch.registry.layout import BlobLocation, OCILayout, parse_oci_spec
from polyarch.registry.media import Manifest
from polyarch.registry.push import PushEvent, PushResult, push_layout
from polyarch.registry.source import ImageSource, RegistrySource, open_source

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
    "write_layout",
]
