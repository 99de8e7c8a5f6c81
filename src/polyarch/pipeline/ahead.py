"""Judging the platforms while the engine finishes the build.

BuildKit says the image index is stored in the output layout ("exporting manifest list
sha256:..." done) well before ``docker buildx build`` exits: the daemon still records
the build (here 80-90 ms, its databases written and synced), then buildx writes the
layout's ``index.json`` and the metadata file. Every blob the index reaches is in the
layout by then (each is stored whole, by rename, before the index that names it).

So the platforms are judged in that time, each on its own as :mod:`.overlap` judges
them: the verdicts go into the run's :class:`~polyarch.checks.deep.Judged` store and
the layer scans into the layer cache, which the verification after the build takes.
Nothing is printed and nothing leaves the machine here: a verdict counts only for the
same manifest digest, platform and ``--allow`` rules, in the verification that runs
once the build ended well (a build that fails, or an index that is not the one judged,
uses none of it). Any problem (a blob not there yet, a malformed manifest) ends this
pass silently; the verification after the build judges again and says why.

With the blobs of a publish to push early (:mod:`.overlap`), the push starts here
too: the blobs of each platform that passed leave by digest while buildx finishes,
under the same rule (a blob once every platform that references it passed; the
configs and attestations once every platform passed). A build that fails after its
export (rare: a cache export, the metadata file) then leaves those verified blobs,
untagged and named by no manifest, and its error says so.

Only when there is little to read (:data:`~polyarch.pipeline.overlap.SIDE_BY_SIDE_FROM`:
a changed top layer, not a cold build): a long read here would take the platforms'
verification, and with it the push of the first platform to pass, away from the
overlap with the other platforms' verification.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from polyarch.refs import ImageRef
from polyarch.session import Session

if TYPE_CHECKING:
    from polyarch.checks.deep import Judged
    from polyarch.pipeline.overlap import EarlyPush

#: Longest wait, once the build ended, for the pass to end (it reads little: about 20 ms
#: per platform).
AHEAD_WAIT = 30.0


class JudgeAhead:
    """Call with the index digest (from the build's output reader) to start the pass;
    :meth:`finish` once the build ended."""

    def __init__(self, s: Session, layout: Path, push_to: Sequence[ImageRef] = ()) -> None:
        self.s = s
        self.layout = layout
        self.push_to = push_to
        self.judged: Judged | None = None
        #: The early push this pass started (``push_to`` given, every condition of
        #: :func:`~polyarch.pipeline.overlap.eligible` met), with its index's digest.
        self.early: EarlyPush | None = None
        self.root = ""
        #: Platforms judged, and the layers read to judge them (not in the layer cache).
        self.platforms = 0
        self.layers_read = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __call__(self, digest: str) -> None:
        with self._lock:
            if self._thread is not None or not self.s.opts.verify:
                return
            self._thread = threading.Thread(target=self._run, args=(digest,),
                                            name="polyarch-ahead", daemon=True)
        self._thread.start()

    def finish(self, timeout: float = AHEAD_WAIT) -> Judged:
        """The verdicts of the pass (waiting up to ``timeout`` for it), in the store the
        verification after the build goes on with."""
        from polyarch.checks.deep import Judged

        with self._lock:
            t = self._thread
        if t is not None:
            t.join(timeout)
        if t is not None and t.is_alive():
            # Still running: its early push stops, and nothing of it is taken (no
            # verdict or blob is shared with a pass that may still go on).
            with self._lock:
                early, self.early, self.layers_read = self.early, None, 0
            if early is not None:
                early.finish(cancel=True, wait=False)
            return Judged()
        with self._lock:
            return self.judged if self.judged is not None else Judged()

    def stop(self, wait: bool = True) -> int:
        """The build failed: no more blobs leave (those in flight end, unless ``wait``
        is false). Returns how many verified blobs the early push started."""
        with self._lock:
            t = self._thread
        if t is not None and wait:
            t.join(AHEAD_WAIT)
        with self._lock:
            early = self.early
        if early is None:
            return 0
        early.finish(cancel=True, wait=wait)
        with early._lock:
            return len(early.started)

    def _run(self, digest: str) -> None:
        from polyarch.checks.deep import Judged
        from polyarch.checks.verify import verify_source
        from polyarch.pipeline import overlap
        from polyarch.pipeline.push import repositories
        from polyarch.pipeline.views import platform_views
        from polyarch.registry.layout import OCILayout

        s = self.s
        judged = Judged()
        try:
            lay = OCILayout(self.layout, partial=True)
            root = lay.manifest(digest)  # (its bytes are checked against the digest)
            if not root.is_index or not overlap.one_each(root, s.opts.platforms):
                return
            own, sizes = overlap.owners(lay, root)
            if overlap.bytes_to_read(s, lay, root, own, sizes) >= overlap.SIDE_BY_SIDE_FROM:
                return
            views = platform_views(lay, root, s.opts.platforms, partial=True)
            if self.push_to and s.opts.smoke is None and s.layer_cache.writable:
                early = overlap.EarlyPush(s, lay, root, repositories(self.push_to), sizes)
                with self._lock:
                    self.early, self.root = early, root.digest
                read = overlap.verify_platforms(s, lay, root, s.opts.platforms, early, own,
                                                judged, quiet=True)
            else:
                read = 0
                for _, mine, view in views:
                    read += verify_source(view, mine, allow=s.opts.allow, cache=s.layer_cache,
                                          check_cached=False, judged=judged).layers_read
        except Exception:  # noqa: BLE001 - the verification after the build judges again
            return  # and says why
        with self._lock:
            self.judged, self.platforms, self.layers_read = judged, len(views), read
