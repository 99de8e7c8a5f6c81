"""Builder nodes as the configuration declares them: :class:`NodeSpec` and the parser
of the ``nodes`` key (see :mod:`polyarch.engines.buildx_nodes` for what polyarch does with them).

It sits below :mod:`polyarch.config` and imports only :mod:`polyarch.platforms`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from polyarch.platforms import Platform, parse_platforms

BUILDER = "polyarch"  # the same name as engines.buildx.DEDICATED_BUILDER
DRIVERS = ("docker-container", "remote", "kubernetes")
NODE_KEYS = ("name", "platforms", "endpoint", "driver", "driver-opts", "buildkitd-flags")
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")


@dataclass(frozen=True)
class NodeSpec:
    name: str  # the buildx node name, polyarch-<n>
    platforms: tuple[Platform, ...]
    endpoint: str | None
    driver: str = "docker-container"
    driver_opts: tuple[tuple[str, str], ...] = ()
    buildkitd_flags: str | None = None

    def describe(self) -> str:
        return f"node {self.name} ({self.endpoint or self.driver})"


# -- parsing (the config's parser for the 'nodes' key) -----------------------------------

def parse_nodes(v: Any) -> tuple[NodeSpec, ...]:
    """``nodes`` from a config file (a list of tables or a table of tables) or from the
    environment (the same as JSON). Raises ``TypeError``/``ValueError`` for the config
    loader to report with the key and file."""
    if isinstance(v, str):
        try:
            v = json.loads(v) if v.strip() else []
        except ValueError as e:
            raise ValueError(f"not JSON: {e}") from None
        except RecursionError:
            raise ValueError("not JSON this program reads: nested too deeply") from None
    items: list[tuple[str | None, Any]]
    if isinstance(v, list):
        items = [(None, x) for x in v]
    elif isinstance(v, dict):
        items = [(str(k), x) for k, x in v.items()]
    else:
        raise TypeError("a list of tables")
    nodes: list[NodeSpec] = []
    for i, (key, raw) in enumerate(items):
        nodes.append(_parse_node(i, key, raw))
    names = [n.name for n in nodes]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ValueError(f"two nodes are named {dup}")
    drivers = sorted({n.driver for n in nodes})
    if len(drivers) > 1:
        raise ValueError(f"all nodes of a builder use one driver, these use {', '.join(drivers)}"
                         " (buildx cannot mix drivers in one builder)")
    owner: dict[Platform, str] = {}
    for n in nodes:
        for p in n.platforms:
            if p in owner:
                raise ValueError(f"{p} is given to two nodes ({owner[p]} and {n.name})")
            owner[p] = n.name
    return tuple(nodes)


def _parse_node(i: int, key: str | None, raw: Any) -> NodeSpec:
    where = f"node {key!r}" if key is not None else f"node {i + 1}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a table")
    for k in raw:
        if k not in NODE_KEYS:
            import difflib

            close = difflib.get_close_matches(str(k), NODE_KEYS, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(NODE_KEYS)})"
            raise ValueError(f"{where}: unknown key {k!r}{hint}")
    name = raw.get("name", key if key is not None else str(i))
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{where}: name {name!r} must be letters, digits, '.', '_' or '-'")
    if not name.startswith(f"{BUILDER}-"):
        name = f"{BUILDER}-{name}"
    driver = raw.get("driver", "docker-container")
    if driver not in DRIVERS:
        raise ValueError(f"{where}: driver {driver!r} is not one of {', '.join(DRIVERS)}")
    plats_raw = raw.get("platforms")
    if isinstance(plats_raw, str):
        plats_raw = [plats_raw]
    if not isinstance(plats_raw, list) or not plats_raw or not all(
            isinstance(p, str) for p in plats_raw):
        raise ValueError(f"{where}: 'platforms' must be a non-empty list of platforms")
    try:
        platforms = parse_platforms(plats_raw)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    endpoint = raw.get("endpoint")
    if endpoint is not None and (not isinstance(endpoint, str) or not endpoint.strip()):
        raise ValueError(f"{where}: 'endpoint' must be a non-empty string")
    if isinstance(endpoint, str) and "://" in endpoint:
        try:
            _ = urlsplit(endpoint).port  # raises on a bad port
        except ValueError:
            raise ValueError(f"{where}: bad port in endpoint {endpoint!r}") from None
    if endpoint is None and driver != "kubernetes":
        raise ValueError(f"{where}: 'endpoint' is required for the {driver} driver (a docker"
                         " context name, ssh://user@host, tcp://host:port)")
    opts_raw = raw.get("driver-opts", {})
    pairs: list[tuple[str, str]] = []
    if isinstance(opts_raw, dict):
        for k, x in opts_raw.items():
            if not isinstance(x, str | int | float | bool):
                raise ValueError(f"{where}: driver option {k!r} must be a string")
            pairs.append((str(k), str(x).lower() if isinstance(x, bool) else str(x)))
    elif isinstance(opts_raw, list) and all(isinstance(x, str) and "=" in x for x in opts_raw):
        pairs = [(x.split("=", 1)[0], x.split("=", 1)[1]) for x in opts_raw]
    else:
        raise ValueError(f"{where}: 'driver-opts' must be a table or a list of KEY=VALUE")
    flags = raw.get("buildkitd-flags")
    if flags is not None and not isinstance(flags, str):
        raise ValueError(f"{where}: 'buildkitd-flags' must be a string")
    return NodeSpec(name, platforms, endpoint.strip() if endpoint else None, driver,
                    tuple(pairs), flags)
