"""Verification and push side by side: a platform's blobs leave while the others are
still being verified.

The rule stays "nothing unverified leaves the machine", applied blob by blob:

* every platform of the index is verified on its own (its manifest, config, layers and
  attestations, against the index entry that names it), all of them at once when
  there are layers to read (:data:`SIDE_BY_SIDE_FROM`), else one after the other;
* a layer blob is pushed early (by digest, to every target repository) once EVERY
  platform of the index that references it passed: a layer a failing platform shares
  with a passing one stays on the machine;
* the configs, and what the attestation manifests attached to the platforms reference
  (each platform's own verification judges those), leave once every platform passed,
  with the last platform's layers, while the whole index is judged (so a failing
  platform leaves no config); what an attestation manifest attached to no platform of
  the index references waits for the whole index;
* once a platform failed, nothing more is pushed early; the batches of two platforms
  that passed one after the other go side by side (:data:`BATCHES_AT_ONCE`);
* manifests, the index and the tags wait for the verification of the whole index
  (:func:`polyarch.pipeline.verify.verify_layout`, which finds every layer in the layer
  cache by then) exactly as without the overlap; the push step then asks for what the
  repository holds and sends what is left while the last early blobs may still be on
  their way, and writes the first manifest only once those are stored.

So a failed verification leaves nothing of the failing platform in any registry: at
most layers of platforms that passed, untagged and unreferenced by any manifest there;
and when every platform passed on its own but the whole index failed (its annotations,
an attestation attached to no platform), the platforms' configs and attestations too:
all of it verified, none of it named by a manifest or a tag.

The overlap is used for an index that names each expected platform exactly once (two
or more, image manifests each: a duplicate, missing or unexpected platform shows only
in the whole index), with the layer cache writable and no smoke command (a platform is
verified only once its smoke run passed, and the smoke step runs all platforms together
after the scan); otherwise verification and push run one after the other.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from polyarch import interrupt
from polyarch.errors import FatalError
from polyarch.pipeline.views import platform_views
from polyarch.platforms import Platform
from polyarch.refs import ImageRef
from polyarch.registry.layout import OCILayout
from polyarch.registry.media import ATTESTATION_FOR, INDEX_TYPES, Manifest, is_attestation
from polyarch.session import Session

if TYPE_CHECKING:
    from polyarch.checks.deep import Judged
    from polyarch.registry.push import PushEvent

#: What an interruption leaves once blobs began to leave early.
PHASE = ("verifying; blobs of platforms that passed are being pushed by digest: no"
         " manifest and no tag was written")
#: Compressed bytes of platform layers to read (not in the layer cache) from which the
#: platforms are verified side by side (worker processes read them) rather than in turn.
SIDE_BY_SIDE_FROM = 8 << 20
#: Batches of the early push under way at once: the second platform to pass sends its
#: blobs while the first one's may still be on their way (each batch sends up to
#: :func:`~polyarch.registry.push.push_blobs`' default 4 large blobs and
#: ``SMALL_AT_ONCE`` small ones at once: with the push step's own, fewer than the HTTP
#: client's 32 connections).
BATCHES_AT_ONCE = 2
#: Whose verification a blob waits for when an attestation manifest attached to no
#: platform of the index references it: the whole index's.
ATTESTATIONS = "attestations"


def owners(layout: OCILayout, root: Manifest) -> tuple[dict[str, set[str]], dict[str, int]]:
    """Blob digest -> the platforms (their manifest digests) whose verification it waits
    for, or :data:`ATTESTATIONS` (the whole index's), and every referenced blob's size. A
    layer waits for every platform manifest that references it. A config, and what an
    attestation manifest attached to a platform of the index (``vnd.docker.reference.
    digest``) references, wait for every platform: they leave with the last platform's
    layers, while the whole index is judged, and never after a platform failed (so a
    failing platform leaves no config). What an attestation manifest attached to no
    platform entry references waits for the whole index."""
    own: dict[str, set[str]] = {}
    sizes: dict[str, int] = {}
    entries = [d for d in root.json.get("manifests") or []
               if isinstance(d, dict) and isinstance(d.get("digest"), str)]
    platforms = {d["digest"] for d in entries if not is_attestation(d)}
    everyone = platforms if platforms else {ATTESTATIONS}
    for d in entries:
        if is_attestation(d):
            ann = d.get("annotations")
            subject = ann.get(ATTESTATION_FOR) if isinstance(ann, dict) else None
            whose = everyone if isinstance(subject, str) and subject in platforms \
                else {ATTESTATIONS}
        doc = layout.manifest(d["digest"]).json
        config = doc.get("config")
        for i, desc in enumerate(([config] if isinstance(config, dict) else [])
                                 + [x for x in doc.get("layers") or [] if isinstance(x, dict)]):
            digest, size = desc.get("digest"), desc.get("size")
            if not isinstance(digest, str) or not isinstance(size, int) or desc.get("urls"):
                continue
            sizes[digest] = size
            if is_attestation(d):
                own.setdefault(digest, set()).update(whose)
            elif i == 0 and config:
                own.setdefault(digest, set()).update(everyone)
            else:
                own.setdefault(digest, set()).add(d["digest"])
    return own, sizes


def releasable(own: Mapping[str, Collection[str]], passed: Collection[str],
               sent: Collection[str]) -> list[str]:
    """The blobs not sent yet whose every owner passed verification."""
    return sorted(d for d, who in own.items()
                  if d not in sent and who and all(w in passed for w in who))


@dataclass
class EarlyPush:
    """Pushes batches of verified blobs to every target repository, up to
    :data:`BATCHES_AT_ONCE` batches at a time (a platform that passes does not wait for
    the upload of the one before it), each in a thread of its own. The first registry
    failure stops it; the push step reports it (:attr:`error`) once verification
    passed."""

    s: Session
    layout: OCILayout
    root: Manifest
    repos: Sequence[ImageRef]
    sizes: Mapping[str, int]
    #: repository name -> blobs confirmed there.
    sent: dict[str, set[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {"exists": 0, "mounted": 0,
                                                            "uploaded": 0})
    bytes_sent: int = 0
    failed: str | None = None
    #: What stopped the early push: a registry failure, or (a bug) any other exception.
    error: Exception | None = None
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(
        max_workers=BATCHES_AT_ONCE, thread_name_prefix="early-push"))
    _sources: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    #: Per repository, the blobs no earlier push to its registry recorded (small ones
    #: are sent without asking whether the registry has them).
    _unseen: dict[str, frozenset[str]] = field(default_factory=dict)
    #: Held by the batch that works the mount sources out (the others wait for it).
    _finding: threading.Lock = field(default_factory=threading.Lock)
    #: Set once the first batch worked out the mount sources (or failed to).
    _sourced: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: Blobs handed to the pushing thread so far, and those whose push began.
    submitted: set[str] = field(default_factory=set)
    started: set[str] = field(default_factory=set)
    #: Set once every platform passed (the last batch was handed over): a failure after
    #: that is the whole index's.
    all_passed: bool = False
    #: Platform manifest digest -> blobs handed over when it passed.
    released: dict[str, int] = field(default_factory=dict)
    #: repository name -> every blob found, mounted or uploaded there (those of a batch
    #: that failed too): what the record of pushes learns when the push fails.
    confirmed: dict[str, set[str]] = field(default_factory=dict)

    def submit(self, digests: Sequence[str]) -> None:
        if digests and self.failed is None:
            self.submitted.update(digests)
            self._pool.submit(self._push, list(digests))

    def _find_sources(self) -> None:
        """Where each blob can be mounted from, per repository (reads of the base
        images), worked out by the first batch (a batch beside it waits for that); the
        push step takes it over."""
        with self._finding:
            self._find_sources_once()

    def _find_sources_once(self) -> None:
        from polyarch.pipeline.bases import dockerfile_bases
        from polyarch.registry.mounts import mount_sources
        from polyarch.registry.push import merge_sources
        from polyarch.registry.pushed import PushRecord

        if all(repo.name in self._sources for repo in self.repos):
            return  # an earlier batch did
        bases = dockerfile_bases(self.s.opts.dockerfile, self.s.opts.platforms,
                                 self.s.opts.build_args)
        for repo in self.repos:
            if repo.name in self._sources:
                continue
            try:
                found = mount_sources(self.s.client, self.layout, self.root, repo,
                                      [b for b in bases if b.registry == repo.registry])
            except (FatalError, ValueError):  # knowing less only means uploading more
                found = {}
            recorded = PushRecord(self.s.ws.root / "pushed", repo.registry).sources(self.sizes)
            merged = merge_sources(found, recorded, exclude=repo.repository)
            with self._lock:
                self._sources[repo.name] = merged
                self._unseen[repo.name] = frozenset(d for d in self.sizes if d not in recorded)

    def sources(self, repo: ImageRef, wait: float = 0.0) -> Mapping[str, list[str]] | None:
        """Where ``repo``'s blobs can be mounted from, as the first batch worked it out
        (waiting up to ``wait`` seconds for it; ``None``: no batch did, or not yet)."""
        if self.submitted:
            self._sourced.wait(wait)
        with self._lock:
            return self._sources.get(repo.name)

    def _push(self, digests: list[str]) -> None:
        from polyarch.registry.push import push_blobs

        if self.failed is not None:
            return
        try:
            try:
                self._find_sources()  # (a batch beside the first waits for it here)
            finally:
                self._sourced.set()
            if self.failed is not None:
                return  # the batch beside it failed meanwhile: nothing more leaves
            with self._lock:
                self.started.update(digests)
            done: list[ImageRef] = []
            for repo in self.repos:
                with self._lock:
                    unseen = self._unseen.get(repo.name, frozenset())
                    there = self.confirmed.setdefault(repo.name, set())

                def note(ev: PushEvent, there: set[str] = there) -> None:
                    if ev.action in ("exists", "mounted", "uploaded"):
                        with self._lock:
                            there.add(ev.digest)

                counts, n = push_blobs(
                    self.s.client, self.layout, repo, {d: self.sizes[d] for d in digests},
                    sources=self.sources(repo) or {},
                    mount_from=[d.repository for d in done if d.registry == repo.registry],
                    unseen=unseen, progress=note)
                with self._lock:
                    for k, v in counts.items():
                        self.counts[k] += v
                    self.bytes_sent += n
                    self.sent.setdefault(repo.name, set()).update(digests)
                done.append(repo)
        except Exception as e:  # noqa: BLE001 - kept for the push step, which raises it
            with self._lock:  # (the first failure of batches side by side is the one said)
                if self.error is None:
                    self.failed = e.message if isinstance(e, FatalError) else \
                        f"{type(e).__name__}: {e}"
                    self.error = e

    def unconfirmed(self) -> dict[str, set[str]]:
        """Blobs handed to the early push that it did not confirm in a repository
        (repository name -> digests; empty once every batch ended well)."""
        with self._lock:
            return {r.name: missing for r in self.repos
                    if (missing := self.submitted - self.sent.get(r.name, set()))}

    def finish(self, *, cancel: bool = False, wait: bool = True) -> None:
        """Wait for the batches (``cancel``: only for those in flight, whose uploads
        end within their deadlines; ``wait=False``: for none)."""
        if cancel:
            self.failed = self.failed or "cancelled"
        self._pool.shutdown(wait=wait, cancel_futures=cancel)
        if wait:
            self._sourced.set()  # no batch is left to work them out
        if self.failed is not None:
            # The push fails: a re-run asks for what went (it may send a small blob
            # that no push recorded without asking, see polyarch.registry.push).
            with self._lock:
                confirmed = {r: set(d) for r, d in self.confirmed.items() if d}
            from polyarch.pipeline.leftover import record_confirmed

            record_confirmed(self.s, self.repos, confirmed)

    def pushed(self) -> set[str]:
        with self._lock:
            return set().union(*self.sent.values()) if self.sent else set()


def eligible(s: Session, layout: Path) -> tuple[OCILayout, Manifest] | None:
    """The layout and its index when verification and push can overlap (see the module's
    documentation), else ``None``. The index must name each expected platform exactly
    once, with image manifests only: what only the whole index shows (a duplicate, a
    missing or unexpected platform, a nested index) is never found after a layer left."""
    if not s.opts.verify or s.opts.smoke is not None or not s.layer_cache.writable:
        return None
    try:
        lay = OCILayout(layout)
        root = lay.root()
    except (FatalError, ValueError):
        return None
    if not root.is_index:
        return None
    return (lay, root) if one_each(root, s.opts.platforms) else None


def one_each(root: Manifest, expected: Sequence[Platform]) -> bool:
    """Whether ``root`` holds two or more platform entries, image manifests each, one per
    expected platform and one for each."""
    entries = [d for d in root.json.get("manifests") or []
               if isinstance(d, dict) and not is_attestation(d)]
    matched: list[Platform] = []
    for d in entries:
        pd = d.get("platform") or {}
        if d.get("mediaType") in INDEX_TYPES or not isinstance(pd, dict):
            return False
        mine = [p for p in expected if p.matches(str(pd.get("os")), str(pd.get("architecture")),
                                                 pd.get("variant"))]
        if len(mine) != 1 or mine[0] in matched:
            return False
        matched.append(mine[0])
    return len(entries) >= 2 and len(matched) == len(expected)


def bytes_to_read(s: Session, lay: OCILayout, root: Manifest, own: Mapping[str, Collection[str]],
                  sizes: Mapping[str, int]) -> int:
    """Compressed bytes of the platforms' layers the layer cache does not hold."""
    platform_layers = {x.get("digest") for d in root.json.get("manifests") or []
                       if isinstance(d, dict) and not is_attestation(d)
                       and isinstance(d.get("digest"), str)
                       for x in lay.manifest(d["digest"]).json.get("layers") or []
                       if isinstance(x, dict)}
    return sum(sizes.get(d, 0) for d, who in own.items()
               if d in platform_layers and set(who) - {ATTESTATIONS}
               and not s.layer_cache.has(d))


def verify_platforms(s: Session, lay: OCILayout, root: Manifest,
                     expected: Sequence[Platform], early: EarlyPush,
                     own: Mapping[str, Collection[str]], judged: Judged | None = None,
                     *, quiet: bool = False) -> int:
    """Verify every platform entry on its own (all at once, or in turn when there is
    little to read); hand each blob to ``early`` once every platform that references
    it passed (see :func:`owners`). Returns the layers read (the others were in the
    layer cache). ``quiet``: nothing is said (:mod:`.ahead`, while the build's command
    finishes); a later pass over the same platforms says what was handed over."""
    from polyarch.checks.verify import verify_source

    views = platform_views(lay, root, expected, partial=lay.partial)

    def one(digest: str, mine: list[Platform], view: OCILayout) -> tuple[str, bool, int]:
        if len(mine) != 1:
            return digest, False, 0  # unexpected: the whole index fails
        try:
            report = verify_source(view, mine, allow=s.opts.allow, cache=s.layer_cache,
                                   check_cached=False, judged=judged, progress=None if quiet
                                   else lambda m: s.rep.info(f"{mine[0]}: {m}"))
        except (FatalError, ValueError):
            return digest, False, 0  # the whole index's verification says why
        return digest, report.ok, report.layers_read

    passed: set[str] = set()
    failed = False
    read = 0
    # With little to read (every platform layer in the layer cache but small ones, as
    # after a change of the top layer), the platforms are judged one after the other:
    # side by side they would only take turns holding the interpreter, and the first
    # to pass (whose layers then leave) would pass later.
    to_read = bytes_to_read(s, lay, root, own, early.sizes)
    workers = len(views) if to_read >= SIDE_BY_SIDE_FROM else 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
        for f in as_completed([pool.submit(one, *v) for v in views]):
            digest, ok, n = f.result()
            read += n
            if not ok:
                failed = True  # the publish fails: nothing more leaves
            elif not failed:
                passed.add(digest)
                early.all_passed = len(passed) == len(views)
                batch = releasable(own, passed, early.submitted)
                if batch and early.failed is None:
                    interrupt.set_phase(PHASE)
                    early.released[digest] = len(batch)
                    early.submit(batch)
                n = early.released.get(digest, 0)
                if n and not quiet:
                    s.rep.info(f"{_platform_name(root, digest)} passed: pushing {n} verified"
                               f" blob{'s' if n != 1 else ''} by digest")
    return read


def _platform_name(root: Manifest, digest: str) -> str:
    for d in root.json.get("manifests") or []:
        if isinstance(d, dict) and d.get("digest") == digest:
            pd = d.get("platform") or {}
            return "/".join(str(x) for x in (pd.get("os"), pd.get("architecture"),
                                             pd.get("variant")) if x)
    return digest[:19]
