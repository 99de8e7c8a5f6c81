"""The frozen options object. One field per entry of the option table
(:mod:`polyarch.config.table`; a unit test keeps the two in step), plus where the
values came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from polyarch.checks.allow import allow_for
from polyarch.nodespec import NodeSpec
from polyarch.platforms import Platform
from polyarch.refs import ImageRef


@dataclass(frozen=True)
class Options:
    platforms: tuple[Platform, ...]
    context: str = "."
    file: str | None = None
    target: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    build_contexts: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: tuple[str, ...] = ()  # buildx --annotation values, unchanged
    secrets: tuple[str, ...] = ()
    ssh: tuple[str, ...] = ()
    network: str | None = None
    shm_size: str | None = None
    ulimits: tuple[str, ...] = ()
    entitlements: tuple[str, ...] = ()  # buildx --allow
    provenance: bool | str | None = None  # None: the engine's default; str: buildx options
    sbom: bool | str | None = None
    attest: tuple[str, ...] = ()
    cache: str = "none"
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    no_cache: bool = False
    pull: bool = False
    engine: str = "docker"  # docker | podman | auto
    builder: str | None = None
    docker_context: str | None = None
    nodes: tuple[NodeSpec, ...] = ()  # builder nodes: platform -> machine (polyarch.engines.buildx_nodes)
    insecure_registries: tuple[str, ...] = ()
    tags: tuple[ImageRef, ...] = ()
    images: tuple[str, ...] = ()  # names whose tags come from tag-specs and git state
    tag_specs: tuple[str, ...] = ()
    flavor: tuple[str, ...] = ()
    meta: Mapping[str, str] = field(default_factory=dict)  # OCI label values (title, ...)
    repository: str | None = None  # where name-from images go instead
    verify: bool = True
    smoke: str | None = None
    smoke_entrypoint: str | None = None
    smoke_timeout: float = 300.0
    allow: tuple[str, ...] = ()  # GLOB or PLATFORM=GLOB (see allow_for)
    sign_key: str | None = None  # cosign private key: sign and attest before tagging
    sign: bool = False  # keyless signing (CI's OIDC identity)
    attest_verification: bool = False  # unsigned verification attestation
    tlog: bool | None = None  # transparency log; None: only for keyless
    require_signature: str | None = None  # verify: cosign public key, or "keyless"
    certificate_identity: str | None = None
    certificate_oidc_issuer: str | None = None
    require_attestation: bool = False
    skip_prebuild: bool = False
    force: bool = False
    #: The config file the options were read from, or "defaults" (for messages).
    source: str = "defaults"
    #: Where each value not left at its default came from: field -> "file PATH",
    #: "environment POLYARCH_X", "command line" or "image entry ...".
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def dockerfile(self) -> Path:
        return Path(self.file) if self.file else Path(self.context) / "Dockerfile"

    def origin(self, name: str) -> str:
        """Where the value of field ``name`` came from ("default" when not set)."""
        return self.sources.get(name, "default")

    def allow_for(self, platform: Platform | str) -> tuple[str, ...]:
        """The verify exceptions (globs) that apply to ``platform``."""
        return allow_for(self.allow, platform)
