"""The engine look-ups of a build (``docker info``, ``docker buildx inspect``), made
cheaper with what an earlier command learnt, never trusted beyond what a client can
check.

Both commands take 40-70 ms alone and about twice that beside the imports of a build on
a 2-core machine, on the path to every build. Most of ``docker info``'s time is the CLI
(it starts every CLI plugin to list it); most of ``buildx inspect``'s is buildx asking
BuildKit. So, for a daemon on a local socket:

- ``docker info`` is answered by the daemon itself, asked fresh every time (``GET
  /info`` on its socket, a few milliseconds), with the CLI's part of the answer (the
  CLI plugins' names, paths and versions) kept from an earlier ``docker info`` while
  the docker executable, the CLI's configuration and every ``docker-buildx`` plugin
  file it could run are unchanged (:func:`client_fingerprint`);
- ``buildx inspect`` is kept while buildx's builder state (``$BUILDX_CONFIG``, else
  ``$DOCKER_CONFIG/buildx``: the current builder and the builder definitions), the
  buildx plugin, the emulators registered with the kernel (``/proc/sys/fs/binfmt_misc``)
  and the daemon's own description of itself (version, ID, storage driver and its
  status, kernel, runtime, cgroups: :func:`daemon_key`, from the fresh ``/info``) are
  what they were when it was kept, for at most :data:`MAX_AGE`, and only for the
  ``docker`` driver's builder (a ``docker-container`` builder's container can change
  without any of that changing).

When the daemon does not answer ``/info`` (stopped, or a socket that a supervisor
holds for a daemon that failed to start), both commands run as before. What is kept
(under ``engine/`` of the cache directory the environment names, one file per command
line) is only what polyarch reads, never the daemon's proxies or registry settings. A
preflight that fails on a kept answer forgets it and asks again
(:meth:`polyarch.engines.buildx.Buildx.preflight`).

Nothing is kept for a daemon on ``tcp://`` or ``ssh://``, on Windows, for docker
installed as a snap (its CLI keeps its configuration elsewhere), or when the cache
directory comes from a config file's ``cache_dir`` (answers are found where the
environment says, before any config file is read).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from polyarch.engines import buildx_plugin

#: Seconds a kept ``buildx inspect`` answer (or the CLI plugin list) is taken after it
#: was given; then the engine is asked again.
MAX_AGE = 900.0
#: Largest file read for a fingerprint or as a kept answer, and largest ``/info`` answer.
MAX_FILE = 1 << 20
#: The kernel's registered binary formats (emulators).
BINFMT = Path("/proc/sys/fs/binfmt_misc")
DEFAULT_SOCKET = "/var/run/docker.sock"
#: Longest wait for the daemon's ``/info`` answer (seconds); then the commands run.
INFO_TIMEOUT = 2.0
#: The environment that decides what the commands answer (not, say, a password a CI
#: job keeps in a DOCKER_* variable: nothing of it is hashed into a file name).
ENV = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH",
       "DOCKER_TLS_VERIFY", "DOCKER_TLS", "DOCKER_API_VERSION", "DOCKER_CLI_EXPERIMENTAL",
       "BUILDX_CONFIG", "BUILDX_BUILDER", "BUILDX_EXPERIMENTAL", "PATH", "HOME")
#: What of ``docker info`` polyarch reads (besides the CLI plugins).
_INFO_KEYS = ("ServerVersion", "Architecture", "OSType", "DriverStatus", "ServerErrors")
#: What of the daemon's description a builder's answer depends on.
_DAEMON_KEYS = ("ID", "ServerVersion", "Driver", "DriverStatus", "KernelVersion",
                "Architecture", "OSType", "DefaultRuntime", "CgroupDriver", "CgroupVersion",
                "ExperimentalBuild", "Isolation")
_INSPECT_KEYS = ("Name", "Driver", "Nodes", "Endpoint", "Status", "Platforms",
                 "BuildKit version", "BuildKit")


def is_info(argv: Sequence[str]) -> bool:
    return "info" in argv and "buildx" not in argv and "buildx" not in os.path.basename(argv[0])


def is_inspect(argv: Sequence[str]) -> bool:
    return "inspect" in argv and not is_info(argv)


def cache_root(env: Mapping[str, str]) -> Path:
    """Where answers are kept: ``engine/`` of the cache directory the environment names
    (``POLYARCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/polyarch``, else
    ``~/.cache/polyarch``)."""
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


def _json(raw: bytes | None) -> Any:
    try:
        return json.loads(raw or b"")
    except (ValueError, RecursionError):
        return None


def docker_socket(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """The daemon socket these command lines reach, as the docker CLI picks it
    (``--context``, then ``DOCKER_HOST``, then ``DOCKER_CONTEXT``, then the
    configuration's current context), or None when it is not a local socket."""
    if os.name != "posix":
        return None
    conf = buildx_plugin.config_dir(env)
    context: object = None
    if "--context" in argv:
        i = list(argv).index("--context")
        context = argv[i + 1] if i + 1 < len(argv) else None
    host = env.get("DOCKER_HOST") if context is None else None
    if context is None and not host:
        context = env.get("DOCKER_CONTEXT")
        if not context:
            doc = _json(_read(os.path.join(conf, "config.json")))
            context = doc.get("currentContext") if isinstance(doc, dict) else None
    if context is not None and not isinstance(context, str):
        return None
    if context and context != "default":
        name = hashlib.sha256(context.encode()).hexdigest()
        doc = _json(_read(os.path.join(conf, "contexts", "meta", name, "meta.json")))
        try:
            host = str(doc["Endpoints"]["docker"]["Host"])
        except (KeyError, TypeError):
            return None
    elif context == "default":
        host = env.get("DOCKER_HOST")  # the default context is DOCKER_HOST's daemon
    if not host:
        return DEFAULT_SOCKET
    return host[len("unix://"):] if host.startswith("unix://") else None


def _which(name: str, path: str) -> str | None:
    for d in path.split(os.pathsep):
        candidate = os.path.join(d or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _env(env: Mapping[str, str]) -> list[tuple[str, str]]:
    return [(k, env[k]) for k in ENV if k in env]


def _hash(parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _common(argv: Sequence[str], env: Mapping[str, str]) -> list[object] | None:
    """What both answers depend on, or None when nothing is kept for them."""
    sock = docker_socket(argv, env)
    docker = _which("docker", env.get("PATH", ""))
    if sock is None or docker is None or "/snap/" in os.path.realpath(docker):
        return None
    conf = Path(buildx_plugin.config_dir(env))
    return [list(argv), _env(env), sock, docker, _stat(docker), _read(conf / "config.json"),
            [(d, _stat(os.path.join(d, "docker-buildx")))
             for d in (str(conf / "cli-plugins"), *buildx_plugin.SYSTEM_DIRS)]]


def client_fingerprint(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """What the CLI's part of ``docker info`` (its plugins) depends on, hashed."""
    common = _common(argv, env)
    return None if common is None else _hash(common)


def builder_fingerprint(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """What ``buildx inspect`` depends on besides the daemon (:func:`daemon_key`)."""
    common = _common(argv, env)
    if common is None:
        return None
    state = Path(env.get("BUILDX_CONFIG") or Path(buildx_plugin.config_dir(env)) / "buildx")
    return _hash([*common, str(state), _read(state / "current"),
                  _listing(state / "instances"), _listing(state / "defaults"),
                  [(n, (_read(BINFMT / n) or b"").split(b"\n", 1)[0])
                   for n, _ in _listing(BINFMT)]])


def fingerprint(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """The fingerprint of ``argv``'s kept answer, None when none is kept for it."""
    if is_info(argv):
        return client_fingerprint(argv, env)
    if is_inspect(argv):
        return builder_fingerprint(argv, env)
    return None


def daemon_info(path: str, timeout: float = INFO_TIMEOUT) -> dict[str, Any] | None:
    """The daemon's ``GET /info`` on the socket ``path``, or None (no answer in
    ``timeout`` seconds, not 200, not a JSON object, larger than :data:`MAX_FILE`)."""
    deadline = time.monotonic() + timeout
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    data = b""
    try:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b"GET /info HTTP/1.0\r\nHost: docker\r\nConnection: close\r\n\r\n")
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_FILE or time.monotonic() > deadline:
                return None
            if _complete(data):  # (a server that keeps the connection open)
                break
    except OSError:
        return None
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != b"200" or _chunked(head):
        return None
    doc = _json(body)
    return doc if isinstance(doc, dict) and doc.get("ServerVersion") else None


def _headers(head: bytes) -> dict[bytes, bytes]:
    out = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        out[k.strip().lower()] = v.strip()
    return out


def _chunked(head: bytes) -> bool:
    return b"chunked" in _headers(head).get(b"transfer-encoding", b"").lower()


def _complete(data: bytes) -> bool:
    """Whether ``data`` holds a whole answer with a ``Content-Length``."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = _headers(head).get(b"content-length")
    return length is not None and length.isdigit() and len(body) >= int(length)


def daemon_key(info: Mapping[str, Any]) -> str | None:
    """The daemon's description of itself a builder's answer depends on, hashed (the
    same from ``GET /info`` and from ``docker info --format '{{json .}}'``); None for an
    answer without a server."""
    if not info.get("ServerVersion") or info.get("ServerErrors"):
        return None
    return _hash([(k, info.get(k)) for k in _DAEMON_KEYS])


def _env_key(argv: Sequence[str], env: Mapping[str, str]) -> str:
    return _hash((list(argv), _env(env)))[:32]


def _kept(argv: Sequence[str], env: Mapping[str, str], fp: str | None) -> dict[str, Any] | None:
    """The kept entry of ``argv`` if it is for fingerprint ``fp`` and fresh."""
    if fp is None:
        return None
    doc = _json(_read(cache_root(env) / f"{_env_key(argv, env)}.json"))
    try:
        if (doc["fingerprint"] != fp or list(doc["argv"]) != list(argv)
                or not 0 <= time.time() - float(doc["at"]) <= MAX_AGE
                or not isinstance(doc["stdout"], str)):
            return None
    except (KeyError, TypeError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def kept_for(argv: Sequence[str], env: Mapping[str, str], fp: str | None) -> bool:
    """Whether an answer of ``argv`` for ``fp`` is kept (a builder's: for some daemon)."""
    return _kept(argv, env, fp) is not None


def recall(argv: Sequence[str], env: Mapping[str, str], fp: str | None,
           daemon: str | None = None) -> str | None:
    """The kept (reduced) answer of ``argv`` for fingerprint ``fp`` (and, for a
    builder, the daemon described by ``daemon``) if it is fresh, else None."""
    doc = _kept(argv, env, fp)
    if doc is None or doc.get("daemon") != daemon:
        return None
    return str(doc["stdout"])


def synthesized_info(server: Mapping[str, Any], plugins_json: str) -> str:
    """``docker info --format '{{json .}}'`` as polyarch reads it: the daemon's fresh
    answer with the kept CLI plugin list."""
    out: dict[str, Any] = {k: server[k] for k in _INFO_KEYS if k in server}
    plugins = _json(plugins_json.encode())
    out["ClientInfo"] = {"Plugins": plugins if isinstance(plugins, list) else []}
    return json.dumps(out)


def reduced(argv: Sequence[str], stdout: str) -> str | None:
    """The part of an answer that is kept (see the module's documentation), or None
    when it is not kept (a daemon that did not answer, another driver than ``docker``)."""
    if is_info(argv):
        doc = _json(stdout.encode())
        if not isinstance(doc, dict) or doc.get("ServerErrors") or not doc.get("ServerVersion"):
            return None
        client = doc.get("ClientInfo")
        plugins = client.get("Plugins") if isinstance(client, dict) else None
        return json.dumps([{k: p.get(k) for k in ("Name", "Path", "Version")}
                           for p in plugins or [] if isinstance(p, dict)])
    if is_inspect(argv):
        lines = [ln for ln in stdout.splitlines()
                 if ln.partition(":")[0].strip() in _INSPECT_KEYS and not ln.startswith(" ")]
        drivers = [ln.partition(":")[2].strip() for ln in lines if ln.startswith("Driver:")]
        return "\n".join(lines) + "\n" if drivers == ["docker"] else None
    return None


def keep(argv: Sequence[str], env: Mapping[str, str], fp: str | None, stdout: str,
         daemon: str | None = None) -> None:
    """Keep the answer ``stdout`` of ``argv`` (fingerprint ``fp``, taken before it ran;
    ``daemon``: the daemon a builder's answer is about). Never fails a command."""
    part = reduced(argv, stdout) if fp is not None else None
    if part is None or (is_inspect(argv) and daemon is None):
        return
    root = cache_root(env)
    with contextlib.suppress(OSError):
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=root, prefix=".answer-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"fingerprint": fp, "argv": list(argv), "at": time.time(),
                           "daemon": daemon, "stdout": part}, f)
            os.replace(tmp, root / f"{_env_key(argv, env)}.json")
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def forget(argv: Sequence[str], env: Mapping[str, str]) -> None:
    """Remove the kept answer of ``argv`` (it led to a failure: the next look-up asks)."""
    with contextlib.suppress(OSError):
        (cache_root(env) / f"{_env_key(argv, env)}.json").unlink()


def prune(root: Path, now: float | None = None) -> None:
    """Remove the answers no command will take any more."""
    now = time.time() if now is None else now
    with contextlib.suppress(OSError):
        for e in os.scandir(root):
            with contextlib.suppress(OSError):
                if now - e.stat(follow_symlinks=False).st_mtime > max(MAX_AGE, 3600.0):
                    os.unlink(e.path)
