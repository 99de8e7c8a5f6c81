"""publish / build / merge as steps. Orchestration only: no argument parsing, no
printing except through the reporter, no exit codes.

The publish flow (staged):

1. preflight: stop before building when anything is missing;
2. build every platform and push the index to the first target repository by digest
   only (builders that can), or under a unique staging tag (``polyarch-staging-<id>``;
   the docker driver cannot push by digest), never to a final tag;
3. verify the staged index (by digest, so nothing can swap it underneath);
4. promote: copy the index to every other target repository (blobs mounted where the
   registry allows), then put the very same index manifest (same digest) under every
   final tag;
5. delete the staging tag where the registry supports deleting tags.

A failed build, push or verification leaves every final tag where it was.
"""

from __future__ import annotations

import os
import secrets
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyarch import redact
from polyarch.config import Options
from polyarch.engines import BuildRequest, BuildResult, Engine, select_engine
from polyarch.engines.buildx import Buildx
from polyarch.errors import RegistryError, VerificationError
from polyarch.output import BuildProgress, Reporter
from polyarch.platforms import Platform
from polyarch.preflight import Plan, registry_push_check, run_preflight
from polyarch.refs import ImageRef

if TYPE_CHECKING:
    from polyarch.checks.verify import VerifyReport
    from polyarch.registry import Manifest, RegistryClient

SCHEMA_VERSION = 1
STAGING_PREFIX = "polyarch-staging-"


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
    verify_seconds: float = 0.0
    promote_seconds: float = 0.0
    staging: str | None = None
    staging_deleted: bool | None = None
    verification: dict[str, Any] | None = None
    promoted: bool = False
    dry_run: bool = False
    commands: list[list[str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "dry_run": self.dry_run,
            "index": {"digest": self.index_digest, "mediaType": self.media_type},
            "tags": self.tags,
            "promoted": self.promoted,
            "platforms": [
                {"platform": p.platform, "digest": p.digest, "mode": p.mode, "size": p.size}
                for p in self.platforms
            ],
            "staging": {"reference": self.staging, "deleted": self.staging_deleted},
            "timings": {
                "build_seconds": round(self.build_seconds, 3),
                "verify_seconds": round(self.verify_seconds, 3),
                "promote_seconds": round(self.promote_seconds, 3),
            },
            "verification": self.verification,
            "commands": [shlex.join(redact.argv(c)) for c in self.commands],
        }


class PublishFailed(VerificationError):
    """Verification of the staged index failed; carries the result for --json."""

    def __init__(self, message: str, result: PublishResult, detail: str | None) -> None:
        super().__init__(message, detail=detail)
        self.result = result
        self.image_name: str | None = None  # set for an image of a project


def staging_ref(target: ImageRef) -> ImageRef:
    """A unique tag in the first target repository for this run."""
    run_id = f"{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"
    return target.untagged().with_tag(STAGING_PREFIX + run_id)


CACHE_TAG = "buildcache"


def cache_refs(opts: Options, repo: ImageRef) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """--cache-from and --cache-to values for ``cache = "registry"``.

    The cache lives in the target repository under one tag per set of platforms built
    together (``buildcache-linux-amd64``, ``buildcache-linux-amd64-linux-arm64``), so a
    build of one platform never evicts the cache of another or of the full set. Every
    build reads its own set's cache and each of its single platforms' caches.
    """
    if opts.cache != "registry":
        return (), ()

    def ref(plats: Sequence[object]) -> str:
        slug = "-".join(str(p).replace("/", "-") for p in plats)
        return str(repo.untagged().with_tag(f"{CACHE_TAG}-{slug}"[:128]))

    own = ref(opts.platforms)
    sources = [own] + ([ref([p]) for p in opts.platforms] if len(opts.platforms) > 1 else [])
    cache_from = tuple(f"type=registry,ref={r}" for r in sources)
    cache_to = (f"type=registry,ref={own},mode=max,ignore-error=true",)
    return cache_from, cache_to


def build_request(opts: Options, push_to: tuple[ImageRef, ...]) -> BuildRequest:
    cache_from, cache_to = cache_refs(opts, push_to[0]) if push_to else ((), ())
    if opts.cache == "inline":
        # The cache travels inside the image: read it from the tags users pull.
        cache_to = ("type=inline",)
        cache_from = tuple(f"type=registry,ref={t}" for t in opts.tags)
    return BuildRequest(
        cache_from=() if opts.no_cache else cache_from,
        cache_to=cache_to,
        context=Path(opts.context),
        dockerfile=opts.dockerfile,
        platforms=opts.platforms,
        push_to=push_to,
        build_args=dict(opts.build_args),
        build_contexts=dict(opts.build_contexts),
        labels=dict(opts.labels),
        target=opts.target,
        secrets=opts.secrets,
        provenance=opts.provenance,
        sbom=opts.sbom,
        no_cache=opts.no_cache,
        pull=opts.pull,
    )


def registry_client(opts: Options) -> RegistryClient:
    from polyarch.registry import RegistryClient

    return RegistryClient(insecure_registries=opts.insecure_registries)


def _preflight(opts: Options, bx: Engine, rep: Reporter, dry_run: bool) -> Plan:
    with rep.group("preflight"):
        plan = run_preflight(opts, build_engine=bx, need_push=True, allow_create=not dry_run,
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
    return plan


_TRANSIENT = ("500 internal server error", " 502 ", " 503 ", " 504 ", "429 too many requests",
              "service unavailable", "bad gateway", "connection reset by peer",
              "unexpected eof")


def build_with_retries(bx: Engine, req: BuildRequest, prog: BuildProgress, rep: Reporter,
                       *, attempts: int = 3, backoff: float = 2.0) -> BuildResult:
    """Build and push; a push that fails on a transient registry error (5xx, 429, a reset
    connection) is tried again, bounded. The rebuild comes from the build cache and the
    registry skips blobs it already has, so a retry costs little."""
    for attempt in range(1, attempts + 1):
        try:
            return bx.build(req, on_step=prog)
        except RegistryError as e:
            text = f" {e.message} {e.detail or ''} ".lower()
            if attempt == attempts or not any(t in text for t in _TRANSIENT):
                raise
            wait = backoff * 2 ** (attempt - 1)
            rep.warn(f"push failed on a transient registry error, retrying in {wait:.0f} s"
                     f" ({attempt}/{attempts - 1}): {e.message}")
            time.sleep(wait)
    raise AssertionError("unreachable")


def apply_git_tags(opts: Options, rep: Reporter, *, lookup_existing: bool = True,
                   cwd: Path | None = None) -> tuple[Options, dict[str, str]]:
    """Add the tags and OCI labels computed from git state for ``opts.images``.

    Returns the new options and the index annotations. With ``latest=auto`` the tags
    already in the registry are read, so that ``latest`` only moves forward.
    """
    if not opts.images:
        return opts, {}
    from polyarch.gitinfo import GitContext
    from polyarch.tags import compute, parse_image_names

    names = parse_image_names(opts.images)
    env = dict(os.environ)
    ctx = GitContext.detect(cwd or Path.cwd(), env)
    existing: list[str] | None = None
    if lookup_existing:
        try:
            with registry_client(opts) as client:
                existing = client.list_tags(names[0])
        except RegistryError as e:
            rep.warn(f"cannot list the tags of {names[0]} ({e.message}); 'latest' follows"
                     " metadata-action's rule")
    epoch = env.get("SOURCE_DATE_EPOCH")
    now = datetime.fromtimestamp(int(epoch), UTC) if epoch and epoch.isdigit() else None
    plan = compute(opts.tag_specs, opts.flavor, ctx, existing_tags=existing, meta=opts.meta,
                   now=now)
    for w in plan.warnings:
        rep.warn(w)
    if not plan.tags:
        rep.warn(f"the tag rules give no tag for this git state ({ctx.event} {ctx.ref_name})")
    tags = list(opts.tags)
    for n in names:
        tags.extend(n.with_tag(t) for t in plan.tags if n.with_tag(t) not in tags)
    labels = {**plan.labels, **opts.labels}  # labels given by hand win
    return replace(opts, tags=tuple(tags), labels=labels), dict(plan.annotations)


@dataclass
class Prepared:
    """A build ready to run: the engine, what preflight decided, where it stages."""

    engine: Engine
    plan: Plan
    staging: ImageRef
    request: BuildRequest

    def commands(self, rep: Reporter) -> list[list[str]]:
        """Print and return the commands the build would run (for --dry-run)."""
        cmds: list[list[str]] = list(self.plan.node_commands)
        if self.plan.create_builder:
            cmds.append(self.plan.create_builder)
        cmds.extend(self.engine.build_commands(self.request, Path("<tmp>/metadata.json")))
        for c in cmds:
            rep.info(shlex.join(redact.argv(c)))
        return cmds


def prepare(opts: Options, rep: Reporter, *, annotations: dict[str, str], dry_run: bool,
            target: ImageRef | None = None) -> Prepared:
    """Preflight, then the build request that pushes to a fresh staging tag in the
    repository of ``target`` (default: the first tag; preflight insists there is one)."""
    bx = select_engine(opts)
    plan = _preflight(opts, bx, rep, dry_run)
    if isinstance(bx, Buildx):
        bx.builder = plan.builder_arg
    # Builders other than the docker driver push by digest: nothing is tagged until
    # promotion. The docker driver cannot, so it stages under a unique tag.
    by_digest = (isinstance(bx, Buildx) and plan.builder is not None
                 and plan.builder.driver not in ("docker", ""))
    base = target or opts.tags[0]
    staging = base.untagged() if by_digest else staging_ref(base)
    req = replace(build_request(opts, (staging,)), annotations=annotations,
                  push_by_digest=by_digest)
    return Prepared(bx, plan, staging, req)


def publish(opts: Options, rep: Reporter, *, dry_run: bool = False) -> PublishResult:
    opts, annotations = apply_git_tags(opts, rep, lookup_existing=not dry_run)
    prep = prepare(opts, rep, annotations=annotations, dry_run=dry_run)
    bx, plan, staging, req = prep.engine, prep.plan, prep.staging, prep.request
    tags = [str(t) for t in opts.tags]

    if dry_run:
        cmds = prep.commands(rep)
        staged_as = (f"{staging}" if staging.tag else f"{staging}@<digest>")
        rep.info(f"# then: verify {staged_as}, promote it to {', '.join(tags)}"
                 + (", delete the staging tag" if staging.tag else ""))
        return PublishResult("", "", tags, staging=str(staging), dry_run=True, commands=cmds)

    with rep.group(f"build {', '.join(str(p) for p in opts.platforms)}"), BuildProgress(rep) as prog:
        built = build_with_retries(bx, req, prog, rep)
    staged = staging.with_digest(built.digest)
    result = PublishResult(built.digest, built.media_type, tags, build_seconds=built.seconds,
                           staging=str(staging))
    with registry_client(opts) as client:
        index = client.get_manifest(staged)
        result.platforms = index_platforms(index, plan)
        verify_and_promote(client, staged, index, staging, opts.platforms, opts, result, rep,
                           engine=bx)
    return result


def verify_and_promote(client: RegistryClient, staged: ImageRef, index: Manifest,
                       staging: ImageRef, expected: Sequence[Platform], opts: Options,
                       result: PublishResult, rep: Reporter,
                       engine: Engine | None = None) -> None:
    """Verify the staged index (unless --no-verify), then move every final tag to it and
    drop the staging tag. Verification failing raises :class:`PublishFailed`, no tag
    moved."""
    from polyarch.checks.smoke import docker_run_argv
    from polyarch.checks.verify import verify

    if opts.verify:
        with rep.group(f"verify {staged}"):
            t0 = time.monotonic()
            report = verify(staged, expected, allow=opts.allow, smoke=opts.smoke,
                            client=client, progress=rep.info,
                            run_argv=engine.run_argv if engine is not None else docker_run_argv)
            result.verify_seconds = time.monotonic() - t0
            result.verification = report.to_json()
        if not report.ok:
            result.staging_deleted = _drop_staging(client, staging, rep)
            raise PublishFailed(f"{report.summary()}; no tag was moved", result,
                                detail=findings_text(report))
        rep.info(report.summary())
    else:
        rep.warn("verification skipped (--no-verify): the tags will move to an index"
                 " nobody checked")
    n = len(opts.tags)
    with rep.group(f"promote to {n} tag{'s' if n != 1 else ''}"):
        t0 = time.monotonic()
        promote(client, staged, index, opts.tags)
        result.promote_seconds = time.monotonic() - t0
        result.promoted = True
    result.staging_deleted = _drop_staging(client, staging, rep)


def findings_text(report: VerifyReport, limit: int = 20) -> str:
    errs = report.errors()
    lines = []
    for plat, f in errs[:limit]:
        where = f" {f.path}" if f.path else ""
        layer = f" (layer {f.layer[7:19]})" if f.layer else ""
        lines.append(f"  {plat or 'image'}: {f.check}:{where} {f.message}{layer}")
    if len(errs) > limit:
        lines.append(f"  ... and {len(errs) - limit} more (see --json)")
    return "\n".join(lines)


def promote(client: RegistryClient, staged: ImageRef, index: Manifest,
            targets: Sequence[ImageRef]) -> None:
    """Point every target tag at the staged index (same bytes, same digest).

    Everything the tags need is copied into each target repository first; only then are
    the tags written, so a failure part-way leaves no tag pointing at a partial image.
    """
    assert staged.digest is not None
    repos: dict[str, ImageRef] = {}
    for t in targets:
        repos.setdefault(t.name, t.untagged())
    for name, repo in repos.items():
        if name == staged.name:
            continue
        copied = client.copy_image(staged, repo)
        if copied != staged.digest:
            raise RegistryError(f"copying {staged} to {name} produced {copied}, not"
                                f" {staged.digest}")
    # Where each tag points now, to put it back if a later tag cannot be moved.
    before = {str(t): client.head_manifest(t) for t in targets}
    # A PUT that failed may still have been stored (the answer was lost): every tag
    # tried counts, and the rollback looks at where each one points now.
    attempted: list[ImageRef] = []
    try:
        for t in targets:
            attempted.append(t)
            client.put_manifest(t, index.data, index.media_type)
    except RegistryError as e:
        undone = _roll_back(client, attempted, before)
        e.message += f" ({undone})" if undone else ""
        raise


def _roll_back(client: RegistryClient, attempted: list[ImageRef],
               before: dict[str, str | None]) -> str:
    """Best effort: point tags moved by a failed promotion back where they were."""
    restored: list[str] = []
    stuck: list[str] = []
    for t in attempted:
        old = before.get(str(t))
        try:
            if client.head_manifest(t) == old:
                continue  # never moved
            if old is None:
                ok = client.delete_manifest(t)
            else:
                m = client.get_manifest(t.untagged().with_digest(old))
                client.put_manifest(t, m.data, m.media_type)
                ok = True
        except RegistryError:
            ok = False
        (restored if ok else stuck).append(str(t))
    if not restored and not stuck:
        return "no tag was moved"
    parts = []
    if restored:
        parts.append(f"moved back: {', '.join(restored)}")
    if stuck:
        parts.append(f"could not move back: {', '.join(stuck)}")
    return "; ".join(parts)


def _drop_staging(client: RegistryClient, staging: ImageRef, rep: Reporter) -> bool | None:
    if staging.tag is None:
        return None  # pushed by digest: no staging tag to drop
    try:
        deleted = client.delete_manifest(staging)
    except RegistryError as e:
        rep.warn(f"could not delete the staging tag {staging}: {e.message}")
        return False
    if not deleted:
        rep.info(f"note: {staging.registry} does not support deleting tags; the staging tag"
                 f" {staging.tag} stays (remove it with the registry's own tools)")
    return deleted


def index_platforms(index: Manifest, plan: Plan | None) -> list[PlatformResult]:
    from polyarch.registry.media import is_attestation

    out = []
    entries = index.json.get("manifests") if index.is_index else None
    for m in entries or []:
        if is_attestation(m):
            continue
        p = m.get("platform") or {}
        name = "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
        mode = plan.platform_modes.get(name, "?") if plan else "?"
        out.append(PlatformResult(name, str(m.get("digest", "")), mode, int(m.get("size", 0))))
    return out
