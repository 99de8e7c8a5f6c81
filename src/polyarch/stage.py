"""``polyarch build --stage``: build some platforms here, push them to a staging tag,
and describe what was pushed in a small JSON file (the *build descriptor*) that
``polyarch merge`` reads on another machine.

Nothing is verified and no final tag moves here: ``merge`` joins the staged images into
one index, verifies that and promotes the tags, the way ``publish`` does.
"""

from __future__ import annotations

import json
import shlex
import socket
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from polyarch import redact
from polyarch.config import Options
from polyarch.errors import UsageError
from polyarch.output import BuildProgress, Reporter
from polyarch.platforms import parse_platform
from polyarch.refs import ImageRef, ReferenceError, parse_ref
from polyarch.workflow import (
    apply_git_tags,
    build_with_retries,
    index_platforms,
    prepare,
    registry_client,
)

#: ``kind`` and ``schema`` of a build descriptor (docs/json.md, "build descriptor").
DESCRIPTOR_KIND = "polyarch-build"
DESCRIPTOR_SCHEMA = 1


@dataclass
class Descriptor:
    """What one ``polyarch build --stage`` pushed."""

    repository: str  # registry/repository, no tag
    digest: str  # of what was pushed: an index (buildx) or a single manifest
    media_type: str
    platforms: list[str]
    staging: str  # the staging tag, registry/repository:polyarch-staging-...
    created: str  # RFC 3339, UTC
    manifests: dict[str, str] = field(default_factory=dict)  # platform -> manifest digest
    modes: dict[str, str] = field(default_factory=dict)  # platform -> native|emulated
    build_seconds: float = 0.0
    builder: str = ""  # engine and host that built it, for the record

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
            "staging": self.staging,
            "created": self.created,
            "build_seconds": round(self.build_seconds, 3),
            "builder": self.builder,
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
        modes = doc.get("modes") or {}
        return Descriptor(
            repository=repo, digest=digest, media_type=str(doc.get("media_type", "")),
            platforms=list(plats), staging=str(doc.get("staging", "")),
            created=str(doc.get("created", "")),
            manifests={str(k): str(v) for k, v in manifests.items()} if isinstance(manifests, dict) else {},
            modes={str(k): str(v) for k, v in modes.items()} if isinstance(modes, dict) else {},
            build_seconds=float(seconds),
            builder=str(doc.get("builder", "")),
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


def default_descriptor_path(opts: Options) -> Path:
    slug = "-".join(str(p).replace("/", "-") for p in opts.platforms)
    return Path(f"polyarch-build-{slug}.json")


@dataclass
class StageResult:
    descriptor: Descriptor | None
    path: Path | None
    dry_run: bool = False
    commands: list[list[str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"schema": DESCRIPTOR_SCHEMA, "dry_run": self.dry_run}
        if self.descriptor is not None:
            doc["descriptor"] = self.descriptor.to_json()
        doc["descriptor_path"] = str(self.path) if self.path else None
        doc["commands"] = [shlex.join(redact.argv(c)) for c in self.commands]
        return doc


def target_repository(opts: Options) -> ImageRef:
    """The repository the staging tag goes into: the first tag's, else the first --image."""
    if opts.tags:
        return opts.tags[0]
    if opts.images:
        try:
            return parse_ref(opts.images[0], default_tag=None)
        except ReferenceError as e:
            raise UsageError(f"image {opts.images[0]!r}: {e}") from None
    raise UsageError("no target repository: pass -t/--tag REGISTRY/REPO[:TAG] or --image"
                     " REGISTRY/REPO (the staging tag goes into that repository)")


def build_stage(opts: Options, rep: Reporter, *, descriptor_path: Path | None = None,
                dry_run: bool = False) -> StageResult:
    """Build ``opts.platforms`` on the current engine and push them to a staging tag."""
    # The labels (and index annotations) from git state are set here, at build time;
    # the tags they compute are merge's business.
    opts, annotations = apply_git_tags(opts, rep, lookup_existing=False)
    target = target_repository(opts)
    # Only the first repository matters here; merge promotes every tag.
    opts = replace(opts, tags=(target,))
    path = descriptor_path or default_descriptor_path(opts)
    prep = prepare(opts, rep, annotations=annotations, dry_run=dry_run, target=target)
    bx, plan, staging, req = prep.engine, prep.plan, prep.staging, prep.request
    if dry_run:
        cmds = prep.commands(rep)
        rep.info(f"# then: write the build descriptor {path}")
        return StageResult(None, path, dry_run=True, commands=cmds)

    plats = ", ".join(str(p) for p in opts.platforms)
    with rep.group(f"build {plats}"), BuildProgress(rep) as prog:
        built = build_with_retries(bx, req, prog, rep)
    staged = staging.with_digest(built.digest)
    with registry_client(opts) as client:
        root = client.get_manifest(staged)
    manifests: dict[str, str] = {}
    if root.is_index:
        for p in index_platforms(root, plan):
            manifests[p.platform] = p.digest
    else:
        manifests[str(opts.platforms[0])] = root.digest
    engine = plan.engine
    where = f"{bx.name} {engine.server_version} ({engine.os}/{engine.arch})" if engine else bx.name
    desc = Descriptor(
        repository=target.name,
        digest=built.digest,
        media_type=built.media_type or root.media_type,
        platforms=[str(p) for p in opts.platforms],
        staging=str(staging),
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        manifests=manifests,
        modes={str(p): plan.platform_modes.get(str(p), "?") for p in opts.platforms},
        build_seconds=built.seconds,
        builder=f"{where} on {socket.gethostname()}",
    )
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(desc.to_json(), indent=2) + "\n")
    return StageResult(desc, path)
