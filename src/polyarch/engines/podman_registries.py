"""Plain-HTTP registries for one podman build: a temporary ``registries.conf``.

Docker speaks plain HTTP to loopback registries by itself and to those in its daemon's
``insecure-registries``; podman speaks HTTPS to every registry unless its
``registries.conf`` marks one ``insecure``. ``--tls-verify=false`` would turn TLS off for
every registry the build pulls from, so a build gets a configuration of its own instead:
the file podman would read (``$CONTAINERS_REGISTRIES_CONF``, else
``~/.config/containers/registries.conf``, else ``/etc/containers/registries.conf``),
copied verbatim, plus one ``[[registry]] location = HOST insecure = true`` table per
plain-HTTP registry, passed through ``CONTAINERS_REGISTRIES_CONF`` (podman then still
reads the ``registries.conf.d`` drop-ins next to the system file). The user's files are
never changed; the copy lives in the build's temporary directory.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from polyarch.errors import EnvironmentProblem

SYSTEM_CONF = Path("/etc/containers/registries.conf")
#: A registries.conf larger than this is not a configuration file.
MAX_CONF_BYTES = 1 << 20

#: A loopback registry host in a Dockerfile, a build argument or a context, as a whole
#: word: ``localhost``, ``127.x.y.z`` or ``[::1]``, with an optional port.
_LOOPBACK = re.compile(r"(?<![\w.-])(localhost|127(?:\.\d{1,3}){3}|\[::1\])(:\d{1,5})?"
                       r"(?![\w.-]|:\d)")


def loopback_hosts(texts: Iterable[str]) -> set[str]:
    """Every loopback ``host[:port]`` named in ``texts`` (Docker treats all of them as
    insecure; naming one that the build does not pull from changes nothing)."""
    found: set[str] = set()
    for t in texts:
        for m in _LOOPBACK.finditer(t):
            found.add(m.group(1).lower() + (m.group(2) or ""))
    return found


def effective_conf(env: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """The registries.conf podman reads, as containers/image picks it."""
    env = os.environ if env is None else env
    given = env.get("CONTAINERS_REGISTRIES_CONF", "")
    if given:
        return Path(given)
    user = (home or Path.home()) / ".config/containers/registries.conf"
    return user if user.is_file() else SYSTEM_CONF


def _read(path: Path) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONF_BYTES + 1)
    except FileNotFoundError:
        return ""
    except OSError as e:
        raise EnvironmentProblem(f"cannot read podman's registries configuration {path}:"
                                 f" {e.strerror}") from None
    if len(data) > MAX_CONF_BYTES:
        raise EnvironmentProblem(f"podman's registries configuration {path} is over"
                                 f" {MAX_CONF_BYTES} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise EnvironmentProblem(f"podman's registries configuration {path} is not UTF-8"
                                 ) from None


def _declared(text: str, path: Path) -> tuple[set[str], bool]:
    """Locations (and prefixes) the file declares, and whether it is in the old (v1)
    format, which cannot be mixed with ``[[registry]]`` tables."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise EnvironmentProblem(f"podman's registries configuration {path} is not valid"
                                 f" TOML: {e}") from None
    seen: set[str] = set()
    regs = doc.get("registry")
    for r in regs if isinstance(regs, list) else []:
        if isinstance(r, dict):
            for key in ("location", "prefix"):
                if isinstance(r.get(key), str):
                    seen.add(r[key].strip().lower())
    return seen, isinstance(doc.get("registries"), dict)


def _toml_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_conf(hosts: Iterable[str], dest: Path, *, source: Path | None = None) -> Path | None:
    """Write the layered configuration to ``dest``; None when there is nothing to add
    (no host, every host already declared, or an old-format file left as it is)."""
    src = source or effective_conf()
    text = _read(src)
    declared, v1 = _declared(text, src)
    add = sorted(h for h in {h.strip().lower() for h in hosts if h.strip()}
                 if h not in declared)
    if not add or v1:
        return None
    parts = [text.rstrip("\n"), "", f"# polyarch: plain-HTTP registries of this build (over {src})"]
    for h in add:
        parts += ["[[registry]]", f"location = {_toml_string(h)}", "insecure = true", ""]
    dest.write_text("\n".join(parts).lstrip("\n"))
    return dest
