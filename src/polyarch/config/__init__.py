"""Options: one frozen object built from a documented cascade.

    defaults  ->  [tool.polyarch] in pyproject.toml, or polyarch.toml  ->  POLYARCH_* env  ->  CLI

Every option is declared once, in :mod:`polyarch.config.table`: its file key
(kebab case, ``build-args``), its environment variable (``POLYARCH_BUILD_ARGS``), its
command-line flags and the commands that take them, its parser and help. Unknown keys
and wrong types in a file are rejected with the key, the file and a "did you mean".
The settings of the run (deadlines, the cache directory, ...) are declared there too,
each a ``POLYARCH_*`` variable only: :func:`load_settings` resolves them into
:class:`polyarch.settings.Settings`.

This package imports nothing above it (no engine, pipeline or preflight code).
"""

from __future__ import annotations

from polyarch.checks.allow import allow_for
from polyarch.config.kinds import parse_kv_list, rehome
from polyarch.config.load import (
    _apply,
    apply,
    did_you_mean,
    find_config,
    load,
    load_settings,
    override,
    read_config,
)
from polyarch.config.options import Options
from polyarch.config.table import (
    ENV_PREFIX,
    OPTIONS,
    SETTINGS,
    Opt,
    for_command,
    image_keys,
    run_keys,
)

RUN_KEYS = run_keys()

__all__ = [
    "ENV_PREFIX", "OPTIONS", "RUN_KEYS", "SETTINGS", "Opt", "Options", "_apply", "allow_for", "apply",
    "did_you_mean", "find_config", "for_command", "image_keys", "load", "load_settings",
    "override", "parse_kv_list",
    "read_config", "rehome",
]
