"""Settings of the run that modules far below the options read: the deadlines of
commands and registry requests, the cache and certificate directories, the git state
given by hand, where the CI dotenv report goes, and the debug switch.

Each is declared once, in the option table (``SETTINGS`` in
:mod:`polyarch.config.table`: its ``POLYARCH_*`` variable, parser, default and help,
listed in docs/configuration.md). The command line resolves them once, at start-up
(:func:`polyarch.config.load_settings`), and installs them here for the run; the
modules that use one read it with :func:`current`, never from the environment. A
library caller that installs nothing gets the defaults; one that wants other values
installs its own (:func:`using`).

This module imports nothing of polyarch: the lowest layers (:mod:`polyarch.proc`,
:mod:`polyarch.registry`) read it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """One field per entry of the table's ``SETTINGS``, with the same default (a unit
    test keeps the two in step)."""

    #: Wall-clock deadline of a short command (``docker info``, ``git``, a credential
    #: helper), seconds.
    command_timeout: float = 60.0
    #: Inactivity deadline of a long command (a build, a prebuild command), seconds.
    idle_timeout: float = 600.0
    #: Deadline of one registry operation (a request with its retries), seconds.
    registry_timeout: float = 60.0
    #: docker's per-registry TLS directory (``HOST:PORT/ca.crt``, client certificates).
    certs_d: Path = Path("/etc/docker/certs.d")
    #: The cache directory polyarch owns; None: ``$XDG_CACHE_HOME/polyarch``, else
    #: ``~/.cache/polyarch`` (:func:`polyarch.workspace.default_root`).
    cache_dir: Path | None = None
    #: Where the CI dotenv report goes; None: ``polyarch.env`` under GitLab CI only.
    dotenv: Path | None = None
    #: The git state given by hand (any CI or none): the full ref, the commit, ...
    git_ref: str | None = None
    git_sha: str | None = None
    base_ref: str | None = None
    default_branch: str | None = None
    #: Length of the short commit hash; None: ``DOCKER_METADATA_SHORT_SHA_LENGTH``,
    #: else 7.
    short_sha_length: int | None = None
    #: An internal error raises its traceback instead of one line.
    debug: bool = False


#: The settings of a run that sets none.
DEFAULTS = Settings()

_current = DEFAULTS


def current() -> Settings:
    """The settings of this run: those installed, else the defaults."""
    return _current


def install(settings: Settings) -> Settings:
    """Make ``settings`` the run's; returns those they replace."""
    global _current
    previous, _current = _current, settings
    return previous


@contextlib.contextmanager
def using(settings: Settings) -> Iterator[Settings]:
    """``settings`` for the duration of the block, then those before again."""
    previous = install(settings)
    try:
        yield settings
    finally:
        install(previous)
