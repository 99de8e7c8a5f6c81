"""The Docker buildx engine: builder discovery and multi-platform builds.

Talks to Docker only through the ``docker`` CLI (never HTTP), honouring
``DOCKER_CONTEXT``/``DOCKER_HOST`` (the CLI reads them) and ``--context``.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from polyarch import proc
from polyarch.engines import BuildRequest, BuildResult, StepEvent, probes
from polyarch.engines.loading import write_archive
from polyarch.errors import BuildError, EnvironmentProblem, FatalError, RegistryError
from polyarch.platforms import Platform

DEDICATED_BUILDER = "polyarch"


@dataclass(frozen=True)
class EngineInfo:
    server_version: str
    arch: str  # as the daemon reports it (x86_64, aarch64)
    os: str
    containerd_store: bool


@dataclass(frozen=True)
class NodeInfo:
    name: str
    endpoint: str
    status: str
    platforms: tuple[str, ...]


@dataclass(frozen=True)
class BuilderInfo:
    name: str
    driver: str
    nodes: tuple[NodeInfo, ...] = field(default_factory=tuple)

    @property
    def platforms(self) -> tuple[str, ...]:
        seen: list[str] = []
        for n in self.nodes:
            seen.extend(p for p in n.platforms if p not in seen)
        return tuple(seen)


def parse_inspect(text: str) -> BuilderInfo:
    """Parse ``docker buildx inspect`` text output (0.10+ layout)."""
    name = driver = ""
    nodes: list[NodeInfo] = []
    cur: dict[str, str] = {}
    in_nodes = False

    def flush() -> None:
        if cur.get("Name"):
            plats = tuple(
                p.strip().rstrip("*") for p in cur.get("Platforms", "").split(",") if p.strip()
            )
            nodes.append(NodeInfo(cur["Name"], cur.get("Endpoint", ""), cur.get("Status", ""), plats))

    for line in text.splitlines():
        if not line.strip() or line.startswith(" "):
            continue
        key, _, val = line.partition(":")
        key, val = key.strip(), val.strip()
        if key == "Nodes":
            in_nodes = True
            continue
        if not in_nodes:
            if key == "Name":
                name = val
            elif key == "Driver":
                driver = val
            continue
        if key == "Name":
            flush()
            cur = {}
        cur[key] = val
    flush()
    return BuilderInfo(name, driver, tuple(nodes))


class Buildx:
    name = "docker"

    def __init__(self, *, docker_context: str | None = None, builder: str | None = None) -> None:
        self.docker_context = docker_context
        self.builder = builder

    # -- plumbing ------------------------------------------------------------
    def docker(self, *args: str) -> list[str]:
        argv = ["docker"]
        if self.docker_context:
            argv += ["--context", self.docker_context]
        return argv + list(args)

    def buildx(self, *args: str) -> list[str]:
        return self.docker("buildx", *args)

    # -- discovery -----------------------------------------------------------
    def engine_info(self) -> EngineInfo:
        r = probes.run(self.docker(*probes.INFO))
        if not r.ok or not r.stdout.strip().startswith("{"):
            raise EnvironmentProblem(
                "the Docker engine is not reachable: " + _first_line(r.stderr or r.stdout),
                hint="start Docker (scripts/engine up, Docker Desktop, or systemctl start docker);"
                " check DOCKER_HOST / DOCKER_CONTEXT",
            )
        info: dict[str, Any] = json.loads(r.stdout)
        errs = info.get("ServerErrors") or []
        if errs or not info.get("ServerVersion"):
            raise EnvironmentProblem(
                "the Docker engine is not reachable: " + (errs[0] if errs else "no server version"),
                hint="start Docker (scripts/engine up, Docker Desktop, or systemctl start docker);"
                " check DOCKER_HOST / DOCKER_CONTEXT",
            )
        status = info.get("DriverStatus") or []
        containerd = any(
            isinstance(x, list) and len(x) == 2 and x[0] == "driver-type"
            and "containerd.snapshotter" in str(x[1])
            for x in status
        )
        return EngineInfo(
            str(info.get("ServerVersion", "")),
            str(info.get("Architecture", "")),
            str(info.get("OSType", "")),
            containerd,
        )

    def buildx_version(self) -> str:
        r = probes.run(self.buildx("version"))
        if not r.ok:
            raise EnvironmentProblem(
                "docker buildx is not installed",
                hint="install the buildx plugin (Debian: apt-get install docker-buildx;"
                " see docs.docker.com/build/install-buildx)",
            )
        m = re.search(r"v?(\d+\.\d+\.\d+)", r.stdout)
        return m.group(1) if m else r.stdout.strip()

    def inspect_builder(self, name: str | None = None) -> BuilderInfo | None:
        args = ["inspect"] + ([name] if name else [])
        r = probes.run(self.buildx(*args))
        if not r.ok:
            return None
        return parse_inspect(r.stdout)

    # -- building ------------------------------------------------------------
    def use_builder(self, name: str | None) -> None:
        self.builder = name

    def build_argv(self, req: BuildRequest, metadata_file: Path, *, progress: str = "rawjson") -> list[str]:
        a = self.buildx("build")
        if self.builder:
            a += ["--builder", self.builder]
        a += ["--platform", ",".join(str(p) for p in req.platforms)]
        a += ["--file", str(req.dockerfile)]
        if req.cache_only:
            a += ["--output", "type=cacheonly"]
        elif req.output is not None:
            a += ["--output", f"type=oci,tar=false,dest={req.output}"]
        a += build_flags(req)
        a += ["--metadata-file", str(metadata_file), f"--progress={progress}", str(req.context)]
        return a

    def build_commands(self, req: BuildRequest, metadata_file: Path) -> list[list[str]]:
        return [self.build_argv(req, metadata_file)]

    def build(
        self, req: BuildRequest, *, on_step: Callable[[StepEvent], None] | None = None
    ) -> BuildResult:
        with tempfile.TemporaryDirectory(prefix="polyarch-") as tmp:
            meta = Path(tmp) / "metadata.json"
            argv = self.build_argv(req, meta)
            parser = RawJsonProgress(on_step)
            t0 = time.monotonic()
            # No wall-clock deadline for a build; one for a build that stops progressing.
            res = proc.run(argv, check=False, on_line=parser.feed, timeout=None,
                           idle_timeout=proc.idle_timeout())
            seconds = time.monotonic() - t0
            if not res.ok:
                raise build_failure(parser)
            if req.cache_only:
                return BuildResult("", "", 0, seconds)
            try:
                data: dict[str, Any] = json.loads(meta.read_text())
            except (OSError, ValueError) as e:
                raise BuildError(f"buildx wrote no usable metadata file: {e}") from e
        desc = data.get("containerimage.descriptor") or {}
        digest = str(desc.get("digest") or data.get("containerimage.digest") or "")
        if not digest:
            raise BuildError("buildx reported no image digest (was the OCI layout written?)")
        return BuildResult(
            digest=digest,
            media_type=str(desc.get("mediaType", "")),
            size=int(desc.get("size", 0)),
            seconds=seconds,
            layout=req.output,
        )

    def export_cache(self, req: BuildRequest) -> None:
        if req.cache_to:
            self.build(replace(req, cache_only=True, output=None))

    def load(self, layout: Path, names: Sequence[str]) -> str:
        archive = write_archive(layout, names, layout.parent / f"{layout.name}.load.tar")
        try:
            proc.run(self.docker("load", "-i", str(archive)), echo=False, timeout=1800,
                     error_class=EnvironmentProblem,
                     error_message="docker load of the verified image failed")
        finally:
            archive.unlink(missing_ok=True)
        return "every platform (containerd image store)"

    def runnable(self, layout: Path, name: str) -> str:
        """What ``run_argv`` runs for a smoke test: the layout loaded under ``name``."""
        self.load(layout, [name])
        return name

    def remove_images(self, names: Sequence[str]) -> None:
        if names:
            proc.run(self.docker("image", "rm", "--force", *names), check=False, echo=False,
                     timeout=120)

    def run_argv(self, ref: str, platform: Platform, command: Sequence[str], *,
                 entrypoint: str | None = None) -> list[str]:
        ep = ["--entrypoint", entrypoint] if entrypoint is not None else []
        return self.docker("run", "--rm", "--platform", str(platform), *ep, ref, *command)


def _attest_value(v: bool | str) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else v


def build_flags(req: BuildRequest) -> list[str]:
    """The request's build options as ``docker buildx build`` flags, values unchanged."""
    a: list[str] = []
    for k, v in req.build_args.items():
        a += ["--build-arg", f"{k}={v}"]
    for k, v in req.labels.items():
        a += ["--label", f"{k}={v}"]
    for k, v in req.annotations.items():
        a += ["--annotation", f"index:{k}={v}"]
    for spec in req.annotation_args:
        a += ["--annotation", spec]
    if req.target:
        a += ["--target", req.target]
    for s in req.secrets:
        a += ["--secret", s]
    for s in req.ssh:
        a += ["--ssh", s]
    for name, src in req.build_contexts.items():
        a += ["--build-context", f"{name}={src}"]
    if req.provenance is not None:
        a += [f"--provenance={_attest_value(req.provenance)}"]
    if req.sbom is not None:
        a += [f"--sbom={_attest_value(req.sbom)}"]
    for spec in req.attest:
        a += ["--attest", spec]
    if req.no_cache:
        a.append("--no-cache")
    if req.pull:
        a.append("--pull")
    for c in req.cache_from:
        a += ["--cache-from", c]
    for c in req.cache_to:
        # The inline cache goes into the image itself; any other cache leaves the
        # machine only after verification, in a cache-only export.
        if req.cache_only != c.startswith("type=inline"):
            a += ["--cache-to", c]
    if req.network:
        a += ["--network", req.network]
    if req.shm_size:
        a += ["--shm-size", req.shm_size]
    for u in req.ulimits:
        a += ["--ulimit", u]
    for e in req.entitlements:
        a += ["--allow", e]
    return a


_PLATFORM_PREFIX = re.compile(r"^\[(linux/[a-z0-9]+(?:/v\d)?)[\] ]")

# Build error texts that are registry problems, not build problems.
_REGISTRY_PATTERNS = (
    "failed to push", "failed to authorize", "401 unauthorized", "403 forbidden",
    "connection refused", "no such host", "i/o timeout", "server gave http response to https",
    "failed to do request", "unexpected status from", "failed to copy",
)


# Failures to reach the builder itself (before any step ran).
_BUILDER_PATTERNS = ("failed to dial grpc", "error during connect", "booting buildkit",
                     "cannot connect to the docker daemon", "no builder", "failed to find driver")


class RawJsonProgress:
    """Incremental parser for ``--progress=rawjson`` (pretty-printed JSON objects on
    stderr, followed by buildx's plain-text error summary)."""

    def __init__(self, on_step: Callable[[StepEvent], None] | None) -> None:
        self.on_step = on_step
        self._buf: list[str] = []
        self.text: list[str] = []  # lines outside JSON objects (the error summary)
        self.vertices: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, list[str]] = {}
        self._reported: set[tuple[str, str]] = set()

    def feed(self, line: str) -> None:
        if self._buf or line == "{":
            self._buf.append(line)
            if line == "}":
                blob = "\n".join(self._buf)
                self._buf = []
                try:
                    self._status(json.loads(blob))
                except ValueError:
                    self.text.extend(blob.splitlines())
            return
        self.text.append(line)

    def _status(self, st: dict[str, Any]) -> None:
        for v in st.get("vertexes") or []:
            d = v.get("digest", "")
            cur = self.vertices.setdefault(d, {})
            cur.update({k: x for k, x in v.items() if x is not None})
            self._maybe_report(d, cur)
        for log in st.get("logs") or []:
            try:
                data = base64.b64decode(log.get("data", "")).decode("utf-8", "replace")
            except ValueError:
                continue
            self.logs.setdefault(log.get("vertex", ""), []).append(data)

    def _maybe_report(self, d: str, v: dict[str, Any]) -> None:
        name = str(v.get("name", ""))
        if v.get("error") and name.startswith("importing cache manifest"):
            state = "no cache yet"  # a missing cache is not an error; BuildKit goes on
        elif v.get("error"):
            state = "error"
        elif v.get("completed"):
            state = "cached" if v.get("cached") else "done"
        elif v.get("started"):
            state = "started"
        else:
            return
        if (d, state) in self._reported:
            return
        self._reported.add((d, state))
        if self.on_step is None:
            return
        m = _PLATFORM_PREFIX.match(name)
        secs = None
        if state in ("done", "error") and v.get("started") and v.get("completed"):
            secs = _elapsed(str(v["started"]), str(v["completed"]))
        self.on_step(StepEvent(m.group(1) if m else None, name, state, v.get("error"), secs))

    def failed_steps(self) -> list[tuple[str, str, str]]:
        """(step name, error, its log output) for every vertex that failed."""
        out = []
        for d, v in self.vertices.items():
            name = str(v.get("name", ""))
            if name.startswith("importing cache manifest"):
                continue
            if v.get("error") and "context canceled" not in str(v.get("error")):
                out.append((str(v.get("name", "")), str(v["error"]), "".join(self.logs.get(d, []))))
        return out


def build_failure(parser: RawJsonProgress) -> FatalError:
    """Turn a failed build's progress into the right typed error with the build's own text."""
    summary = "\n".join(line for line in parser.text if line.strip()).strip()
    steps = parser.failed_steps()
    detail_parts = []
    for name, _err, log in steps[:2]:
        detail_parts.append(f"--- {name}")
        if log.strip():
            detail_parts.append("\n".join(log.rstrip().splitlines()[-30:]))
    if summary:
        detail_parts.append(summary)
    detail = "\n".join(detail_parts)
    last = next((ln for ln in reversed(parser.text) if ln.startswith("ERROR:")), "")
    reason = last.removeprefix("ERROR:").strip() or (steps[0][1] if steps else "build failed")
    low = (reason + " " + summary).lower()
    if not steps and any(p in low for p in _BUILDER_PATTERNS):
        return EnvironmentProblem(f"the builder is not reachable: {reason}",
                                  hint="check the builder with 'docker buildx inspect"
                                  " --bootstrap' (and DOCKER_HOST / --context / --builder)",
                                  detail=detail or None)
    push_step = not steps or all(n.startswith(("exporting", "pushing")) for n, _e, _l in steps)
    if any(p in low for p in _REGISTRY_PATTERNS) and push_step:
        return RegistryError(f"push failed: {reason.removeprefix('failed to solve: ')}",
                             detail=detail or None)
    where = f" in step {steps[0][0]}" if steps else ""
    return BuildError(f"build failed{where}: {reason}", detail=detail or None)


def _elapsed(a: str, b: str) -> float | None:
    try:
        return (_ts(b) - _ts(a)).total_seconds()
    except ValueError:
        return None


def _ts(s: str) -> datetime:
    # Go timestamps carry nanoseconds; Python takes microseconds.
    m = re.match(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    if not m:
        raise ValueError(s)
    frac = (m.group(2) or ".0")[:7]
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + frac + tz)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "no answer"
