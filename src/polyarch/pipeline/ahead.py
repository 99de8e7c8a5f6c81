"""Judging the platforms while the engine finishes the build.

BuildKit says the image index is stored in the output layout ("exporting manifest list
sha256:..." done) well before ``docker buildx build`` exits: the daemon still records
the build (here 80-90 ms, its databases written and synced), then buildx writes the
layout's ``index.json`` and the metadata file. Every blob the index reaches is in the
layout by then (each is stored whole, by rename, before the index that names it).

So the platforms are judged in that time, each on its own as :mod:`.overlap` judges
them: the verdicts go into the run's :class:`~polyarch.checks.deep.Judged` store and
the layer scans into the layer cache, which the verification after the build takes.
Nothing is printed here: a verdict counts only for the same manifest digest, platform,
``--allow`` rules and secret values known, in the verification that runs once the
build ended well (a build that fails, or an index that is not the one judged, uses none
of it). The pass waits for the registry check made beside the build (which learns the
registry's password, a value verification looks for) to pass. Any problem (a blob not
there yet, a malformed manifest) ends it silently; the verification after the build
judges again and says why.

With the blobs of a publish to push early (:mod:`.overlap`), the push starts here
too: the blobs of each platform that passed leave by digest while buildx finishes,
under the same rule (a blob once every platform that references it passed; the
configs and attestations once every platform passed). A build that fails after its
export (rare: buildx cannot write the metadata file or index.json), or is interrupted
then, leaves those verified blobs, untagged and named by no manifest, and a line
before its error says how many.

Only when there is little to read (:data:`~polyarch.pipeline.overlap.SIDE_BY_SIDE_FROM`:
a changed top layer, not a cold build): a long read here would take the platforms'
verification, and with it the push of the first platform to pass, away from the
overlap with the other platforms' verification.
"""

from __future__ import annotations

import threading
import time
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
    """Call with the index digest and the registry check's event (from
    :func:`polyarch.pipeline.build.build`) to start the pass; :meth:`finish` once the
    build ended well, :meth:`stop` when it did not."""

    def __init__(self, s: Session, layout: Path, push_to: Sequence[ImageRef] = ()) -> None:
        self.s = s
        self.layout = layout
        self.push_to = push_to
        #: Platforms judged, and the layers read to judge them (not in the layer cache).
        self.platforms = 0
        self.layers_read = 0
        self._judged: Judged | None = None
        self._early: EarlyPush | None = None
        self._root = ""
        self._closed = False  # set by stop() and a finish() that gave up: nothing more
        self._gave_up = False  # a finish() that waited its time for the pass
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __call__(self, digest: str, checked: threading.Event) -> None:
        with self._lock:
            if self._thread is not None or self._closed or not self.s.opts.verify:
                return
            self._thread = threading.Thread(target=self._run, args=(digest, checked),
                                            name="polyarch-ahead", daemon=True)
        self._thread.start()

    def finish(self, root: str | None, timeout: float = AHEAD_WAIT
               ) -> tuple[Judged, EarlyPush | None, str]:
        """Once the build ended well with the index ``root`` (``None``: verification and
        push do not overlap for it, :func:`~polyarch.pipeline.overlap.eligible`): the
        verdicts of the pass (waiting up to ``timeout`` for it), for the verification to
        go on with; the early push it started, if it is for ``root``; and, when an early
        push is dropped instead, what it left and why, in words ("" when nothing)."""
        from polyarch.checks.deep import Judged

        with self._lock:
            t = self._thread
        if t is not None:
            t.join(timeout)
        with self._lock:
            alive = t is not None and t.is_alive()
            if alive:
                self._closed = self._gave_up = True  # (nothing of it is taken)
            judged = self._judged if self._judged is not None and not alive else Judged()
            early, ahead_root = self._early, self._root
        if alive:
            self.layers_read = 0
        if early is None or (not alive and root == ahead_root):
            return judged, early, ""
        left = self._drop(early, wait=not alive)
        why = (f"the platforms were still being judged after {timeout:g} s" if alive
               else "verification and push no longer overlap" if root is None
               else "the build ended with another index")
        return judged, None, f"{left} while the build finished ({why})" if left else ""

    def stop(self, wait: bool = True) -> str:
        """The build failed (or was interrupted: ``wait`` false): nothing more is judged
        or leaves; the uploads in flight end (waited for, with ``wait``). Returns what
        left, in words ("" when nothing)."""
        with self._lock:
            self._closed = True
            t, early, gave_up = self._thread, self._early, self._gave_up
        if early is not None:
            early.finish(cancel=True, wait=False)  # no batch starts from now on
        if t is not None and wait and not gave_up:
            t.join(AHEAD_WAIT)
        with self._lock:
            early = self._early
        return self._drop(early, wait=wait) if early is not None else ""

    @staticmethod
    def _drop(early: EarlyPush, *, wait: bool) -> str:
        from polyarch.pipeline.leftover import left_early

        early.finish(cancel=True, wait=wait)
        return left_early(early)

    def _run(self, digest: str, checked: threading.Event) -> None:
        from polyarch.checks.deep import Judged
        from polyarch.checks.verify import verify_source
        from polyarch.pipeline import overlap
        from polyarch.pipeline.push import repositories
        from polyarch.pipeline.views import platform_views
        from polyarch.registry.layout import OCILayout

        s = self.s
        judged = Judged()
        deadline = time.monotonic() + AHEAD_WAIT
        # The registry check passed (what it learnt is looked for), or this pass ends.
        while not checked.wait(0.05):
            with self._lock:
                if self._closed or time.monotonic() > deadline:
                    return
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
                    if self._closed:
                        return
                    self._early, self._root = early, root.digest
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
            if not self._gave_up:
                self._judged, self.platforms, self.layers_read = judged, len(views), read
