"""The engine look-ups of a build (``docker info``, ``docker buildx inspect``), kept
between commands while nothing they depend on changed.

Both take 40-70 ms alone and about twice that beside the imports of a build on a
2-core machine, on the path to every build. Their answers change only when the engine
or its configuration does, so a command keeps them in its cache directory (``engine/``)
with a fingerprint of everything they depend on that a client can see, and the next
command takes them instead of asking while the fingerprint is the same and the answer
is less than :data:`MAX_AGE` old. The fingerprint (:func:`fingerprint`):

- the command line and the environment (``DOCKER_*``, ``BUILDX_*``, ``PATH``, ``HOME``);
- the daemon's socket (device, inode, change time: a daemon that restarts, to take a
  new configuration or version, makes it again), and the socket must accept a
  connection when the answer is taken (a daemon that stopped is asked, and its error
  told as before);
- the docker CLI's configuration (``config.json``, the context's ``meta.json``), the
  buildx builder state (``buildx/current``, ``buildx/instances``, ``buildx/defaults``);
- the ``docker`` executable on ``PATH`` and every ``docker-buildx`` plugin the CLI
  could run (size, change time);
- the emulators registered with the kernel (``/proc/sys/fs/binfmt_misc``: QEMU added
  or removed changes what a builder can build).

Only a daemon on a local socket is remembered (not ``tcp://`` or ``ssh://``, whose
daemon a client cannot see restart), and only the default ``docker`` driver's builder
(a ``docker-container`` builder's container can stop without any of the above
changing). What is kept is only what polyarch reads: from ``docker info`` the server's
version, architecture, OS, storage driver status, errors and the CLI plugins' names,
paths and versions (not its proxies or registry configuration); from ``buildx
inspect`` the builder's and its nodes' names, driver, endpoint, status and platforms.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from polyarch import proc
from polyarch.engines import buildx_plugin

#: Seconds an answer is taken after it was given (then the engine is asked again).
MAX_AGE = 900.0
#: Largest file read for the fingerprint or as a kept answer.
MAX_FILE = 1 << 20
#: The kernel's registered binary formats (emulators).
BINFMT = Path("/proc/sys/fs/binfmt_misc")
DEFAULT_SOCKET = "/var/run/docker.sock"
#: Longest wait for the daemon's socket to accept a connection (seconds).
CONNECT_TIMEOUT = 0.5
_INFO_KEYS = ("ServerVersion", "Architecture", "OSType", "DriverStatus", "ServerErrors")
_INSPECT_KEYS = ("Name", "Driver", "Nodes", "Endpoint", "Status", "Platforms",
                 "BuildKit version", "BuildKit")


def cache_root(env: Mapping[str, str]) -> Path:
    """Where answers are kept: ``engine/`` of the cache directory the environment names
    (``POLYARCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/polyarch``, else
    ``~/.cache/polyarch``); the command's settings may name another, whose answers are
    then kept there (:func:`keep` is given it)."""
    chosen = env.get("POLYARCH_CACHE_DIR")
    if chosen:
        return Path(chosen).expanduser() / "engine"
    xdg = env.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "polyarch" / "engine"


def _read(path: str | Path) -> bytes | None:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE + 1)
    except OSError:
        return None
    return data if len(data) <= MAX_FILE else b"(too large)"


def _stat(path: str | Path) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _listing(d: Path) -> list[tuple[str, tuple[int, ...] | None]]:
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return []
    return [(n, _stat(d / n)) for n in names]


def docker_socket(argv: Sequence[str], env: Mapping[str, str]) -> tuple[str, bytes] | None:
    """The daemon socket these command lines reach, with the context file that names it,
    or None when it is not a local socket (or cannot be told)."""
    conf = buildx_plugin.config_dir(env)
    host = env.get("DOCKER_HOST")
    context = None
    if "--context" in argv:
        i = list(argv).index("--context")
        context = argv[i + 1] if i + 1 < len(argv) else None
    context = context or env.get("DOCKER_CONTEXT")
    if context is None and not host:
        raw = _read(os.path.join(conf, "config.json"))
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            return None
        context = doc.get("currentContext") if isinstance(doc, dict) else None
    meta = b""
    if context and context != "default":
        name = hashlib.sha256(context.encode()).hexdigest()
        raw_meta = _read(os.path.join(conf, "contexts", "meta", name, "meta.json"))
        try:
            endpoints = json.loads(raw_meta or b"")["Endpoints"]["docker"]
            host = str(endpoints["Host"])
        except (ValueError, KeyError, TypeError):
            return None
        meta = raw_meta or b""
    if not host:
        return DEFAULT_SOCKET, meta
    return (host[len("unix://"):], meta) if host.startswith("unix://") else None


def fingerprint(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """What the answer of ``argv`` depends on, hashed; None when it is not remembered
    (see the module's documentation)."""
    sock = docker_socket(argv, env)
    if sock is None:
        return None
    conf = Path(buildx_plugin.config_dir(env))
    bx = conf / "buildx"
    docker = _which("docker", env.get("PATH", ""))
    parts: list[object] = [
        list(argv),
        _env_key(env),
        sock[0], _stat(sock[0]), sock[1],
        _read(conf / "config.json"), _read(bx / "current"),
        _listing(bx / "instances"), _listing(bx / "defaults"),
        docker, _stat(docker) if docker else None,
        [(d, _stat(os.path.join(d, "docker-buildx")))
         for d in (str(conf / "cli-plugins"), *buildx_plugin.SYSTEM_DIRS)],
        [(n, (_read(BINFMT / n) or b"").split(b"\n", 1)[0]) for n, _ in _listing(BINFMT)],
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _which(name: str, path: str) -> str | None:
    for d in path.split(os.pathsep):
        candidate = os.path.join(d or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _env_key(env: Mapping[str, str]) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in env.items()
                  if k.startswith(("DOCKER_", "BUILDX_")) or k in ("PATH", "HOME"))


def _file(root: Path, argv: Sequence[str], env: Mapping[str, str]) -> Path:
    """One file per command line and environment: a new fingerprint replaces the
    answer kept under the old one."""
    return root / (hashlib.sha256(repr((list(argv), _env_key(env))).encode())
                   .hexdigest()[:32] + ".json")


def prune(root: Path, now: float | None = None) -> None:
    """Remove the answers no command will take any more (older than :data:`MAX_AGE`)."""
    now = time.time() if now is None else now
    with contextlib.suppress(OSError):
        for e in os.scandir(root):
            with contextlib.suppress(OSError):
                if now - e.stat(follow_symlinks=False).st_mtime > max(MAX_AGE, 3600.0):
                    os.unlink(e.path)


def recall(argv: Sequence[str], env: Mapping[str, str], fp: str | None) -> proc.Result | None:
    """The kept answer of ``argv`` for fingerprint ``fp`` if it is fresh and the
    daemon's socket accepts a connection now, else None."""
    if fp is None:
        return None
    raw = _read(_file(cache_root(env), argv, env))
    try:
        doc = json.loads(raw or b"")
        if (doc["fingerprint"] != fp or list(doc["argv"]) != list(argv)
                or not 0 <= time.time() - float(doc["at"]) <= MAX_AGE):
            return None
        stdout = str(doc["stdout"])
    except (ValueError, KeyError, TypeError):
        return None
    sock = docker_socket(argv, env)
    if sock is None or not _accepts(sock[0]):
        return None
    return proc.Result(tuple(argv), 0, stdout, "")


def _accepts(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(CONNECT_TIMEOUT)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def reduced(argv: Sequence[str], stdout: str) -> str | None:
    """The part of an answer polyarch reads (see the module's documentation), or None
    when it is not kept (not a look-up of a build, another driver than ``docker``)."""
    if "info" in argv and "buildx" not in argv[0] and "buildx" not in argv:
        try:
            doc = json.loads(stdout)
        except ValueError:
            return None
        if not isinstance(doc, dict) or doc.get("ServerErrors") or not doc.get("ServerVersion"):
            return None  # (the daemon did not answer: asked again next time)
        out = {k: doc[k] for k in _INFO_KEYS if k in doc}
        plugins = (doc.get("ClientInfo") or {}).get("Plugins") if isinstance(
            doc.get("ClientInfo"), dict) else None
        out["ClientInfo"] = {"Plugins": [
            {k: p.get(k) for k in ("Name", "Path", "Version")}
            for p in plugins or [] if isinstance(p, dict)]}
        return json.dumps(out)
    if "inspect" in argv:
        lines = [ln for ln in stdout.splitlines()
                 if ln.partition(":")[0].strip() in _INSPECT_KEYS and not ln.startswith(" ")]
        drivers = [ln.partition(":")[2].strip() for ln in lines if ln.startswith("Driver:")]
        return "\n".join(lines) + "\n" if drivers == ["docker"] else None
    return None


def keep(argv: Sequence[str], env: Mapping[str, str], fp: str | None, result: proc.Result,
         root: Path | None = None) -> None:
    """Keep ``result`` of ``argv`` (fingerprint ``fp``, taken before it ran) for the
    next commands, in ``root`` (default: :func:`cache_root`). Never fails a command."""
    if fp is None or not result.ok:
        return
    stdout = reduced(argv, result.stdout)
    if stdout is None:
        return
    root = cache_root(env) if root is None else root
    target = _file(root, argv, env)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    with contextlib.suppress(OSError):
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"fingerprint": fp, "argv": list(argv), "at": time.time(),
                       "stdout": stdout}, f)
        os.replace(tmp, target)
    with contextlib.suppress(OSError):
        tmp.unlink()
