"""The cascade: defaults -> config file -> POLYARCH_* environment -> command line; and
the settings of the run, from the environment only (:func:`load_settings`).

The file is ``polyarch.toml`` (its top level, or its ``[tool.polyarch]`` table), else the
``[tool.polyarch]`` table of ``pyproject.toml``, or ``--config PATH``. Every key, variable
and flag comes from the option table; a value from a higher level replaces the whole
value below it (tables are not merged).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from polyarch.config.options import FIELDS, Options
from polyarch.config.setting_kinds import Refused
from polyarch.config.table import BY_KEY, BY_NAME, OPTIONS, SETTINGS, Opt
from polyarch.errors import ConfigError, UsageError
from polyarch.settings import Settings

#: Keys of the file that are not options: read by polyarch.pipeline.images.
PROJECT_KEYS = ("image",)


def _polyarch_table(path: Path, data: dict[str, Any], *, pyproject: bool) -> dict[str, Any] | None:
    """The polyarch settings in a parsed file: its [tool.polyarch] table, or (in a
    polyarch.toml without one) the whole file."""
    tool = data.get("tool")
    if tool is None:
        return None if pyproject else data
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: 'tool' must be a table ([tool.polyarch])")
    if "polyarch" not in tool:
        return None if pyproject else data
    section = tool["polyarch"]
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.polyarch] must be a table")
    return section


def find_config(start: Path) -> tuple[Path, dict[str, Any]] | None:
    """polyarch.toml, else pyproject.toml with a [tool.polyarch] table, in ``start``. A
    pyproject.toml that does not say ``polyarch`` anywhere is not parsed (it cannot hold
    that table; its syntax is its own tools' business)."""
    for name in ("polyarch.toml", "pyproject.toml"):
        cand = start / name
        if cand.is_file():
            pyproject = name == "pyproject.toml"
            section = _polyarch_table(cand, _load_toml(cand, only_if_named=pyproject),
                                      pyproject=pyproject)
            if section is not None:
                return cand, section
    return None


def read_config(config_path: Path | None, cwd: Path) -> tuple[Path, dict[str, Any]] | None:
    """The polyarch table of ``config_path``, or of the file found in ``cwd``."""
    if config_path is None:
        return find_config(cwd)
    if not config_path.is_file():
        raise ConfigError(f"config file {config_path} not found",
                          hint="check the --config path")
    section = _polyarch_table(config_path, _load_toml(config_path),
                              pyproject=config_path.name == "pyproject.toml")
    return config_path, section or {}


#: Largest config file read (a pyproject.toml included).
MAX_CONFIG = 16 << 20
#: The config files this process parsed: (path, SHA-256 of the bytes) -> their document
#: (at most :data:`PARSED_KEPT`). A file read twice (for the options, then for a
#: project's images) is parsed once; a file that changed in between is parsed again.
_PARSED: dict[tuple[str, bytes], dict[str, Any]] = {}
PARSED_KEPT = 8


def _load_toml(path: Path, *, only_if_named: bool = False) -> dict[str, Any]:
    """The document of TOML file ``path`` (a copy of it: callers may change theirs).
    ``only_if_named``: ``{}`` without parsing when the file does not contain the word
    ``polyarch`` (nor a unicode escape, which a quoted key could spell it with)."""
    import copy
    import hashlib

    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG + 1)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    if only_if_named and b"polyarch" not in data and b"\\u" not in data \
            and b"\\U" not in data:
        return {}
    if len(data) > MAX_CONFIG:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG >> 20} MiB: not a config file",
                          hint="check the --config path")
    key = (str(path), hashlib.sha256(data).digest())
    doc = _PARSED.get(key)
    if doc is None:
        doc = _parse_toml(path, data)
        if len(_PARSED) >= PARSED_KEPT:
            _PARSED.clear()
        _PARSED[key] = doc
    try:
        return copy.deepcopy(doc)
    except RecursionError:
        raise _too_deep(path) from None


def _too_deep(path: Path) -> ConfigError:
    return ConfigError(f"{path}: invalid TOML: nested too deeply",
                       hint="a polyarch config needs two levels at most")


def _parse_toml(path: Path, data: bytes) -> dict[str, Any]:
    import tomllib  # only where a file is read (inspect, verify of a REF read none)

    try:
        return tomllib.loads(data.decode())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}", hint="fix the file's syntax") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})",
                          hint="save the file as UTF-8") from None
    except RecursionError:
        raise _too_deep(path) from None


def did_you_mean(key: str, known: Iterable[str]) -> str:
    import difflib

    known = sorted(known)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"


def apply(values: dict[str, Any], key: str, raw: Any, where: str, *,
          from_file: bool = False) -> str:
    """Parse ``raw`` as the value of file key ``key`` into ``values`` (by field name);
    returns the field name. Errors name ``where`` and are ConfigErrors (exit 2).
    ``from_file``: ``raw`` is a config file's TOML value, which must have the key's TOML
    type (``verify = "off"`` is refused there; the environment may say ``off``)."""
    opt = BY_KEY.get(key)
    if opt is None:
        raise ConfigError(f"{where}: unknown key {key!r}", hint=did_you_mean(key, BY_KEY))
    if _has_nul(raw):
        # No command line, file name or environment can carry a NUL byte to the engine.
        raise ConfigError(f"{where}: {key!r} contains a NUL character",
                          hint="remove the \\u0000 escape")
    try:
        if from_file:
            opt.kind.check_file_value(raw)
        values[opt.name] = opt.kind.parse(raw)
    except TypeError:
        shown = repr(raw)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise ConfigError(
            f"{where}: {key!r} must be {opt.kind.type_name}, not {type(raw).__name__} {shown}",
            hint="see docs/configuration.md") from None
    except ValueError as e:
        raise ConfigError(f"{where}: {key!r}: {e}") from None
    except RecursionError:
        raise ConfigError(f"{where}: {key!r} is nested too deeply") from None
    return opt.name


def _has_nul(v: Any) -> bool:
    todo = [v]  # no recursion: a parsed file may nest as deep as its parser allows
    while todo:
        x = todo.pop()
        if isinstance(x, str):
            if "\0" in x:
                return True
        elif isinstance(x, list | tuple):
            todo.extend(x)
        elif isinstance(x, dict):
            todo.extend(x.keys())
            todo.extend(x.values())
    return False


_apply = apply  # the name polyarch.pipeline.images uses


def load(
    cli: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config_path: Path | None = None,
    cwd: Path | None = None,
) -> Options:
    """Build the options object.

    ``cli`` holds CLI values keyed by *file key* (``build-args``); ``None`` values and
    empty tuples mean "not given" and do not override.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    source = "defaults"

    # 1. file
    found = read_config(config_path, cwd)
    if found is not None:
        path, data = found
        source = str(path)
        for key, raw in data.items():
            if key in PROJECT_KEYS:
                continue  # several-image projects: read by polyarch.pipeline.images
            sources[apply(values, key, raw, f"{path}", from_file=True)] = f"file {path}"

    # 2. environment
    for opt in OPTIONS:
        for key in (opt.key, *opt.aliases):
            name = "POLYARCH_" + key.upper().replace("-", "_")
            if env.get(name, "") != "":
                where = f"environment variable {name}"
                sources[apply(values, key, env[name], where)] = f"environment {name}"

    # 3. command line
    for key, raw in (cli or {}).items():
        if raw is None or raw == () or raw == []:
            continue
        try:
            name = apply(values, key, list(raw) if isinstance(raw, tuple) else raw,
                         "command line")
        except ConfigError as e:
            raise UsageError(e.message.replace("command line: ", ""), hint=e.hint) from None
        sources[name] = "command line"

    for name, opt in BY_NAME.items():
        values.setdefault(name, opt.default)
    return Options(source=source, sources=sources, **_split(values))


def load_settings(env: Mapping[str, str] | None = None, *,
                  only: Iterable[str] | None = None) -> Settings:
    """The settings of the run (the table's ``SETTINGS``) from their ``POLYARCH_*``
    variables; one unset, empty or blank keeps its default. ``only``: these names, the
    others at their defaults. A bad value is a ConfigError (exit 2) naming the
    variable, the value and how to write one."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for opt in SETTINGS:
        raw = env.get(opt.env, "").strip()
        if raw and (only is None or opt.name in only):
            values[opt.name] = _setting(opt, raw)
    return Settings(**values)


def _setting(opt: Opt, raw: str) -> Any:
    try:
        return opt.kind.parse(raw)
    except Refused as e:
        what, hint = e.what, e.hint.format(default=f"{opt.default:g}"
                                           if isinstance(opt.default, float) else opt.default)
    except (TypeError, ValueError):
        what, hint = opt.kind.type_name, "see docs/configuration.md"
    shown = raw if len(raw) <= 40 else raw[:37] + "..."
    raise ConfigError(f"{opt.env}={shown!r} is not {what}", hint=hint)


def _split(values: Mapping[str, Any], engine_options: Mapping[str, Any] | None = None
           ) -> dict[str, Any]:
    """Option values by name as :class:`Options` keywords: the fields, and every other
    option (the passthrough build options) in ``engine_options``."""
    out = {k: v for k, v in values.items() if k in FIELDS}
    rest = {k: v for k, v in values.items() if k not in FIELDS}
    if rest or engine_options is not None:
        out["engine_options"] = {**(engine_options or {}), **rest}
    return out


def override(base: Options, values: Mapping[str, Any], where: str) -> Options:
    """``base`` with ``values`` (by field name, as :func:`apply` fills them) set from
    ``where`` (an ``[[image]]`` entry)."""
    sources = dict(base.sources)
    sources.update({name: where for name in values})
    return replace(base, sources=sources, **_split(values, base.engine_options))
