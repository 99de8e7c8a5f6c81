"""The *build descriptor*: what one ``polyarch build --push`` pushed by digest, in a
small JSON file that ``polyarch merge`` reads on another machine.

The build verified its platforms locally before anything was pushed; no tag moved.
``merge`` joins the parts into one index, verifies that and moves the tags.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from polyarch.config import Options
from polyarch.errors import UsageError
from polyarch.platforms import parse_platform
from polyarch.refs import ReferenceError, parse_ref

#: ``kind`` and ``schema`` of a build descriptor (docs/json.md, "build descriptor").
DESCRIPTOR_KIND = "polyarch-build"
DESCRIPTOR_SCHEMA = 2


@dataclass
class Descriptor:
    """What one ``polyarch build --push`` verified and pushed by digest."""

    repository: str  # registry/repository, no tag
    digest: str  # of what was pushed: an index (buildx) or a single manifest
    media_type: str
    platforms: list[str]
    created: str  # RFC 3339, UTC
    manifests: dict[str, str] = field(default_factory=dict)  # platform -> manifest digest
    modes: dict[str, str] = field(default_factory=dict)  # platform -> native|emulated
    build_seconds: float = 0.0
    builder: str = ""  # engine and host that built it, for the record
    verified: bool = True  # False only when built with --no-verify
    #: The index annotations the build meant (tags from git, ``--annotation index:``);
    #: merge puts them on the index. None: a descriptor written without the field.
    annotations: dict[str, str] | None = None

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": DESCRIPTOR_SCHEMA,
            "kind": DESCRIPTOR_KIND,
            "repository": self.repository,
            "digest": self.digest,
            "media_type": self.media_type,
            "reference": self.reference,
            "platforms": self.platforms,
            "manifests": self.manifests,
            "modes": self.modes,
            "verified": self.verified,
            "created": self.created,
            "build_seconds": round(self.build_seconds, 3),
            "builder": self.builder,
            "annotations": self.annotations or {},
        }

    @staticmethod
    def from_json(doc: Any, where: str) -> Descriptor:
        """Read a descriptor; every problem is a :class:`UsageError` naming ``where``."""
        if not isinstance(doc, dict) or doc.get("kind") != DESCRIPTOR_KIND:
            raise UsageError(f"{where}: not a polyarch build descriptor (no \"kind\":"
                             f" \"{DESCRIPTOR_KIND}\")")
        schema = doc.get("schema")
        if schema != DESCRIPTOR_SCHEMA:
            raise UsageError(f"{where}: descriptor schema {schema!r} is not supported"
                             f" (this polyarch reads schema {DESCRIPTOR_SCHEMA})",
                             hint="build and merge with the same polyarch version")

        def text(key: str) -> str:
            v = doc.get(key)
            if not isinstance(v, str) or not v:
                raise UsageError(f"{where}: descriptor field {key!r} is missing or not a string")
            return v

        plats = doc.get("platforms")
        if not isinstance(plats, list) or not plats or not all(isinstance(p, str) for p in plats):
            raise UsageError(f"{where}: descriptor field 'platforms' must be a non-empty list"
                             " of strings")
        for p in plats:
            try:
                parse_platform(p)
            except ValueError as e:
                raise UsageError(f"{where}: descriptor platform: {e}") from None
        seconds = doc.get("build_seconds") or 0.0
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not (
                0 <= seconds < 10**9):
            raise UsageError(f"{where}: descriptor field 'build_seconds' must be a number of"
                             " seconds")
        repo = text("repository")
        digest = text("digest")
        try:
            parse_ref(repo, default_tag=None).with_digest(digest)
        except (ReferenceError, ValueError) as e:
            raise UsageError(f"{where}: bad repository or digest in descriptor: {e}") from None
        manifests = doc.get("manifests") or {}
        ann = doc.get("annotations")
        if ann is not None and not (isinstance(ann, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in ann.items())):
            raise UsageError(f"{where}: descriptor field 'annotations' must be an object of"
                             " strings")
        modes = doc.get("modes") or {}
        return Descriptor(
            repository=repo, digest=digest, media_type=str(doc.get("media_type", "")),
            platforms=list(plats),
            created=str(doc.get("created", "")),
            manifests={str(k): str(v) for k, v in manifests.items()} if isinstance(manifests, dict) else {},
            modes={str(k): str(v) for k, v in modes.items()} if isinstance(modes, dict) else {},
            build_seconds=float(seconds),
            builder=str(doc.get("builder", "")),
            verified=doc.get("verified") is not False,
            annotations=dict(ann) if ann is not None else None,
        )

    @staticmethod
    def load(path: Path) -> Descriptor:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise UsageError(f"source {path}: no such descriptor file") from None
        except OSError as e:
            raise UsageError(f"source {path}: cannot read: {e.strerror}") from None
        try:
            doc = json.loads(raw)  # bytes: UTF-8 (or -16/-32 with a BOM), as JSON says
        except ValueError as e:  # UnicodeDecodeError included
            raise UsageError(f"source {path}: not JSON: {e}") from None
        except RecursionError:
            raise UsageError(f"source {path}: not a build descriptor: nested too deeply") from None
        return Descriptor.from_json(doc, f"source {path}")


def default_path(opts: Options) -> Path:
    slug = "-".join(str(p).replace("/", "-") for p in opts.platforms)
    return Path(f"polyarch-build-{slug}.json")


def make(*, repository: str, digest: str, media_type: str, platforms: list[str],
         manifests: dict[str, str], modes: dict[str, str], build_seconds: float,
         engine: str, verified: bool, annotations: dict[str, str] | None = None
         ) -> Descriptor:
    return Descriptor(
        repository=repository, digest=digest, media_type=media_type, platforms=platforms,
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), manifests=manifests,
        modes=modes, build_seconds=build_seconds,
        builder=f"{engine} on {socket.gethostname()}", verified=verified,
        annotations=dict(annotations or {}))


def write(desc: Descriptor, path: Path) -> None:
    from polyarch import resultfiles

    try:
        resultfiles.write(path, json.dumps(desc.to_json(), indent=2) + "\n")  # whole or not at all
    except OSError as e:
        raise UsageError(f"cannot write the descriptor {path}: {e.strerror or e}") from None
