"""The Docker buildx engine: builder discovery and multi-platform builds.

Talks to Docker only through the ``docker`` CLI (never HTTP), honouring
``DOCKER_CONTEXT``/``DOCKER_HOST`` (the CLI reads them) and ``--context``.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from polyarch import proc
from polyarch.engines import buildx_plugin, probes
from polyarch.engines.base import BuildRequest, BuildResult, Plan, StepEvent, engine_argv
from polyarch.engines.buildx_info import BuilderInfo, EngineInfo, NodeInfo
from polyarch.engines.buildx_progress import RawJsonProgress, build_failure
from polyarch.engines.loading import platform_descriptors, write_archive, write_platform_archive
from polyarch.errors import BuildError, EnvironmentProblem
from polyarch.platforms import Platform

if TYPE_CHECKING:
    from polyarch.nodespec import NodeSpec

T = TypeVar("T")


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


def plugin_version(info_json: str, name: str) -> str | None:
    """The version of the docker CLI plugin ``name`` in ``docker info --format '{{json
    .}}'`` output (``ClientInfo.Plugins``); None when it is not listed, or listed with
    an error (the plugin did not run)."""
    try:
        info = json.loads(info_json)
        plugins = info["ClientInfo"]["Plugins"]
    except (ValueError, KeyError, TypeError):
        return None
    for p in plugins if isinstance(plugins, list) else []:
        if isinstance(p, dict) and p.get("Name") == name and not p.get("Err"):
            version = str(p.get("Version") or "")
            m = re.search(r"v?(\d+\.\d+\.\d+)", version)
            return m.group(1) if m else (version or None)
    return None


class Buildx:
    name = "docker"
    #: The buildx client stopped, BuildKit cancels the build and the steps it runs.
    cancels_cleanly = True

    def __init__(self, *, docker_context: str | None = None, builder: str | None = None,
                 started: probes.Probes | None = None, plugin: str | None = None) -> None:
        self.docker_context = docker_context
        #: The buildx plugin run directly (:mod:`polyarch.engines.buildx_plugin`), or
        #: ``None``: through ``docker buildx``.
        self.plugin = plugin if docker_context is None else None
        self.builder = builder
        #: The builder asked for (``builder`` becomes the one preflight chose).
        self.requested_builder = builder
        #: (``started``: look-ups started before this module was loaded, for the same
        #: context and builder, see :func:`polyarch.engines.start_engine`)
        self.probes = started if started is not None else probes.Probes()
        self._known: dict[str, object] = {}
        self._known_lock = threading.Lock()
        self._info_lock = threading.Lock()
        self._info_result: proc.Result | None = None

    def remember(self, what: str, look_up: Callable[[], T]) -> T:
        """``look_up`` made once per engine: a result is kept (an error or "no such
        builder" is not, so that the next preflight asks again). A project of many
        images runs one preflight each on the session's one engine."""
        with self._known_lock:
            if what in self._known:
                return self._known[what]  # type: ignore[return-value]
        result = look_up()
        if result is not None:
            with self._known_lock:
                self._known[what] = result
        return result

    def preflight(self, platforms: Sequence[Platform], *, builder: str | None = None,
                  nodes: Sequence[NodeSpec] = (), allow_create: bool = True) -> Plan:
        from polyarch.engines import buildx_plan

        plan = buildx_plan.preflight(self, platforms, builder=builder, nodes=nodes,
                                     allow_create=allow_create)
        if _kept_could_cause(plan) and self.probes.forget_recalled():
            # A failure on answers kept from an earlier command: asked again, as if
            # nothing had been kept (:mod:`polyarch.engines.remembered`).
            with self._info_lock, self._known_lock:
                self._info_result = None
                self._known.clear()
            plan = buildx_plan.preflight(self, platforms, builder=builder, nodes=nodes,
                                         allow_create=allow_create)
        return plan

    # -- plumbing ------------------------------------------------------------
    def docker(self, *args: str) -> list[str]:
        return probes.docker_argv(self.docker_context, *args)

    def buildx(self, *args: str) -> list[str]:
        return probes.buildx_argv(self.docker_context, self.plugin, *args)

    def _check_plugin(self, *, ask: bool) -> None:
        """Run ``docker buildx`` from now on if ``docker info`` lists another buildx
        plugin than the one found (or none: the CLI would not run it). ``ask``: run
        ``docker info`` if it has not answered yet (else only its answer so far)."""
        if self.plugin is None:
            return
        r = self._info() if ask else self._info_result
        if r is not None and r.ok and buildx_plugin.listed_path(r.stdout) != self.plugin:
            self.plugin = None

    # -- discovery -----------------------------------------------------------
    def _info(self) -> proc.Result:
        """``docker info`` as JSON, run once per engine object while it answers: the
        engine's facts and the buildx plugin's version both come from it (a failed
        answer is not kept: the next look-up asks again)."""
        with self._info_lock:
            if self._info_result is not None:
                return self._info_result
            r = self.probes.run(self.docker(*probes.INFO))
            if r.ok:
                self._info_result = r
            return r

    def engine_info(self) -> EngineInfo:
        r = self._info()
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
        """The buildx plugin's version as ``docker info`` lists it (the docker CLI ran
        the plugin to ask), else from ``docker buildx version``."""
        info = self._info()
        listed = plugin_version(info.stdout, "buildx") if info.ok else None
        if listed is not None:
            return listed
        r = self.probes.run(self.buildx("version"))
        if not r.ok:
            raise EnvironmentProblem(
                "docker buildx is not installed",
                hint="install the buildx plugin (Debian: apt-get install docker-buildx;"
                " see docs.docker.com/build/install-buildx)",
            )
        m = re.search(r"v?(\d+\.\d+\.\d+)", r.stdout)
        return m.group(1) if m else r.stdout.strip()

    def inspect_builder(self, name: str | None = None) -> BuilderInfo | None:
        self._check_plugin(ask=True)  # (a preflight asks docker info anyway)
        args = ["inspect"] + ([name] if name else [])
        r = self.probes.run(self.buildx(*args))
        if not r.ok:
            return None
        return parse_inspect(r.stdout)

    # -- building ------------------------------------------------------------
    def use_builder(self, name: str | None) -> None:
        self.builder = name

    def build_argv(self, req: BuildRequest, metadata_file: Path, *, progress: str = "rawjson") -> list[str]:
        self._check_plugin(ask=False)
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
        self, req: BuildRequest, *, on_step: Callable[[StepEvent], None] | None = None,
        cancel: proc.Cancel | None = None,
    ) -> BuildResult:
        with tempfile.TemporaryDirectory(prefix="polyarch-") as tmp:
            meta = Path(tmp) / "metadata.json"
            argv = self.build_argv(req, meta)
            parser = RawJsonProgress(on_step)
            t0 = time.monotonic()
            # No wall-clock deadline for a build; one for a build that stops progressing.
            # A failure is classified from the progress read (engine, registry, a step).
            proc.run(argv, on_line=parser.feed, timeout=None, idle_timeout=proc.idle_timeout(),
                     error=lambda _: build_failure(parser), cancel=cancel)
            seconds = time.monotonic() - t0
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
            context_bytes=parser.context_bytes,
        )


    def load(self, layout: Path, names: Sequence[str]) -> str:
        self._load(write_archive(layout, names, layout.parent / f"{layout.name}.load.tar"))
        return "every platform (containerd image store)"

    def _load(self, archive: Path) -> None:
        """``docker load`` of an archive written for it, removed afterwards."""
        try:
            proc.run(self.docker("load", "-i", str(archive)), echo=False, timeout=1800,
                     error_class=EnvironmentProblem,
                     error_message="docker load of the verified image failed")
        finally:
            archive.unlink(missing_ok=True)

    def runnable_platforms(self, layout: Path, digests: Sequence[str], name: str
                           ) -> dict[str, str]:
        """Only the platforms to run are loaded: one name per platform manifest, and only
        the blobs those manifests reach (a platform whose smoke result is known, or the
        other platform's layers, never enter the store a second time)."""
        if not digests:
            return {}
        base = name.rsplit(":", 1)[0]
        named = [(f"{base}-{i}:latest", d) for i, d in enumerate(
            platform_descriptors(layout, digests))]
        self._load(write_platform_archive(layout, named,
                                          layout.parent / f"{layout.name}.smoke.tar"))
        return {str(d["digest"]): n for n, d in named}

    def remove_images(self, names: Sequence[str]) -> None:
        if names:
            # Cleanup, not checked: a non-zero exit (an image already gone) is no error; a
            # deadline passed is, and the caller reports it as a warning.
            proc.run(self.docker("image", "rm", "--force", *names), check=False, echo=False,
                     timeout=120)

    def forget_runs(self, refs: Sequence[str]) -> None:
        """Nothing: the runs use the names :meth:`runnable_platforms` loaded, which
        :meth:`remove_images` removes."""

    def run_argv(self, ref: str, platform: Platform, command: Sequence[str], *,
                 entrypoint: str | None = None) -> list[str]:
        ep = ["--entrypoint", entrypoint] if entrypoint is not None else []
        return self.docker("run", "--rm", "--platform", str(platform), *ep, ref, *command)


_ANNOTATION_TYPES = re.compile(r"^([a-z-]+(?:,[a-z-]+)*)((?:\[[^\]]*\])?:)")


def _kept_could_cause(plan: Plan) -> bool:
    """Whether a failed preflight may have failed on a kept answer (the buildx plugin,
    the builder or what it builds; the engine's own part is always asked fresh), and
    asking again repeats nothing it did (it set no builder up)."""
    return not plan.setup_commands and any(
        not c.ok and c.error is not None
        and (c.name in ("buildx", "builder") or c.name.startswith("platform "))
        for c in plan.checks)


def one_platform_annotation(spec: str) -> str:
    """A buildx ``--annotation`` for a one-platform build: ``index`` types become
    ``manifest`` ones (``index-descriptor`` -> ``manifest-descriptor``)."""
    m = _ANNOTATION_TYPES.match(spec)
    if m is None:
        return spec
    types: list[str] = []
    for t in m.group(1).split(","):
        t = {"index": "manifest", "index-descriptor": "manifest-descriptor"}.get(t, t)
        if t not in types:
            types.append(t)
    return ",".join(types) + m.group(2) + spec[m.end():]


def _attest_value(v: bool | str) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else v


def build_flags(req: BuildRequest) -> list[str]:
    """The request's build options as ``docker buildx build`` flags, values unchanged
    (the passthrough ones in the option table's buildx spelling, last)."""
    a: list[str] = []
    for k, v in req.build_args.items():
        a += ["--build-arg", f"{k}={v}"]
    for k, v in req.labels.items():
        a += ["--label", f"{k}={v}"]
    # BuildKit makes no index for one platform (unless attestations force one) and
    # refuses index annotations there: they go on the manifest instead, and merge puts
    # them on the index it writes (the build descriptor records them).
    one = len(req.platforms) == 1
    for k, v in req.annotations.items():
        a += ["--annotation", f"{'manifest' if one else 'index'}:{k}={v}"]
    for spec in req.annotation_args:
        a += ["--annotation", one_platform_annotation(spec) if one else spec]
    for name, src in req.build_contexts.items():
        a += ["--build-context", f"{name}={src}"]
    if req.provenance is not None:
        a += [f"--provenance={_attest_value(req.provenance)}"]
    if req.sbom is not None:
        a += [f"--sbom={_attest_value(req.sbom)}"]
    for c in req.cache_from:
        a += ["--cache-from", c]
    for c in req.cache_to:
        # The inline cache goes into the image itself; any other cache leaves the
        # machine only after verification, in a cache-only export.
        if req.cache_only != c.startswith("type=inline"):
            a += ["--cache-to", c]
    return a + engine_argv(req.args, Buildx.name)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "no answer"
