"""Value kinds of the option table: one parser per kind, used alike for the config
file, the environment and the command line.

A parser takes what TOML, the environment (a string) or click (a string, a tuple of
strings, a bool) gives and returns the value of the :class:`~polyarch.config.Options`
field. It raises ``TypeError`` for a value of the wrong type (the loader names the
expected type) and ``ValueError`` for a bad value (the loader shows the message).

Here: :class:`Kind` and the general kinds (strings, booleans, lists, tables, platforms,
image references, registries, seconds, the smoke command). The kinds of the options
that become the build engine's own flags (secrets, caches, ulimits, ...) are in
:mod:`polyarch.config.build_kinds`; those of the run's settings in
:mod:`polyarch.config.setting_kinds`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from polyarch.nodespec import parse_nodes
from polyarch.platforms import Platform, parse_platforms
from polyarch.refs import ImageRef, ReferenceError, parse_ref


@dataclass(frozen=True)
class Kind:
    parse: Callable[[Any], Any]
    type_name: str  # "a list of strings": for "'x' must be <type_name>"
    env_form: str  # how a value is written in a POLYARCH_* variable, for the docs
    #: The TOML types a config file may give (None: whatever ``parse`` takes). The
    #: environment's string forms ("yes", "a,b") are not accepted in a file, where
    #: a boolean is a TOML boolean and a list a TOML array.
    file_types: tuple[type, ...] | None = None

    def check_file_value(self, v: Any) -> None:
        """Raise ``TypeError`` when a config file gives ``v`` in the wrong TOML type."""
        if self.file_types is not None and not isinstance(v, self.file_types):
            raise TypeError(self.type_name)


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError("a string")
    return v


def _opt_str(v: Any) -> str | None:
    return None if v in (None, "") else _str(v)


def _smoke(v: Any) -> str | None:
    """A smoke command; the empty string is a value (run only the ``uname -m`` check).
    It is split into words as a shell would (quotes), checked here."""
    import shlex

    if v is None:
        return None
    s = _str(v)
    try:
        shlex.split(s)
    except ValueError as e:
        raise ValueError(f"smoke command {_short(s)} is not valid shell words: {e}"
                         " (check its quotes)") from None
    return s


def _seconds(v: Any) -> float:
    """A deadline in seconds: a positive number, at most a day."""
    if isinstance(v, bool):
        raise TypeError("a number of seconds")
    number = isinstance(v, int | float) or (
        isinstance(v, str) and re.fullmatch(r"\s*\d{1,6}(\.\d{1,3})?\s*", v) is not None)
    if not number:
        raise TypeError("a number of seconds")
    n = float(v)
    if not 0 < n <= 86400:
        raise TypeError("a number of seconds above 0 and at most 86400")
    return n


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in _TRUE | _FALSE:
        return v.lower() in _TRUE
    raise TypeError("true or false")


def _opt_bool(v: Any) -> bool | None:
    return None if v is None else _bool(v)


def _str_list(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        # Environment form: comma or newline separated.
        return tuple(x.strip() for x in v.replace("\n", ",").split(",") if x.strip())
    if isinstance(v, list | tuple) and all(isinstance(x, str) for x in v):
        return tuple(v)
    raise TypeError("a list of strings")


def _lines(v: Any) -> tuple[str, ...]:
    """Like _str_list, but a string splits on newlines only (specs that hold commas)."""
    if isinstance(v, str):
        return tuple(x.strip() for x in v.splitlines() if x.strip())
    return _str_list(v)


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


def _mapping(v: Any) -> dict[str, str]:
    if isinstance(v, dict):
        # Values are strings: TOML's A = 1 and A = true are refused, not turned into text
        # (a build argument 1.10 would become "1.1").
        if not all(isinstance(x, str) for x in v.values()):
            raise TypeError("a table of strings")
        return {str(k): x for k, x in v.items()}
    if isinstance(v, str | list | tuple):
        return parse_kv_list(_str_list(v), what="entry")
    raise TypeError("a table of strings (or a list of KEY=VALUE)")


def _platforms(v: Any) -> tuple[Platform, ...]:
    return parse_platforms(list(_str_list(v)))


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


def choice(*values: str) -> Kind:
    def parse(v: Any) -> str:
        s = _str(v).strip().lower()
        if s not in values:
            raise ValueError(f"must be one of {', '.join(values)} (got {s!r})")
        return s

    return Kind(parse, "a string", " | ".join(values))


def _short(v: str, limit: int = 60) -> str:
    """``repr(v)``, cut to ``limit`` characters for a message."""
    r = repr(v)
    return r if len(r) <= limit else r[:limit - 4] + "...'"


_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
                   r"|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?$")


def _hosts(v: Any) -> tuple[str, ...]:
    """Registries as ``HOST[:PORT]`` (no scheme, no path)."""
    out = _str_list(v)
    if isinstance(v, list | tuple) and any(not x.strip() for x in out):
        raise ValueError("an empty registry name (HOST[:PORT], e.g. registry.lan:5000)")
    for h in out:
        m = _HOST.match(h)
        if m is None or (m.group("port") is not None and not 0 < int(m.group("port")) < 65536):
            hint = " (without http:// or https://)" if "://" in h else ""
            raise ValueError(f"{_short(h)} is not a registry HOST[:PORT]{hint}, e.g."
                             " registry.lan:5000")
    return out


def _repository(v: Any) -> str | None:
    """A registry (``ghcr.io``, ``127.0.0.1:5000``) or a repository
    (``ghcr.io/team/app``), without tag or digest."""
    s = _opt_str(v)
    if s is None:
        return None
    s = s.strip().rstrip("/")
    if "/" not in s:
        if not re.fullmatch(r"[A-Za-z0-9.-]+(?::\d+)?", s) or not (
                "." in s or ":" in s or s == "localhost"):
            raise ValueError(f"{s!r} is neither a registry (host[:port]) nor a repository"
                             " (registry/path)")
        return s
    try:
        ref = parse_ref(s, default_tag=None)
    except ReferenceError as e:
        raise ValueError(str(e)) from None
    if ref.tag or ref.digest:
        raise ValueError(f"{s!r} has a tag or digest: give the repository only")
    return s


def rehome(ref: ImageRef, repository: str) -> ImageRef:
    """``ref`` moved to ``repository`` (a registry: same path there; a repository: that
    repository), keeping its tag."""
    if "/" not in repository:
        target = parse_ref(f"{repository}/{ref.repository}", default_tag=None)
    else:
        target = parse_ref(repository, default_tag=None)
    return target.with_tag(ref.tag) if ref.tag else target


STR = Kind(_str, "a string", "the value")
OPT_STR = Kind(_opt_str, "a string", "the value")
_BOOLEAN = (bool,)
_ARRAY = (list,)
_TABLE = (dict, list)  # a TOML table, or an array of KEY=VALUE strings
BOOL = Kind(_bool, "true or false", "true | false", _BOOLEAN)
OPT_BOOL = Kind(_opt_bool, "true or false", "true | false", _BOOLEAN)
STR_LIST = Kind(_str_list, "a list of strings", "comma separated", _ARRAY)
LINES = Kind(_lines, "a list of strings", "one per line", _ARRAY)
MAPPING = Kind(_mapping, "a table of strings", "KEY=VALUE, comma separated", _TABLE)
PLATFORMS = Kind(_platforms, "a list of platforms", "comma separated", _ARRAY)
TAGS = Kind(_tags, "a list of image references", "comma separated", _ARRAY)
HOSTS = Kind(_hosts, "a list of strings", "comma separated", _ARRAY)
SMOKE = Kind(_smoke, "a string", "the value")
SECONDS = Kind(_seconds, "a number of seconds", "seconds", (int, float))
REPOSITORY = Kind(_repository, "a string", "the value")
NODES = Kind(parse_nodes, "a list of tables", "JSON")
