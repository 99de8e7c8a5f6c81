"""Options: one frozen object built from a documented cascade.

    defaults  ->  [tool.polyarch] in pyproject.toml, or polyarch.toml  ->  POLYARCH_* env  ->  CLI

Keys are kebab-case in files (``build-args``), upper snake case in the environment
(``POLYARCH_BUILD_ARGS``). Unknown keys and wrong types in a file are rejected with the
key, the file and a "did you mean".
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from polyarch.errors import ConfigError, UsageError
from polyarch.nodespec import NodeSpec, parse_nodes
from polyarch.platforms import DEFAULT_PLATFORMS, Platform, parse_platforms
from polyarch.refs import ImageRef, ReferenceError, parse_ref


@dataclass(frozen=True)
class Options:
    platforms: tuple[Platform, ...]
    tags: tuple[ImageRef, ...] = ()
    context: str = "."
    file: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    build_contexts: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    secrets: tuple[str, ...] = ()
    builder: str | None = None
    docker_context: str | None = None
    engine: str = "docker"  # docker | podman | auto
    provenance: bool | None = None
    sbom: bool | None = None
    verify: bool = True
    smoke: str | None = None
    allow: tuple[str, ...] = ()
    cache: str = "none"
    no_cache: bool = False
    pull: bool = False
    insecure_registries: tuple[str, ...] = ()
    tag_specs: tuple[str, ...] = ()
    flavor: tuple[str, ...] = ()
    images: tuple[str, ...] = ()  # names whose tags come from tag-specs and git state
    meta: Mapping[str, str] = field(default_factory=dict)  # OCI label values (title, ...)
    nodes: tuple[NodeSpec, ...] = ()  # builder nodes: platform -> machine (polyarch.nodes)
    source: str = "defaults"  # where file options came from, for messages

    @property
    def dockerfile(self) -> Path:
        return Path(self.file) if self.file else Path(self.context) / "Dockerfile"


# -- value parsers ----------------------------------------------------------------

def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError("a string")
    return v


def _opt_str(v: Any) -> str | None:
    return None if v in (None, "") else _str(v)


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
        return v.lower() in {"1", "true", "yes", "on"}
    raise TypeError("true or false")


def _opt_bool(v: Any) -> bool | None:
    return None if v is None else _bool(v)


def _str_list(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        # Environment form: comma or newline separated.
        return tuple(x.strip() for x in v.replace("\n", ",").split(",") if x.strip())
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return tuple(v)
    raise TypeError("a list of strings")


def _lines(v: Any) -> tuple[str, ...]:
    """Like _str_list, but a string splits on newlines only (tag specs contain commas)."""
    if isinstance(v, str):
        return tuple(x.strip() for x in v.splitlines() if x.strip())
    return _str_list(v)


def _mapping(v: Any) -> dict[str, str]:
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if not isinstance(x, str | int | float | bool):
                raise TypeError("a table of strings")
            out[str(k)] = str(x).lower() if isinstance(x, bool) else str(x)
        return out
    if isinstance(v, str | list):
        return parse_kv_list(_str_list(v), what="entry")
    raise TypeError("a table of strings (or a list of KEY=VALUE)")


def _platforms(v: Any) -> tuple[Platform, ...]:
    items = _str_list(v)
    try:
        return parse_platforms(list(items))
    except ValueError as e:
        raise ValueError(str(e)) from e


def _tags(v: Any) -> tuple[ImageRef, ...]:
    out = []
    for t in _str_list(v):
        try:
            ref = parse_ref(t)
        except ReferenceError as e:
            raise ValueError(str(e)) from e
        if ref.digest:
            raise ValueError(f"{t!r} names a digest: a tag to publish is REGISTRY/REPO:TAG,"
                             " without @sha256:...")
        out.append(ref)
    return tuple(out)


def _engine(v: Any) -> str:
    s = _str(v).strip().lower()
    if s not in {"docker", "podman", "auto"}:
        raise ValueError(f"engine must be one of docker, podman, auto (got {s!r})")
    return s


def _cache(v: Any) -> str:
    s = _str(v)
    if s not in {"none", "registry", "inline"}:
        raise ValueError(f"cache must be one of none, registry, inline (got {s!r})")
    return s


_SCHEMA: dict[str, tuple[str, Callable[[Any], Any]]] = {
    # file key: (Options field, parser)
    "platforms": ("platforms", _platforms),
    "tags": ("tags", _tags),
    "context": ("context", _str),
    "file": ("file", _opt_str),
    "dockerfile": ("file", _opt_str),
    "build-args": ("build_args", _mapping),
    "labels": ("labels", _mapping),
    "build-contexts": ("build_contexts", _mapping),
    "target": ("target", _opt_str),
    "secrets": ("secrets", _lines),  # specs hold commas: one per line in the environment
    "builder": ("builder", _opt_str),
    "docker-context": ("docker_context", _opt_str),
    "engine": ("engine", _engine),
    "provenance": ("provenance", _opt_bool),
    "sbom": ("sbom", _opt_bool),
    "verify": ("verify", _bool),
    "smoke": ("smoke", _opt_str),
    "allow": ("allow", _str_list),
    "cache": ("cache", _cache),
    "no-cache": ("no_cache", _bool),
    "pull": ("pull", _bool),
    "insecure-registries": ("insecure_registries", _str_list),
    "tag-specs": ("tag_specs", _lines),
    "images": ("images", _str_list),
    "meta": ("meta", _mapping),
    "flavor": ("flavor", _lines),
    "nodes": ("nodes", parse_nodes),
}

_TYPE_NAMES: dict[Callable[[Any], Any], str] = {
    _str: "a string", _opt_str: "a string", _bool: "true or false", _opt_bool: "true or false",
    _str_list: "a list of strings", _lines: "a list of strings", _mapping: "a table of strings",
    _platforms: "a list of platforms", _tags: "a list of image references", _cache: "a string",
    _engine: "a string", parse_nodes: "a list of tables",
}


def parse_kv_list(items: tuple[str, ...] | list[str], *, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"{what} {item!r} is not KEY=VALUE")
        k, v = item.split("=", 1)
        if not k:
            raise ValueError(f"{what} {item!r} has an empty key")
        out[k] = v
    return out


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
    """polyarch.toml, else pyproject.toml with a [tool.polyarch] table, in ``start``."""
    for name in ("polyarch.toml", "pyproject.toml"):
        cand = start / name
        if cand.is_file():
            section = _polyarch_table(cand, _load_toml(cand), pyproject=name == "pyproject.toml")
            if section is not None:
                return cand, section
    return None


def read_config(config_path: Path | None, cwd: Path) -> tuple[Path, dict[str, Any]] | None:
    """The polyarch table of ``config_path``, or of the file found in ``cwd``."""
    if config_path is None:
        return find_config(cwd)
    if not config_path.is_file():
        raise ConfigError(f"config file {config_path} not found")
    section = _polyarch_table(config_path, _load_toml(config_path),
                              pyproject=config_path.name == "pyproject.toml")
    return config_path, section or {}


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from e
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from e


def _apply(values: dict[str, Any], key: str, raw: Any, where: str) -> None:
    if key not in _SCHEMA:
        close = difflib.get_close_matches(key, list(_SCHEMA), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(_SCHEMA))}"
        raise ConfigError(f"{where}: unknown key {key!r}", hint=hint)
    name, parser = _SCHEMA[key]
    try:
        values[name] = parser(raw)
    except TypeError:
        raise ConfigError(
            f"{where}: {key!r} must be {_TYPE_NAMES[parser]}, not {type(raw).__name__} {raw!r}"
        ) from None
    except ValueError as e:
        raise ConfigError(f"{where}: {key!r}: {e}") from None


ENV_PREFIX = "POLYARCH_"


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
    values: dict[str, Any] = {"platforms": parse_platforms(list(DEFAULT_PLATFORMS))}
    source = "defaults"

    # 1. file
    found = read_config(config_path, cwd)
    if found is not None:
        path, data = found
        source = str(path)
        for key, raw in data.items():
            if key == "image":
                continue  # several-image projects: read by polyarch.project
            _apply(values, key, raw, f"{path}")

    # 2. environment
    for key in _SCHEMA:
        env_name = ENV_PREFIX + key.upper().replace("-", "_")
        if env_name in env and env[env_name] != "":
            _apply(values, key, env[env_name], f"environment variable {env_name}")

    # 3. command line
    for key, raw in (cli or {}).items():
        if raw is None or raw == () or raw == []:
            continue
        try:
            _apply(values, key, list(raw) if isinstance(raw, tuple) else raw, "command line")
        except ConfigError as e:
            raise UsageError(e.message.replace("command line: ", ""), hint=e.hint) from None

    known = {f.name for f in fields(Options)}
    assert set(values) <= known
    return Options(source=source, **values)
