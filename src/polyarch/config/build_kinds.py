"""Kinds of the options that become the build engine's own flags: buildx's (and
podman's) spec strings for secrets, ssh, caches, attestations, annotations, named
contexts, the network, ulimits, sizes and entitlements, checked here as the engine
would read them; and polyarch's ``--allow`` (verify exceptions), which refuses an
entitlement's name that buildx's ``--allow`` takes.

The parsers follow :mod:`polyarch.config.kinds` (``TypeError`` for a wrong type,
``ValueError`` for a bad value).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from polyarch.config.kinds import (
    _ARRAY,
    _FALSE,
    _TABLE,
    _TRUE,
    Kind,
    _lines,
    _mapping,
    _opt_str,
    _short,
    _str_list,
)
from polyarch.platforms import parse_platforms


def _contexts(v: Any) -> dict[str, str]:
    """Named build contexts, NAME=VALUE as buildx takes them (``docker-image://REF``,
    ``oci-layout://PATH[:TAG|@DIGEST]``, a directory, a URL); values pass unchanged."""
    out = _mapping(v)
    for name, value in out.items():
        if not value:
            raise ValueError(f"build context {name!r} has no value (NAME=docker-image://REF,"
                             " oci-layout://PATH, a directory or a URL)")
        if any(c.isspace() for c in name):
            raise ValueError(f"build context name {name!r} contains white space")
    return out


def _bool_or_spec(v: Any) -> bool | str | None:
    """buildx's ``--provenance``/``--sbom`` value: true, false, or attestation options
    (``mode=max``, ``generator=IMAGE``) passed through unchanged."""
    if v is None or isinstance(v, bool):
        return v
    if not isinstance(v, str):
        raise TypeError("true, false or attestation options")
    if v.lower() in _TRUE | _FALSE:
        return v.lower() in _TRUE
    if "=" not in v:
        raise ValueError(f"{v!r} is neither true/false nor KEY=VALUE options (mode=max,"
                         " generator=IMAGE)")
    return v


_ANNOTATION_TYPES = {"manifest", "index", "manifest-descriptor", "index-descriptor"}
_ANNOTATION = re.compile(r"^(?:(?P<types>[a-z-]+(?:,[a-z-]+)*)(?:\[(?P<plats>[^\]]*)\])?:)?"
                         r"(?P<key>[^=:\s][^=\s]*)=(?P<value>.*)$", re.S)


def _annotations(v: Any) -> tuple[str, ...]:
    """buildx ``--annotation`` values: ``[TYPE[,TYPE][\\[PLATFORM\\]]:]KEY=VALUE`` with
    TYPE manifest (the default), index, manifest-descriptor, index-descriptor."""
    out = _lines(v)
    for a in out:
        m = _ANNOTATION.match(a)
        if m is None:
            raise ValueError(f"annotation {a!r} is not [TYPE:]KEY=VALUE (e.g."
                             " index:org.opencontainers.image.description=...)")
        types = (m.group("types") or "").split(",") if m.group("types") else []
        bad = [t for t in types if t not in _ANNOTATION_TYPES]
        if bad:
            raise ValueError(f"annotation {a!r}: unknown type {bad[0]!r} (one of"
                             f" {', '.join(sorted(_ANNOTATION_TYPES))})")
        if m.group("plats"):
            try:
                parse_platforms(m.group("plats").split(","))
            except ValueError as e:
                raise ValueError(f"annotation {a!r}: {e}") from None
    return out


_SIZE = re.compile(r"^(?P<n>\d{1,20}(?:\.\d{1,20})?)\s*(?P<unit>[kmgtp]?)(?:i?b)?$", re.I)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def _size(v: Any) -> str | None:
    """A size as docker takes it (bytes, or 64m, 2g); at most what a signed 64-bit
    number of bytes holds."""
    s = _opt_str(v)
    if s is None:
        return None
    m = _SIZE.match(s.strip())
    if m is None or float(m.group("n")) * _UNITS[m.group("unit").lower()] >= 2**63:
        raise ValueError(f"{_short(s)} is not a size (bytes, or with a unit: 64m, 2g;"
                         " less than 8 EiB)")
    return s.strip()


def csv_fields(spec: str, what: str) -> dict[str, str]:
    """The KEY=VALUE fields of a buildx spec (``type=registry,ref=...``), read as buildx
    reads them (CSV: a field may be quoted); keys lower-cased. Every field must be
    KEY=VALUE with a key."""
    import csv

    try:
        rows = list(csv.reader([spec], strict=True))
    except csv.Error as e:
        raise ValueError(f"{what} {_short(spec)} is not valid: {e}") from None
    out: dict[str, str] = {}
    for field in rows[0] if rows else []:
        key, sep, value = field.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} {_short(spec)}: {_short(field)} is not KEY=VALUE")
        out[key.strip().lower()] = value
    return out


def _secrets(v: Any) -> tuple[str, ...]:
    """buildx ``--secret`` values: ``id=ID[,src=FILE|,env=VAR][,type=file|env]`` (whether
    FILE exists is checked before the build, by preflight)."""
    out = _lines(v)
    for spec in out:
        f = csv_fields(spec, "secret")
        bad = sorted(set(f) - {"id", "src", "source", "env", "type", "required"})
        if bad:
            raise ValueError(f"secret {_short(spec)}: unknown key {bad[0]!r} (id, src, env,"
                             " type)")
        if f.get("type", "file") not in ("file", "env"):
            raise ValueError(f"secret {_short(spec)}: type must be file or env")
        if not (f.get("id") or f.get("src") or f.get("source") or f.get("env")):
            raise ValueError(f"secret {_short(spec)} names no id, src or env"
                             " (id=npmrc,src=$HOME/.npmrc or id=TOKEN,env=TOKEN)")
    return out


def secret_file(spec: str) -> str | None:
    """The file a ``--secret`` spec reads (``src=``/``source=``, type file), if any."""
    f = csv_fields(spec, "secret")
    if f.get("type") == "env":
        return None
    return f.get("src") or f.get("source") or None


def _ssh(v: Any) -> tuple[str, ...]:
    """buildx ``--ssh`` values: ``default|ID[=SOCKET|KEY[,KEY]]`` (whether the paths
    exist is checked before the build, by preflight)."""
    out = _lines(v)
    for spec in out:
        ident, sep, paths = spec.partition("=")
        if not ident.strip() or any(c.isspace() or c == "," for c in ident):
            raise ValueError(f"ssh {_short(spec)}: no ID before '=' (default, or a name that"
                             " RUN --mount=type=ssh,id=NAME uses)")
        if sep and not all(p.strip() for p in paths.split(",")):
            raise ValueError(f"ssh {_short(spec)}: an empty path after '=' (an agent socket"
                             " or key files, comma separated)")
    return out


def ssh_paths(spec: str) -> list[str]:
    """The agent socket or key files a ``--ssh`` spec names."""
    _ident, sep, paths = spec.partition("=")
    return [p.strip() for p in paths.split(",")] if sep else []


#: ``--network`` values: BuildKit's (docker), and podman's own.
NETWORKS = ("default", "none", "host", "bridge", "private", "slirp4netns", "pasta")


def _network(v: Any) -> str | None:
    s = _opt_str(v)
    if s is None:
        return None
    base = s.split(":", 1)[0]
    if s in NETWORKS or base in ("slirp4netns", "pasta") or (
            base in ("ns", "container") and s[len(base) + 1:]):
        return s
    raise ValueError(f"network {_short(s)} is not one of default, none, host (podman also"
                     " takes bridge, private, slirp4netns, pasta, ns:PATH, container:ID)")


_ATTEST_TYPES = ("provenance", "sbom")


def _attest(v: Any) -> tuple[str, ...]:
    out = _lines(v)
    for spec in out:
        f = csv_fields(spec, "attestation")
        if f.get("type") not in _ATTEST_TYPES:
            raise ValueError(f"attestation {_short(spec)}: type must be provenance or sbom"
                             " (type=provenance,mode=max; type=sbom)")
    return out


_CACHE_TYPES = {"registry": "ref", "local": None, "gha": None, "s3": None, "azblob": None,
                "inline": None}


def _cache(direction: str) -> Callable[[Any], tuple[str, ...]]:
    """``--cache-from`` (``direction`` "from") or ``--cache-to`` ("to") values: a bare
    reference, or ``type=...`` with what that type needs (registry: ref; local: src to
    read, dest to write)."""
    local_key = "src" if direction == "from" else "dest"

    def parse(v: Any) -> tuple[str, ...]:
        out = _lines(v)
        for spec in out:
            if "=" not in spec:
                continue  # a bare reference: type=registry,ref=SPEC
            f = csv_fields(spec, f"cache-{direction}")
            typ = f.get("type")
            if typ not in _CACHE_TYPES or (typ == "inline" and direction == "from"):
                kinds = [t for t in _CACHE_TYPES if direction == "to" or t != "inline"]
                raise ValueError(f"cache-{direction} {_short(spec)}: type must be one of"
                                 f" {', '.join(kinds)}")
            need = "ref" if typ == "registry" else local_key if typ == "local" else None
            if need and not f.get(need):
                raise ValueError(f"cache-{direction} {_short(spec)}: type={typ} needs"
                                 f" {need}=...")
        return out

    return parse


ULIMIT_NAMES = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
                "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")
_ULIMIT = re.compile(r"^(?P<name>[a-z]+)=(?P<soft>-?\d+)(?::(?P<hard>-?\d+))?$")


def _ulimits(v: Any) -> tuple[str, ...]:
    out = _str_list(v)
    for u in out:
        m = _ULIMIT.match(u)
        if m is None or len(u) > 60:
            raise ValueError(f"ulimit {_short(u)} is not NAME=SOFT[:HARD] (e.g."
                             " nofile=1024:2048)")
        if m.group("name") not in ULIMIT_NAMES:
            raise ValueError(f"ulimit {u!r}: unknown limit {m.group('name')!r} (one of"
                             f" {', '.join(ULIMIT_NAMES)})")
        soft, hard = (int(x) if x is not None else None for x in m.group("soft", "hard"))
        limits = [x for x in (soft, hard) if x is not None]
        if any(x < -1 or x >= 2**63 for x in limits):
            raise ValueError(f"ulimit {u!r}: a limit is a number from 0 (or -1: unlimited)")
        if soft is not None and hard is not None and hard != -1 and (soft == -1 or soft > hard):
            raise ValueError(f"ulimit {u!r}: the soft limit {soft} is above the hard limit"
                             f" {hard}", )
    return out


#: buildx entitlements (``docker buildx build --allow``); those whose name polyarch's
#: own ``--allow`` (verify exceptions) would otherwise swallow silently.
ENTITLEMENTS = ("network.host", "security.insecure", "device")


def _entitlements(v: Any) -> tuple[str, ...]:
    out = _str_list(v)
    for e in out:
        if e.split("=", 1)[0] not in ENTITLEMENTS:
            raise ValueError(f"entitlement {e!r} is not one of {', '.join(ENTITLEMENTS)}")
    return out


def _allow(v: Any) -> tuple[str, ...]:
    """Verify exceptions: ``GLOB`` (every platform) or ``PLATFORM=GLOB`` (that platform
    only). Returned normalised: ``linux/arm64=GLOB``."""
    out = []
    for item in _str_list(v):
        if item.split("=", 1)[0] in ENTITLEMENTS:
            raise ValueError(f"{item!r} is a buildx entitlement; --allow takes verify"
                             f" exceptions (PATH_GLOB or PLATFORM=PATH_GLOB): use"
                             f" --allow-entitlement {item} (file key 'entitlements')")
        if "=" in item:
            plat, glob = item.split("=", 1)
            try:
                (p,) = parse_platforms([plat])
            except ValueError as e:
                raise ValueError(f"{item!r}: before '=' comes a platform: {e}") from None
            if not glob:
                raise ValueError(f"{item!r} has no glob after '='")
            out.append(f"{p}={glob}")
        else:
            out.append(item)
    return tuple(out)


CONTEXTS = Kind(_contexts, "a table of strings", "NAME=VALUE, comma separated", _TABLE)
BOOL_OR_SPEC = Kind(_bool_or_spec, "true, false or attestation options",
                    "true | false | KEY=VALUE,...")
ANNOTATIONS = Kind(_annotations, "a list of strings", "one per line", _ARRAY)
SIZE = Kind(_size, "a string", "bytes or 64m, 2g")
SECRETS = Kind(_secrets, "a list of strings", "one per line", _ARRAY)
SSH = Kind(_ssh, "a list of strings", "one per line", _ARRAY)
NETWORK = Kind(_network, "a string", "the value")
ATTEST = Kind(_attest, "a list of strings", "one per line", _ARRAY)
CACHE_FROM = Kind(_cache("from"), "a list of strings", "one per line", _ARRAY)
CACHE_TO = Kind(_cache("to"), "a list of strings", "one per line", _ARRAY)
ULIMITS = Kind(_ulimits, "a list of strings", "comma separated", _ARRAY)
ENTITLEMENT_LIST = Kind(_entitlements, "a list of strings", "comma separated", _ARRAY)
ALLOW = Kind(_allow, "a list of strings", "comma separated", _ARRAY)
