"""Pushing an OCI layout from disk to a repository, by digest only.

:func:`push_layout` sends everything the root (an index or a manifest) references:
first every blob (several at once; those the repository has are skipped after a
``HEAD``, those another repository of the registry has are mounted, the rest uploaded
in resumable chunks from disk), then the child manifests by digest, then the root by
digest (nothing, when the repository holds the root by digest already). It never
writes a tag: tags are moved by whoever calls it, after it returned.

A push that fails half-way leaves blobs (and perhaps child manifests) behind, which
no tag points at; running it again sends only what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from polyarch.errors import RegistryError, UsageError
from polyarch.refs import ImageRef
from polyarch.registry.api import RegistryAPI
from polyarch.registry.layout import OCILayout
from polyarch.registry.media import INDEX_TYPES, NON_DISTRIBUTABLE, Manifest
from polyarch.registry.mounts import mount_sources
from polyarch.registry.upload import DEFAULT_CHUNK, blob_known, upload_blob

#: Existence questions (``HEAD``, no body) asked at once per upload job: an image of
#: two platforms with attestations has about 8 blobs besides its layers.
HEADS_PER_JOB = 2
#: Blobs up to this size (configs, attestations, small layers) are pushed beside the
#: large ones, up to :data:`SMALL_AT_ONCE` at a time, rather than waiting for one of the
#: ``jobs`` upload slots: their cost is round trips, not bandwidth.
SMALL_BLOB = 1 << 20
SMALL_AT_ONCE = 4
#: A blob up to this size that no earlier push to the registry recorded (:mod:`.pushed`:
#: new content, a config, an attestation, a small top layer) is sent without a ``HEAD``
#: first: the question costs a round trip, and the answer is almost always "no". Were
#: the blob there after all, the upload costs no more than this many bytes (docker's
#: own push sends a layer it holds no record of without asking, whatever its size).
NO_HEAD_BELOW = 64 << 10


@dataclass(frozen=True)
class PushResult:
    """What :func:`push_layout` did."""

    #: The root's digest, media type and size: the descriptor to tag later.
    digest: str
    media_type: str
    size: int
    blobs_uploaded: int
    blobs_skipped: int
    blobs_mounted: int
    manifests: int
    bytes_sent: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "media_type": self.media_type, "size": self.size,
                "blobs_uploaded": self.blobs_uploaded, "blobs_skipped": self.blobs_skipped,
                "blobs_mounted": self.blobs_mounted, "manifests": self.manifests,
                "bytes_sent": self.bytes_sent, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class PushEvent:
    """One step of a push, for progress display.

    ``action`` is ``"exists"``, ``"mounted"``, ``"uploaded"`` (a blob is done),
    ``"bytes"`` (``size`` more bytes of ``digest`` accepted) or ``"manifest"``.
    The callback is called from the upload threads: it must be thread-safe.
    """

    action: str
    digest: str
    size: int


def _descs(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = doc.get(key)
    return [d for d in value if isinstance(d, dict)] if isinstance(value, list) else []


def plan_push(layout: OCILayout, root: Manifest) -> tuple[list[Manifest], dict[str, int]]:
    """The manifests (children before parents, root last) and blobs ``root`` needs."""
    manifests: list[Manifest] = []
    blobs: dict[str, int] = {}
    seen: set[str] = set()

    def walk(man: Manifest, depth: int) -> None:
        if man.digest in seen:
            return
        seen.add(man.digest)
        if depth > 4:
            raise UsageError(f"{layout.description}: indexes nested deeper than 4 levels")
        try:
            doc = man.json
        except ValueError as e:
            raise UsageError(f"{layout.description}: manifest {man.digest} is not JSON") from e
        if man.media_type in INDEX_TYPES:
            for d in _descs(doc, "manifests"):
                digest = d.get("digest")
                if not isinstance(digest, str) or not layout.has_blob(digest):
                    raise UsageError(
                        f"{layout.description}: manifest {digest} of index {man.digest}"
                        " is not in the layout",
                        hint="push a complete layout (as buildx writes with --output type=oci)")
                mt = d.get("mediaType")
                walk(Manifest.from_bytes(layout.blob(digest), mt if isinstance(mt, str) else None),
                     depth + 1)
        else:
            config = doc.get("config")
            for d in ([config] if isinstance(config, dict) else []) + _descs(doc, "layers"):
                digest, size = d.get("digest"), d.get("size")
                if d.get("mediaType") in NON_DISTRIBUTABLE or d.get("urls"):
                    continue
                if not isinstance(digest, str) or not isinstance(size, int):
                    raise UsageError(f"{layout.description}: a descriptor of {man.digest}"
                                     " has no digest or size")
                blobs.setdefault(digest, size)
        manifests.append(man)

    walk(root, 0)
    return manifests, blobs


def push_layout(client: RegistryAPI, layout: OCILayout, repo: ImageRef, *,
                root_digest: str | None = None, mount_from: Sequence[str] = (), jobs: int = 4,
                progress: Callable[[PushEvent], None] | None = None,
                chunk_size: int = DEFAULT_CHUNK, bases: Sequence[ImageRef] = (),
                present: Collection[str] = (),
                known_sources: Mapping[str, Sequence[str]] | None = None,
                sources: Mapping[str, Sequence[str]] | None = None,
                before_manifests: Callable[[], None] | None = None,
                expect_new: bool = False) -> PushResult:
    """Push ``layout``'s root (or the manifest ``root_digest``) to ``repo``, by digest.
    A repository that holds the root already (a re-publish of an unchanged image) costs
    one ``HEAD``: a registry accepts a manifest only once what it references is there.

    ``repo``'s tag, if any, is ignored: nothing is tagged. ``mount_from`` names other
    repositories of the same registry to try mounting every blob from; ``bases`` names
    images the build started from: a blob one of them (on the same registry) holds is
    mounted from its repository, as is a blob whose source the layout's annotations or
    provenance name (:mod:`.mounts`). A refused mount falls back to an upload. Blobs in
    ``present`` are in ``repo`` already, or will be once ``before_manifests`` returned
    (the caller sends them, see :func:`push_blobs`): they are neither asked for nor
    counted. ``known_sources``
    (digest -> repositories of the same registry) are where the caller knows a blob
    is, from its own earlier pushes (:mod:`.pushed`); they are tried after the others.
    ``sources`` is all of that worked out already (``bases`` and ``known_sources`` are
    then not read). ``before_manifests`` is called once every blob this push sends is
    there and before the first manifest is written (nothing is written when it raises;
    not called when the repository holds the root): a caller still sending the blobs of
    ``present`` waits there. ``expect_new``: the caller expects the repository not to
    hold the root (a blob of it was never pushed there): no manifest is asked for, every
    one is written (else the root alone is asked for first, so that an unchanged image
    costs one request); the outcome is the same either way.
    Raises
    :class:`~polyarch.errors.RegistryError` (exit 4) when the registry fails beyond
    the retry budget or the deadline.
    """
    t0 = time.monotonic()
    root = layout.manifest(root_digest) if root_digest else layout.root()
    manifests, blobs = plan_push(layout, root)
    for digest, size in blobs.items():
        try:
            have = layout.locate(digest).size
        except RegistryError as e:
            raise UsageError(e.message, hint="push a complete layout") from None
        if have != size:
            raise UsageError(f"{layout.description}: blob {digest} has {have} bytes,"
                             f" its descriptor says {size}")
    target = repo.untagged()
    # Child manifests the repository holds by digest (the platforms of an earlier push
    # of this build; the provenance, with its times, makes each index new): their blobs
    # are there, so only the others' blobs are asked for.
    children = manifests[:-1]
    with ThreadPoolExecutor(max_workers=max(1, jobs) * HEADS_PER_JOB,
                            thread_name_prefix="push") as pool:
        if expect_new:
            # A blob was never pushed here: the repository cannot hold the root (it took
            # no manifest before what it names was there), and hardly the children.
            # Nothing is asked: every manifest is written, which changes nothing for one
            # the repository holds after all (pushed from elsewhere).
            root_held, child_held = False, [False] * len(children)
        else:
            root_held = _holds(client, target, root.digest)
            child_held = [] if root_held else list(pool.map(
                lambda m: _holds(client, target, m.digest), children))
        if root_held:
            # The registry holds the root by digest, so it holds what the root references
            # (it accepted each manifest only once what it names was there): nothing to do.
            return PushResult(digest=root.digest, media_type=root.media_type,
                              size=len(root.data), blobs_uploaded=0,
                              blobs_skipped=len({d for d in blobs if d not in present}),
                              blobs_mounted=0, manifests=0, bytes_sent=0,
                              seconds=time.monotonic() - t0)
        held = {m.digest for m, ok in zip(children, child_held, strict=True) if ok}
        needed: set[str] = set()
        for man in manifests:
            if man.digest not in held and not man.is_index:
                needed |= _blob_digests(man.json)
        todo = {d: n for d, n in blobs.items() if d in needed and d not in present}
        # Which of them the repository has (HEAD, several at once); only what is missing
        # needs its mount sources worked out (reading the base images is a few requests).
        order = sorted(todo)
        there = dict(zip(order, pool.map(lambda d: blob_known(client, target, d), order),
                         strict=True))
    missing = {d: n for d, n in todo.items() if not there[d]}
    counts = {"exists": 0, "mounted": 0, "uploaded": 0}
    sent = 0
    if missing:
        if sources is None:
            try:
                found = mount_sources(client, layout, root, target, bases)
            except (RegistryError, ValueError):  # knowing less only means uploading more
                found = {}
            sources = merge_sources(found, known_sources or {}, exclude=target.repository)
        counts, sent = push_blobs(client, layout, target, missing, sources=sources,
                                  mount_from=mount_from, jobs=jobs, progress=progress,
                                  chunk_size=chunk_size, check_exists=False)
    for d in blobs:
        if d not in present and d not in missing:
            counts["exists"] += 1
            if progress is not None:
                progress(PushEvent("exists", d, blobs[d]))
    if before_manifests is not None:
        before_manifests()
    pending = [m for m in manifests if m.digest not in held]
    # Image manifests that name no other manifest (no subject) need only their blobs,
    # which are all there now: they go several at once. The others (indexes, referrers)
    # follow in order, children before parents, the root last.
    free = {m.digest for m in pending[:-1] if not m.is_index and "subject" not in m.json}

    def put(man: Manifest) -> Manifest:
        client.put_manifest(target.with_digest(man.digest), man.data, man.media_type)
        return man

    def announce(man: Manifest) -> None:
        if progress is not None:
            progress(PushEvent("manifest", man.digest, len(man.data)))

    if free:
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="push") as pool:
            for man in pool.map(put, [m for m in pending if m.digest in free]):
                announce(man)
    for man in pending:
        if man.digest not in free:
            announce(put(man))
    return PushResult(digest=root.digest, media_type=root.media_type, size=len(root.data),
                      blobs_uploaded=counts["uploaded"], blobs_skipped=counts["exists"],
                      blobs_mounted=counts["mounted"], manifests=len(manifests) - len(held),
                      bytes_sent=sent, seconds=time.monotonic() - t0)


def _blob_digests(doc: dict[str, Any]) -> set[str]:
    """The config and layers an image manifest references (as :func:`plan_push` counts
    them)."""
    config = doc.get("config")
    out = set()
    for d in ([config] if isinstance(config, dict) else []) + _descs(doc, "layers"):
        if d.get("mediaType") in NON_DISTRIBUTABLE or d.get("urls"):
            continue
        if isinstance(d.get("digest"), str):
            out.add(d["digest"])
    return out


def _holds(client: RegistryAPI, repo: ImageRef, digest: str) -> bool:
    """Whether ``repo`` holds the manifest ``digest`` (a failed answer: not known)."""
    try:
        return client.head_manifest(repo.with_digest(digest)) == digest
    except RegistryError:
        return False


def push_blobs(client: RegistryAPI, layout: OCILayout, target: ImageRef,
               blobs: Mapping[str, int], *, sources: Mapping[str, Sequence[str]] | None = None,
               mount_from: Sequence[str] = (), jobs: int = 4,
               progress: Callable[[PushEvent], None] | None = None,
               chunk_size: int = DEFAULT_CHUNK,
               check_exists: bool = True,
               unseen: Collection[str] = ()) -> tuple[dict[str, int], int]:
    """Make every blob of ``blobs`` (digest -> size) exist in ``target``: found, mounted
    (from ``sources[digest]``, then ``mount_from``) or uploaded, several at once:
    ``jobs`` of those over :data:`SMALL_BLOB`, largest first, and beside them up to
    :data:`SMALL_AT_ONCE` small ones (``jobs=1``: one blob at a time, whatever its
    size). Returns how many were each (``exists``,
    ``mounted``, ``uploaded``) and the bytes sent. The first failure ends it, once the
    uploads in flight are done. ``check_exists=False``: the caller knows they are
    missing (no ``HEAD`` first). ``unseen``: digests no earlier push to this registry
    recorded; those of at most :data:`NO_HEAD_BELOW` bytes are sent without a ``HEAD``
    (a mount from ``sources`` is still tried first)."""
    srcs = sources or {}
    counts = {"exists": 0, "mounted": 0, "uploaded": 0}
    sent = 0

    def emit(event: PushEvent) -> None:
        if progress is not None:
            progress(event)

    def one(digest: str) -> tuple[str, int]:
        def on_bytes(n: int) -> None:
            emit(PushEvent("bytes", digest, n))

        out = upload_blob(client, target, digest, layout.locate(digest),
                          mount_from=[*srcs.get(digest, ()), *mount_from],
                          chunk_size=chunk_size, on_bytes=on_bytes,
                          check_exists=check_exists and not (
                              digest in unseen and blobs[digest] <= NO_HEAD_BELOW))
        emit(PushEvent(out.action, digest, blobs[digest]))
        return out.action, out.sent

    # Largest first: the long uploads start at once; the small ones go beside them.
    order = sorted(blobs, key=lambda d: -blobs[d])
    if not order:
        return counts, 0
    beside = jobs > 1
    large = [d for d in order if blobs[d] > SMALL_BLOB or not beside]
    small = [d for d in order if blobs[d] <= SMALL_BLOB and beside]
    pools = [(ThreadPoolExecutor(max_workers=n, thread_name_prefix="push"), part)
             for n, part in ((max(1, jobs), large), (min(len(small), SMALL_AT_ONCE), small))
             if part]
    try:
        futures = [pool.submit(one, d) for pool, part in pools for d in part]
        wait(futures, return_when=FIRST_EXCEPTION)
        for f in futures:
            f.cancel()  # the first failure ends the push; running uploads finish
        for f in futures:
            if not f.cancelled() and f.exception() is not None:
                raise f.exception()  # type: ignore[misc]
        for f in futures:
            action, n = f.result()
            counts[action] += 1
            sent += n
    except BaseException as e:
        # A failure waits for the uploads in flight (bounded by their deadlines), so the
        # registry's state is settled when the error is reported; an interruption
        # (Ctrl-C, SIGTERM) does not wait.
        for pool, _ in pools:
            pool.shutdown(wait=isinstance(e, Exception), cancel_futures=True)
        raise
    for pool, _ in pools:
        pool.shutdown(wait=True)
    return counts, sent


def merge_sources(*maps: Mapping[str, Sequence[str]], exclude: str) -> dict[str, list[str]]:
    """digest -> repositories to mount from, in the order the maps give them, each once,
    without ``exclude`` (the target itself)."""
    out: dict[str, list[str]] = {}
    for m in maps:
        for d, repos in m.items():
            have = out.setdefault(d, [])
            have += [r for r in repos if r != exclude and r not in have]
    return out
