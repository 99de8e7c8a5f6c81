"""publish / build / verify as steps. Orchestration only: no argument parsing, no
printing except through the reporter, no exit codes."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyarch import proc
from polyarch.config import Options
from polyarch.engines import BuildRequest, BuildResult
from polyarch.engines.buildx import Buildx
from polyarch.errors import FatalError, RegistryError
from polyarch.output import BuildProgress, Reporter
from polyarch.preflight import Plan, registry_push_check, run_preflight

SCHEMA_VERSION = 1


@dataclass
class PlatformResult:
    platform: str
    digest: str
    mode: str  # native | emulated
    size: int = 0


@dataclass
class PublishResult:
    index_digest: str
    media_type: str
    tags: list[str]
    platforms: list[PlatformResult] = field(default_factory=list)
    build_seconds: float = 0.0
    verification: dict[str, Any] | None = None
    dry_run: bool = False
    commands: list[list[str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "dry_run": self.dry_run,
            "index": {"digest": self.index_digest, "mediaType": self.media_type},
            "tags": self.tags,
            "platforms": [
                {"platform": p.platform, "digest": p.digest, "mode": p.mode, "size": p.size}
                for p in self.platforms
            ],
            "build_seconds": round(self.build_seconds, 3),
            "verification": self.verification,
            "commands": [shlex.join(c) for c in self.commands],
        }


def build_request(opts: Options) -> BuildRequest:
    return BuildRequest(
        context=Path(opts.context),
        dockerfile=opts.dockerfile,
        platforms=opts.platforms,
        push_to=opts.tags,
        build_args=dict(opts.build_args),
        labels=dict(opts.labels),
        target=opts.target,
        secrets=opts.secrets,
        provenance=opts.provenance,
        sbom=opts.sbom,
        no_cache=opts.no_cache,
        pull=opts.pull,
    )


def publish(opts: Options, rep: Reporter, *, dry_run: bool = False) -> PublishResult:
    bx = Buildx(docker_context=opts.docker_context, builder=opts.builder)
    with rep.group("preflight"):
        plan = run_preflight(opts, buildx=bx, need_push=True, allow_create=not dry_run,
                             registry_check=None if dry_run else registry_push_check)
        for c in plan.checks:
            # Blocking failures are raised below and printed once, by the CLI.
            if not c.ok and (c.error is None or dry_run):
                rep.warn(f"{c.name}: {c.detail}" + (f" ({c.remedy})" if c.remedy else ""))
    if dry_run:
        # Input errors are errors even in a dry run; a missing engine is not.
        bad = plan.first_failure()
        if bad is not None and bad.error is not None and bad.error.exit_code == 2:
            plan.raise_for_failure()
    else:
        plan.raise_for_failure()
    bx.builder = plan.builder_arg
    req = build_request(opts)

    if dry_run:
        cmds: list[list[str]] = []
        if plan.create_builder:
            cmds.append(plan.create_builder)
        cmds.extend(bx.build_commands(req, Path("<tmp>/metadata.json")))
        for c in cmds:
            rep.info(shlex.join(c))
        return PublishResult("", "", [str(t) for t in opts.tags], dry_run=True, commands=cmds)

    with rep.group(f"build {', '.join(str(p) for p in opts.platforms)}"), BuildProgress(rep) as prog:
        result = bx.build(req, on_step=prog)
    platforms = index_platforms(bx, opts, result, plan)
    return PublishResult(
        index_digest=result.digest,
        media_type=result.media_type,
        tags=[str(t) for t in opts.tags],
        platforms=platforms,
        build_seconds=result.seconds,
    )


def index_platforms(bx: Buildx, opts: Options, result: BuildResult, plan: Plan) -> list[PlatformResult]:
    """Per-platform digests of the pushed index, read back from the registry."""
    ref = f"{opts.tags[0].untagged()}@{result.digest}"
    r = proc.run(bx.buildx("imagetools", "inspect", "--raw", ref), check=False, echo=False,
                 timeout=120)
    if not r.ok:
        raise RegistryError(f"cannot read back {ref}: {r.stderr.strip()}")
    try:
        index = json.loads(r.stdout)
    except ValueError as e:
        raise FatalError(f"registry returned no JSON for {ref}") from e
    out = []
    for m in index.get("manifests", []):
        p = m.get("platform") or {}
        if (m.get("annotations") or {}).get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        name = "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
        out.append(PlatformResult(name, m.get("digest", ""), plan.platform_modes.get(name, "?"),
                                  int(m.get("size", 0))))
    return out
