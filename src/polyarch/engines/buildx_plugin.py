"""The buildx plugin the docker CLI would run, to run it directly.

``docker buildx build ...`` starts the docker CLI, which runs the plugin once to read
its metadata and then again for the command. Run directly (``docker-buildx build
...``, which buildx supports as its standalone mode, with the same builders, contexts,
configuration and credentials), the plugin starts once: about 40 ms less for every
buildx command on a 2-core machine, on the way to every build.

The search is the docker CLI's on Linux and macOS: ``cli-plugins`` in the CLI's
configuration directory (``$DOCKER_CONFIG``, else ``~/.docker``), then
``/usr/local/lib``, ``/usr/local/libexec``, ``/usr/lib`` and ``/usr/libexec``
``docker/cli-plugins``; the first executable ``docker-buildx`` is the one. Where that
could differ from the CLI's own choice, polyarch runs ``docker buildx`` as before:
when the CLI's configuration names more plugin directories (``cliPluginsExtraDirs``,
searched before or after these by CLI version), when a docker context is named on the
command line (the standalone plugin takes it only from the environment, where
``DOCKER_HOST`` would win), and on Windows. ``docker info``, which every preflight
runs, lists the path of the plugin the CLI uses; :class:`~polyarch.engines.buildx.Buildx`
goes back to ``docker buildx`` when it is another.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

SYSTEM_DIRS = ("/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
               "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")
#: Largest docker CLI configuration file read (it holds credentials helpers and the
#: like: a few KiB).
MAX_CONFIG = 1 << 20


def config_dir(env: Mapping[str, str]) -> str:
    return env.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def _extra_dirs(conf_dir: str) -> bool:
    """Whether the CLI's configuration names plugin directories of its own (an
    unreadable or broken configuration counts as yes: the CLI is asked instead)."""
    path = os.path.join(conf_dir, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG + 1)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    if len(raw) > MAX_CONFIG:
        return True
    try:
        doc = json.loads(raw or b"{}")
    except ValueError:
        return True
    return not isinstance(doc, dict) or bool(doc.get("cliPluginsExtraDirs"))


def find(env: Mapping[str, str] | None = None) -> str | None:
    """The path of the buildx plugin the docker CLI would run, or ``None`` where polyarch
    should run ``docker buildx`` instead (see the module's docstring)."""
    if os.name != "posix":
        return None
    env = os.environ if env is None else env
    conf = config_dir(env)
    if _extra_dirs(conf):
        return None
    for d in (os.path.join(conf, "cli-plugins"), *SYSTEM_DIRS):
        candidate = os.path.join(d, "docker-buildx")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def as_docker(argv: list[str]) -> list[str]:
    """A command line as the docker CLI would run it: ``docker buildx ...`` for the
    plugin run directly (what a dry run shows, to be run anywhere)."""
    if argv and os.path.basename(argv[0]) == "docker-buildx":
        return ["docker", "buildx", *argv[1:]]
    return argv


def listed_path(info_json: str) -> str | None:
    """The path of the buildx plugin in ``docker info --format '{{json .}}'`` output
    (``ClientInfo.Plugins``), or ``None`` when it is not listed."""
    try:
        plugins = json.loads(info_json)["ClientInfo"]["Plugins"]
    except (ValueError, KeyError, TypeError):
        return None
    for p in plugins if isinstance(plugins, list) else []:
        if isinstance(p, dict) and p.get("Name") == "buildx" and p.get("Path"):
            return str(p["Path"])
    return None
