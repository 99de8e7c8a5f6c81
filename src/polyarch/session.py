"""One Session per command: the options, the reporter, the engine, ONE registry client,
and the cache directory with the build directories this command made.

Steps of the pipeline take a Session and return a frozen result. Closing the session
closes the registry client and removes every build directory not explicitly kept, also
when the command fails or is interrupted, and waits (a bounded time) for the cache's
pruning, which runs beside the build.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from polyarch import workspace
from polyarch.config import Options
from polyarch.output import Reporter
from polyarch.workspace import Workspace

if TYPE_CHECKING:
    from polyarch.checks.cache import LayerCache
    from polyarch.engines import Engine
    from polyarch.registry import RegistryClient


@dataclass
class _Parts:
    """What every view of one session shares (see :meth:`Session.with_options`)."""

    engine: Engine | None = None
    client: RegistryClient | None = None
    layer_cache: LayerCache | None = None
    temporary: list[Path] = field(default_factory=list)
    pruning: threading.Thread | None = None
    stop_pruning: threading.Event = field(default_factory=threading.Event)
    prune_skipped: bool = False


#: Longest wait, when the command ends, for the cache's pruning to finish (seconds); one
#: stopped sooner leaves the rest to the next command's. After an error or an
#: interruption the pruning stops at its next directory instead.
PRUNE_WAIT = 60.0
PRUNE_STOP_WAIT = 2.0
#: Build directories changed this long before the pruning started are never pruned by
#: it: the command's own (made after it started), another command's in use (a file
#: system's timestamps may also lag the clock by a few milliseconds).
PRUNE_SPARE_SECONDS = 600.0
#: The cache directory is pruned by one command in this many seconds (a walk of every
#: kept build directory costs CPU beside the build: about 85 ms for 135 of them).
PRUNE_EVERY = 600.0


@dataclass(frozen=True)
class Session:
    opts: Options
    rep: Reporter
    dry_run: bool = False
    docker_config: Path | None = None  # credentials: this directory's config.json
    ws: Workspace = field(default_factory=Workspace.open)
    parts: _Parts = field(default_factory=_Parts)
    #: An engine made before the options were loaded, its look-ups already running
    #: (:func:`polyarch.engines.start_engine`): the session's engine where it fits them.
    started_engine: Engine | None = None

    # -- parts, made on first use -----------------------------------------------------
    @property
    def engine(self) -> Engine:
        if self.parts.engine is None:
            from polyarch.engines import select_engine

            self.parts.engine = select_engine(self.opts, self.started_engine)
        return self.parts.engine

    @property
    def layer_cache(self) -> LayerCache:
        """Verification results per layer digest, in the cache directory: a rebuild
        re-reads only the layers that changed."""
        if self.parts.layer_cache is None:
            from polyarch.checks.cache import LayerCache

            self.parts.layer_cache = LayerCache(self.ws.verify_cache)
            self.prune_cache()  # a command that only verifies prunes too
        return self.parts.layer_cache

    @property
    def client(self) -> RegistryClient:
        if self.parts.client is None:
            from polyarch.registry import RegistryClient

            self.parts.client = RegistryClient(insecure_registries=self.opts.insecure_registries,
                                               docker_config=self.docker_config)
        return self.parts.client

    def with_options(self, opts: Options) -> Session:
        """The same session (same engine, client and cache) with other options: one image
        of a project, or the options after the tags from git state were added."""
        return replace(self, opts=opts)

    # -- build directories ------------------------------------------------------------
    def build_dir(self, label: str) -> Path:
        """A new directory in the cache for one build's OCI layout, removed when the
        session closes unless :meth:`keep` is called for it."""
        path = self.ws.new_build(label)
        self.parts.temporary.append(path)
        return path

    def prune_cache(self) -> None:
        """Prune the cache's old build directories and blobs (:meth:`Workspace.prune`),
        then the verification cache (:meth:`LayerCache.prune`) and the engine answers no
        command will take (:func:`polyarch.engines.remembered.prune`), in a thread of its
        own, once per session: a walk of every old build directory and cached scan is off
        the path to the build and the verification. Waited for when the session closes.
        Skipped when a command pruned it less than :data:`PRUNE_EVERY` seconds ago."""
        if self.parts.pruning is None and not self.parts.prune_skipped:
            if not self.ws.prune_due(PRUNE_EVERY):
                self.parts.prune_skipped = True
                return
            spare = time.time() - PRUNE_SPARE_SECONDS  # the caller's clock, before the start
            self.parts.pruning = threading.Thread(
                target=_prune, name="polyarch-prune", daemon=True,
                args=(self.ws, spare, self.parts.stop_pruning))
            self.parts.pruning.start()

    def keep(self, path: Path) -> None:
        if path in self.parts.temporary:
            self.parts.temporary.remove(path)

    # -- lifetime ---------------------------------------------------------------------
    def close(self, *, failed: bool = False) -> None:
        """Close the client, remove the build directories not kept, and wait for the
        cache's pruning (``failed``: the command failed or was interrupted; the pruning
        stops at its next directory)."""
        if failed:
            self.parts.stop_pruning.set()
        if self.parts.client is not None:
            self.parts.client.close()
            self.parts.client = None
        while self.parts.temporary:
            workspace.remove(self.parts.temporary.pop())
        if self.parts.pruning is not None:
            self.parts.pruning.join(PRUNE_STOP_WAIT if failed else PRUNE_WAIT)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(failed=exc_type is not None)


def _prune(ws: Workspace, spare_since: float, stop: threading.Event) -> None:
    ws.prune(spare_since=spare_since, stop=stop)
    if not stop.is_set():
        from polyarch.checks.pruning import prune_entries  # (not the cache's heavy module)
        from polyarch.engines import remembered

        prune_entries(ws.verify_cache, stop=stop)
        remembered.prune(ws.engine_answers)
    if not stop.is_set():
        with contextlib.suppress(OSError):  # unwritable: the next command prunes again
            ws.pruned_stamp.touch()
