"""The cache directory polyarch owns: build outputs (OCI layouts) and verification
results, pruned by size and age.

    $POLYARCH_CACHE_DIR            (the cache_dir setting; default: $XDG_CACHE_HOME/polyarch,
                                   else ~/.cache/polyarch)
      builds/<id>/                 one build's OCI layout (index.json, blobs/sha256/...)
      blobs/sha256/                every blob of recent builds (hard links), shared
      verify/                      per-layer verification results
      smoke/                       smoke results that passed, per platform manifest
      seeds/<key>                  the blobs the last build of one image reached
      engine/<key>.json            what engine look-ups answered, for the next commands

Blobs are content-addressed, so every build's layout shares one blob store: before a
build its directory is seeded with hard links to the store's blobs, and the engine's
exporter skips a blob that is already there (BuildKit's local content store and
containers/image's OCI layout both do); after the build the links the new index does not
reach are removed and the build's new blobs are linked into the store. A build whose
only new layer is small writes only that layer, its manifests and the index. A rebuild of
an image built before (same context, Dockerfile, target and platforms) is seeded with
the blobs that build reached only, so seeding costs what the image holds, not what the
whole store holds; the first build of an image is seeded with the whole store.

A build directory lives as long as its command, unless the command keeps it (``polyarch
build`` without an output keeps the verified layout and says where). Old ones are pruned
when a command starts: oldest first, while there are more than ``keep_bytes`` in all or
any is older than ``keep_days``. Pruning runs beside the build (:meth:`polyarch.session.
Session.prune_cache`): with many build directories it takes tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from polyarch import settings
from polyarch.errors import EnvironmentProblem

#: Free space a build needs at least before it starts (the layout itself may need more).
MIN_FREE_BYTES = 256 * 1024 * 1024
DEFAULT_KEEP_BYTES = 20 * 1024**3
DEFAULT_KEEP_DAYS = 7.0
_HEX64 = re.compile(r"[0-9a-f]{64}")
_REMEDY = "set POLYARCH_CACHE_DIR to a writable directory with free space"


def default_root(cache_dir: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The cache directory: ``cache_dir``, else the run's ``cache_dir`` setting, else
    ``$XDG_CACHE_HOME/polyarch``, else ``~/.cache/polyarch``. The one place it is
    found (the verify cache, the smoke cache and the builds are under it)."""
    chosen = settings.current().cache_dir if cache_dir is None else cache_dir
    if chosen is not None:
        return chosen
    env = os.environ if env is None else env
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "polyarch"


def _size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def open(cls, cache_dir: Path | None = None) -> Workspace:
        """The workspace in ``cache_dir``, else where :func:`default_root` finds it."""
        return cls(default_root(cache_dir))

    @property
    def builds(self) -> Path:
        return self.root / "builds"

    @property
    def verify_cache(self) -> Path:
        return self.root / "verify"

    @property
    def smoke_cache(self) -> Path:
        return self.root / "smoke"

    @property
    def engine_answers(self) -> Path:
        """The engine look-ups kept between commands (:mod:`polyarch.engines.remembered`)."""
        return self.root / "engine"

    def check(self, need_bytes: int = MIN_FREE_BYTES) -> None:
        """Fail early (exit 3) when the cache directory cannot take a build."""
        try:
            self.builds.mkdir(parents=True, exist_ok=True)
            probe = self.builds / f".probe-{secrets.token_hex(4)}"
            probe.write_bytes(b"x")
            probe.unlink()
        except OSError as e:
            why = "it is read-only" if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else (
                "the disk is full" if e.errno == errno.ENOSPC else e.strerror or str(e))
            raise EnvironmentProblem(f"cannot use the cache directory {self.root}: {why}",
                                     hint=_REMEDY) from None
        free = shutil.disk_usage(self.builds).free
        if free < need_bytes:
            raise EnvironmentProblem(
                f"the cache directory {self.root} has {free // (1024 * 1024)} MiB free; a build"
                f" needs at least {need_bytes // (1024 * 1024)} MiB", hint=_REMEDY)

    @property
    def blob_store(self) -> Path:
        return self.root / "blobs" / "sha256"

    @property
    def seed_lists(self) -> Path:
        return self.root / "seeds"

    @property
    def pruned_stamp(self) -> Path:
        """Touched when a pruning of the whole cache directory ran to its end."""
        return self.root / ".pruned"

    def prune_due(self, every: float, now: float | None = None) -> bool:
        """Whether the last complete pruning is ``every`` seconds old or more (or none
        is known)."""
        try:
            last = self.pruned_stamp.stat().st_mtime
        except OSError:
            return True
        now = time.time() if now is None else now
        return not 0 <= now - last < every

    def seed(self, layout: Path, key: str | None = None) -> int:
        """Hard-link the store's blobs into ``layout/blobs/sha256`` (before a build).
        Returns how many; a store on another file system (or none) seeds nothing.

        With a ``key`` (what is built: the same key, the same image rebuilt) that an
        earlier build left its blob list under (:meth:`absorb`), only those blobs are
        linked: a rebuild links what it can reuse, not every blob of every image in
        the store. Names are linked relative to open directories (no path is built
        per blob), one system call each."""
        dest = layout / "blobs" / "sha256"
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except OSError:
            return 0
        n = 0
        listed = self._seed_list(key)
        with _opened(self.blob_store) as src_fd, _opened(dest) as dst_fd:
            try:
                names = (listed if listed is not None else os.listdir(src_fd)
                         ) if src_fd >= 0 and dst_fd >= 0 else []
            except OSError:
                names = []
            for name in names:
                if len(name) != 64 or name.startswith("."):
                    continue
                try:
                    os.link(name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
                    n += 1
                except FileExistsError:
                    continue
                except FileNotFoundError:
                    continue  # pruned meanwhile
                except OSError:
                    break  # EXDEV, EPERM, EMLINK: seeding is an optimisation only
        return n

    def _seed_list(self, key: str | None) -> list[str] | None:
        if key is None:
            return None
        try:
            text = (self.seed_lists / key).read_text(encoding="ascii")[:1_000_000]
        except (OSError, ValueError):
            return None
        return [n for n in text.split() if _HEX64.fullmatch(n)]

    def absorb(self, layout: Path, reachable: set[str], key: str | None = None) -> None:
        """After a build: drop the seeded blobs the layout's index does not reach, and
        link the ones it does into the store (refreshing their time for pruning). With a
        ``key``, the blobs reached are listed under it for the next build's :meth:`seed`."""
        src = layout / "blobs" / "sha256"
        try:
            self.blob_store.mkdir(parents=True, exist_ok=True)
        except OSError:
            return
        if key is not None:
            names = sorted(d.removeprefix("sha256:") for d in reachable
                           if d.startswith("sha256:"))
            with contextlib.suppress(OSError):
                self.seed_lists.mkdir(exist_ok=True)
                tmp = self.seed_lists / f".{key}.{secrets.token_hex(4)}"
                tmp.write_text("".join(f"{n}\n" for n in names), encoding="ascii")
                os.replace(tmp, self.seed_lists / key)
        now = time.time()
        with _opened(src) as src_fd, _opened(self.blob_store) as store_fd:
            try:
                names = os.listdir(src_fd) if src_fd >= 0 and store_fd >= 0 else []
            except OSError:
                return
            for name in names:
                if f"sha256:{name}" not in reachable:
                    with contextlib.suppress(OSError):
                        os.unlink(name, dir_fd=src_fd)
                    continue
                try:
                    os.link(name, name, src_dir_fd=src_fd, dst_dir_fd=store_fd)
                except FileExistsError:
                    pass
                except OSError:
                    continue
                # Fresh for pruning, also when linked again (pruned while this build
                # ran: the blob kept its time of an older build).
                with contextlib.suppress(OSError):
                    os.utime(name, (now, now), dir_fd=store_fd)

    def prune_blobs(self, *, keep_bytes: int = DEFAULT_KEEP_BYTES,
                    keep_days: float = DEFAULT_KEEP_DAYS, now: float | None = None) -> int:
        """Remove store blobs no build directory links to (link count 1) that are older
        than ``keep_days``, then the oldest while the store is over ``keep_bytes``.
        Returns how many were removed; never fails a command."""
        now = time.time() if now is None else now
        entries: list[tuple[float, int, int, str]] = []
        with _opened(self.blob_store) as fd:
            if fd < 0:
                return 0
            try:
                names = os.listdir(fd)
            except OSError:
                return 0
            for name in names:
                with contextlib.suppress(OSError):
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    entries.append((st.st_mtime, st.st_size, st.st_nlink, name))
            entries.sort()
            total = sum(size for _m, size, _n, _p in entries)
            removed = 0
            for mtime, size, nlink, name in entries:
                if nlink > 1:
                    continue  # a build directory still holds it
                if now - mtime > keep_days * 86400 or total > keep_bytes:
                    with contextlib.suppress(OSError):
                        os.unlink(name, dir_fd=fd)
                        removed += 1
                        total -= size
        return removed

    def new_build(self, label: str = "build") -> Path:
        """A fresh, empty directory for one build's layout."""
        self.check()
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in label)[:40] or "build"
        path = self.builds / f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}-{secrets.token_hex(3)}"
        path.mkdir(parents=True)
        return path

    def prune(self, *, keep_bytes: int = DEFAULT_KEEP_BYTES, keep_days: float = DEFAULT_KEEP_DAYS,
              now: float | None = None, spare_since: float | None = None,
              stop: threading.Event | None = None) -> list[Path]:
        """Remove build directories older than ``keep_days``, then the oldest while the
        rest is over ``keep_bytes``. Returns what was removed; never fails a command.

        A directory changed since ``spare_since`` (default ``now``) is never removed:
        pruning runs while the command builds, and this command's directory, or
        another's that started meanwhile, is in use. ``stop`` set: no more is removed."""
        if not self.builds.is_dir():
            self.prune_blobs(keep_bytes=keep_bytes, keep_days=keep_days, now=now)
            return []
        now = time.time() if now is None else now
        spare_since = now if spare_since is None else spare_since
        entries: list[tuple[float, int, Path]] = []
        with contextlib.suppress(OSError):
            for p in self.builds.iterdir():
                if p.is_dir() and not p.name.startswith("."):
                    with contextlib.suppress(OSError):
                        mtime = p.stat().st_mtime
                        if mtime < spare_since:
                            entries.append((mtime, _size(p), p))
        entries.sort()
        removed: list[Path] = []
        total = sum(s for _t, s, _p in entries)
        for mtime, size, path in entries:
            if stop is not None and stop.is_set():
                return removed
            if now - mtime > keep_days * 86400 or total > keep_bytes:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
                total -= size
        self.prune_blobs(keep_bytes=keep_bytes, keep_days=keep_days, now=now)
        with contextlib.suppress(OSError):
            for e in os.scandir(self.seed_lists):
                with contextlib.suppress(OSError):
                    if now - e.stat(follow_symlinks=False).st_mtime > keep_days * 86400:
                        os.unlink(e.path)
        return removed


@contextlib.contextmanager
def _opened(directory: Path) -> Iterator[int]:
    """A descriptor of ``directory`` for the ``*at`` calls, -1 when it cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        yield -1
        return
    try:
        yield fd
    finally:
        os.close(fd)


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
