"""``polyarch merge``: join per-platform images built elsewhere into one index, verify it,
and promote the tags the way ``publish`` does.

Sources are build descriptors (``polyarch build --push``) or image references (tags or
digests; single-platform manifests or indexes). The flow:

1. resolve every source to a manifest pinned by digest, and list its platforms (a
   single manifest's platform comes from its image config) and its attestation
   manifests (buildx provenance and SBOM, tied to their platform by the
   ``vnd.docker.reference.digest`` annotation);
2. refuse a platform given by two sources and, against the expected platforms, a
   missing or an unexpected one, before anything is written;
3. copy what lives in other repositories into the target repository (blobs mounted
   where the registry allows), so the index refers only to its own repository;
4. verify the index (coverage, labels, and every layer of every part, read from the
   registry, where the parts already are by digest), push it by digest, then move every
   tag to it (rollback on failure). No staging tag exists.

Manifests are never rewritten: the index refers to the very manifests that were built,
so their digests, and the attestations' references to them, stay valid.

Steps 1 and 2 and the index are the plan (:mod:`polyarch.pipeline.merge_plan`).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from polyarch.errors import RegistryError, UsageError
from polyarch.pipeline.build import PlatformBuilt
from polyarch.pipeline.merge_plan import Entry, MergePlan, plan_merge
from polyarch.pipeline.result import ImageResult, require_ok
from polyarch.pipeline.tag import tag
from polyarch.pipeline.verify import Verified, platform_lines, smoke_in_registry
from polyarch.platforms import Platform
from polyarch.refs import ImageRef
from polyarch.registry import Manifest, RegistryClient
from polyarch.session import Session


def copy_into(client: RegistryClient, entries: Sequence[Entry], target: ImageRef) -> int:
    """Copy every manifest (and its blobs) from another repository into ``target``'s.

    Returns the number of manifests copied.
    """
    jobs: list[tuple[ImageRef, str]] = []
    for e in entries:
        if e.source.ref.name == target.name:
            continue
        for d in [e.desc, *e.attestations]:
            jobs.append((e.source.ref, str(d["digest"])))
    if not jobs:
        return 0

    def one(job: tuple[ImageRef, str]) -> None:
        src, digest = job
        got = client.copy_image(src.untagged().with_digest(digest), target.untagged())
        if got != digest:
            raise RegistryError(f"copying {src.name}@{digest} to {target.name} produced {got}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, jobs))
    return len(jobs)


@dataclass(frozen=True)
class MergeResult:
    result: ImageResult
    plan: MergePlan
    merge_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """publish's document, plus the sources, the expected platforms and the merge time."""
        doc = self.result.to_json()
        doc["timings"]["merge_seconds"] = round(self.merge_seconds, 3)
        doc["expected_platforms"] = [str(p) for p in self.plan.expected]
        doc["sources"] = [s.to_json() for s in self.plan.sources]
        return doc


class _MergedSource:
    """The index made here, with everything it refers to read from the target repository."""

    def __init__(self, client: RegistryClient, repo: ImageRef, index: Manifest) -> None:
        from polyarch.registry.source import RegistrySource

        self._inner = RegistrySource(client, repo.untagged().with_digest(index.digest))
        self._index = index
        self.description = f"{repo.name}@{index.digest} (merged here, not yet pushed)"
        self.ref: ImageRef | None = None

    def root(self) -> Manifest:
        return self._index

    def manifest(self, digest: str) -> Manifest:
        return self._inner.manifest(digest)

    def blob(self, digest: str) -> bytes:
        return self._inner.blob(digest)

    def iter_blob(self, digest: str) -> Any:
        return self._inner.iter_blob(digest)


def merge(s: Session, sources: Sequence[str], *, expected: Sequence[Platform]) -> MergeResult:
    """Merge, verify, push the index by digest, then move the tags."""
    from polyarch.checks.verify import verify_source
    from polyarch.pipeline.gittags import apply_git_tags

    opts, git_annotations = apply_git_tags(s, lookup_existing=not s.dry_run)
    s = s.with_options(opts)
    if not opts.tags:
        raise UsageError("no tag given", hint="pass -t/--tag REGISTRY/REPO:TAG or set 'tags'"
                                              " in the config")
    if not sources:
        raise UsageError("no source given", hint="pass build descriptors or image references")
    tags = tuple(str(t) for t in opts.tags)
    target = opts.tags[0]
    rep, client = s.rep, s.client
    t0 = time.monotonic()
    from polyarch.pipeline.sign import signer as signer_of

    signer = signer_of(s)
    with rep.group(f"merge {len(sources)} source{'s' if len(sources) != 1 else ''}"):
        plan = plan_merge(client, sources, expected, rep, git_annotations)
        for e in plan.entries:
            rep.info(f"{e.platform}: {e.source.ref.name}@{e.digest}"
                     + (f" (+{len(e.attestations)} attestation"
                        f"{'s' if len(e.attestations) != 1 else ''})"
                        if e.attestations else ""))
    plats = tuple(PlatformBuilt(str(e.platform), e.digest, e.mode, int(e.desc.get("size", 0)))
                  for e in plan.entries)
    if s.dry_run:
        rep.info(f"# would copy the parts into {target.name}, verify the index"
                 f" {plan.index.digest}, push it by digest, then tag {', '.join(tags)}")
        return MergeResult(ImageResult(plan.index.digest, plan.index.media_type, tags, plats,
                                       dry_run=True), plan)
    copied = copy_into(client, plan.entries, target)
    if copied:
        rep.info(f"copied {copied} manifest{'s' if copied != 1 else ''} into {target.name}")
    merge_seconds = time.monotonic() - t0
    verified = Verified(None, 0.0)
    if opts.verify:
        with rep.group(f"verify {plan.index.digest[:19]}"):
            v0 = time.monotonic()
            report = verify_source(_MergedSource(client, target, plan.index), plan.expected,
                                   allow=opts.allow, cache=s.layer_cache, progress=rep.info)
            if opts.smoke is not None:  # the parts are pulled by digest from the target
                smoke_in_registry(s, report, target.name)
            verified = Verified(report, time.monotonic() - v0)
        partial = ImageResult(plan.index.digest, plan.index.media_type, tags, plats,
                              verified=verified)
        require_ok(verified, partial, consequence="no tag was moved")
        rep.info(report.summary())
        see = f"polyarch verify --json {shlex.quote(str(opts.tags[0]))} shows them" \
            if opts.tags else "this command with --json lists every finding"
        for line in platform_lines(report, see):
            rep.info(line)
    else:
        rep.warn("verification skipped (--no-verify): the tags will move to an index nobody"
                 " checked")
    for repo in {t.name: t.untagged() for t in opts.tags}.values():
        if repo.name != target.name:
            client.copy_image(target.untagged().with_digest(plan.index.digest), repo)
        else:
            client.put_manifest(repo.with_digest(plan.index.digest), plan.index.data,
                                plan.index.media_type)
    signed = None
    if signer is not None or opts.attest_verification:
        from polyarch.pipeline.sign import sign

        signed = sign(s, signer, plan.index.digest, plan.index.media_type,
                      len(plan.index.data), opts.tags, verified)
    tagged = tag(s, plan.index.data, plan.index.media_type, opts.tags)
    result = ImageResult(plan.index.digest, plan.index.media_type, tags, plats,
                         verified=verified, tagged=tagged, signed=signed)
    return MergeResult(result, plan, merge_seconds)
