"""The frozen options object. One field per entry of the option table that polyarch
reads itself (:mod:`polyarch.config.table`; a unit test keeps the two in step), the
values of the passthrough build options (``engine_options``), and where the values
came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

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
    provenance: bool | str | None = None  # None: the engine's default; str: buildx options
    sbom: bool | str | None = None
    cache: str = "none"
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    no_cache: bool = False
    engine: str = "docker"  # docker | podman | auto
    builder: str | None = None
    docker_context: str | None = None
    nodes: tuple[NodeSpec, ...] = ()  # builder nodes: platform -> machine (polyarch.engines.buildx_nodes)
    insecure_registries: tuple[str, ...] = ()
    docker_config: str | None = None  # verify, inspect: the credentials' directory
    tags: tuple[ImageRef, ...] = ()
    images: tuple[str, ...] = ()  # names whose tags come from tag-specs and git state
    tag_specs: tuple[str, ...] = ()
    flavor: tuple[str, ...] = ()
    tag_labels: tuple[str, ...] = ()  # tags: extra labels, with {{expressions}}
    tag_annotations: tuple[str, ...] = ()  # tags: extra index annotations, likewise
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
    dry_run: bool = False  # print the commands that would run; change nothing
    force: bool = False
    #: The config file the options were read from, or "defaults" (for messages).
    source: str = "defaults"
    #: Where each value not left at its default came from: field -> "file PATH",
    #: "environment POLYARCH_X", "command line" or "image entry ...".
    sources: Mapping[str, str] = field(default_factory=dict)
    #: Build options that only the engine reads (the table names their engine flags and
    #: they have no field here): option name -> value.
    engine_options: Mapping[str, Any] = field(default_factory=dict)

    def value(self, name: str) -> Any:
        """The value of option ``name``, a field or one of ``engine_options``."""
        if name in FIELDS:
            return getattr(self, name)
        from polyarch.config.table import BY_NAME

        return self.engine_options.get(name, BY_NAME[name].default)

    @property
    def dockerfile(self) -> Path:
        return Path(self.file) if self.file else Path(self.context) / "Dockerfile"

    def origin(self, name: str) -> str:
        """Where the value of field ``name`` came from ("default" when not set)."""
        return self.sources.get(name, "default")

    def allow_for(self, platform: Platform | str) -> tuple[str, ...]:
        """The verify exceptions (globs) that apply to ``platform``."""
        return allow_for(self.allow, platform)


#: The names of the fields of :class:`Options`.
FIELDS = frozenset(f.name for f in fields(Options))
