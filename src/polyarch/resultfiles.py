"""Files a run writes at its end: ``--output-file``, ``--descriptor``, the dotenv report,
``$GITHUB_OUTPUT`` and ``$GITHUB_STEP_SUMMARY``.

Each is checked before anything is built (:func:`check`: not a directory, a file can be
made or appended to there, the disk has room), and written so that a failure leaves the
file as it was: a whole file goes to a temporary file in the same directory, then is
renamed over the old one (:func:`write`); an append file (the GitHub Actions files, which
other steps append to as well) gets its text in one ``write`` and is cut back to its old
length when that fails (:func:`append`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from polyarch.errors import EnvironmentProblem, FatalError, UsageError

#: Free space a destination's disk must have before the build (the files are small).
MIN_FREE = 64 * 1024


def check(path: Path, what: str, *, error: type[FatalError] = UsageError) -> None:
    """Refuse, before anything is built, a file the run will have to write at its end
    when it cannot be written: a directory, a place where no file can be made (tried,
    not guessed: root passes every permission check), a full disk. A dry run checks it
    too; nothing is left behind. ``error`` is the class of a refusal (a path given on
    the command line: a usage error; one from the CI environment: an environment one);
    a full disk is always an environment problem (exit 3)."""
    try:
        if path.is_dir():
            raise error(f"{what} {path} is a directory", hint="name a file")
        if path.exists():
            with path.open("a"):
                pass
            parent = path.absolute().parent
        else:
            parent = path.absolute().parent
            while not parent.exists():
                parent = parent.parent
            if not parent.is_dir():
                raise error(f"{what} {path}: {parent} is not a directory")
            with tempfile.NamedTemporaryFile(dir=parent, prefix=".polyarch-probe-"):
                pass
        st = os.statvfs(parent)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise _full(what, path) from None
        raise error(f"{what} {path}: cannot write there ({e.strerror})",
                    hint="choose a writable place") from None
    if st.f_bavail * st.f_frsize < MIN_FREE:
        raise _full(what, path)


def _full(what: str, path: Path) -> EnvironmentProblem:
    return EnvironmentProblem(f"{what} {path}: the disk is full",
                              hint="free space there, or choose another place")


def write(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a temporary file in the same directory, then a
    rename over it. Raises OSError."""
    data = text.encode("utf-8")
    parent = path.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".polyarch-tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def append(path: Path, text: str) -> None:
    """Append ``text`` to ``path`` in one write; on failure the file is cut back to the
    length it had, so that no half entry is left for the next reader. Raises OSError."""
    data = text.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            done = os.write(fd, data)
            if done != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)
