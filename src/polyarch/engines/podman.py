"""The podman engine: ``podman build --manifest`` then ``podman manifest push --all``.

Podman builds every platform into a local manifest list (one image per platform, RUN
steps of foreign platforms under QEMU via binfmt_misc, like buildx), pushes the list
and its images to each tag, and reports the digest of the pushed index from
``--digestfile``. The local list is removed afterwards; the per-platform images stay
as layer cache for the next build.

Like the buildx engine it talks to podman only through the ``podman`` CLI, and never
to a registry over HTTP.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyarch import proc
from polyarch.engines.base import (
    BuildRequest,
    BuildResult,
    Plan,
    StepEvent,
    engine_argv,
    missing,
)
from polyarch.engines.podman_layout import PulledNames, oci_layout_context, oci_path
from polyarch.engines.podman_plan import PodmanInfo
from polyarch.engines.podman_progress import StepLog, _Follow, build_failure, build_reason
from polyarch.engines.podman_registries import loopback_hosts, write_conf
from polyarch.errors import EnvironmentProblem, FatalError, UsageError
from polyarch.platforms import Platform
from polyarch.refs import ImageRef, parse_ref

if TYPE_CHECKING:
    from polyarch.nodespec import NodeSpec

PODMAN = "podman"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
#: Local manifest lists are named ``localhost/polyarch-build:<random>``; never pushed.
LIST_REPOSITORY = "localhost/polyarch-build"

#: What is read of a Dockerfile to find the registries it pulls from.
MAX_DOCKERFILE_BYTES = 4 << 20
_INSTALL_HINT = "install podman (Debian/Ubuntu: apt-get install podman; Fedora: dnf install podman)"


class PodmanEngine:
    name = "podman"
    #: A ``podman build --manifest`` stopped (SIGTERM or SIGINT, podman 4.3) leaves the
    #: container of the RUN step under way running, outside its process group.
    cancels_cleanly = False

    def __init__(self, *, insecure_registries: Iterable[str] = (),
                 list_name: str | None = None) -> None:
        self.insecure = {_norm_host(h) for h in insecure_registries}
        self.list_name = list_name or f"{LIST_REPOSITORY}:{secrets.token_hex(6)}"
        self._info: PodmanInfo | None = None
        self._info_lock = threading.Lock()
        self._pulled = PulledNames(PODMAN)

    # -- discovery -----------------------------------------------------------
    def preflight(self, platforms: Sequence[Platform], *, builder: str | None = None,
                  nodes: Sequence[NodeSpec] = (), allow_create: bool = True) -> Plan:
        """podman's version, then each platform natively or through binfmt_misc (podman
        has no builders: ``builder`` and ``nodes`` are docker's)."""
        from polyarch.engines.podman_plan import preflight

        return preflight(self, platforms)

    def info(self) -> PodmanInfo:
        """``podman info``, asked once per engine object (an error is not kept)."""
        with self._info_lock:
            if self._info is None:
                self._info = self._look_up_info()
            return self._info

    def _look_up_info(self) -> PodmanInfo:
        # Not checked: a failure and an answer that is not JSON get the same message.
        r = proc.run([PODMAN, "info", "--format", "json"], check=False, echo=False, timeout=60)
        text = r.stdout.strip()
        if not r.ok or not text.startswith("{"):
            raise EnvironmentProblem(
                "podman does not answer: " + _first_line(r.stderr or r.stdout), hint=_INSTALL_HINT
            )
        try:
            data: dict[str, Any] = json.loads(text)
        except ValueError as e:
            raise EnvironmentProblem(f"podman info printed no usable JSON: {e}",
                                     hint=_INSTALL_HINT) from e
        host = data.get("host") or {}
        version = data.get("version") or {}
        security = host.get("security") or {}
        return PodmanInfo(
            version=str(version.get("Version", "")),
            arch=str(host.get("arch", "")),
            os=str(host.get("os", "")),
            rootless=bool(security.get("rootless", False)),
            remote=bool(host.get("serviceIsRemote", False)),
        )

    # -- command lines -------------------------------------------------------
    def plain_http(self, ref: ImageRef) -> bool:
        """Loopback registries and the ones named insecure are spoken to over HTTP.

        Docker treats 127.0.0.0/8 as insecure on its own; podman does not, so polyarch
        says so: ``--tls-verify=false`` on ``podman run`` of such an image, and a
        registries.conf of the build's own for ``podman build`` (:meth:`build_env`).
        """
        return ref.is_loopback or _norm_host(ref.registry) in self.insecure

    def build_argv(self, req: BuildRequest, *, logfile: Path) -> list[str]:
        unsupported(req)
        a = [PODMAN, "build", "--platform", ",".join(str(p) for p in req.platforms),
             "--manifest", self.list_name, "--file", str(req.dockerfile)]
        a += self.build_flags(req)
        # Step output goes to a file polyarch follows; podman's own errors stay on stderr.
        a += ["--logfile", str(logfile), str(req.context)]
        return a

    def build_flags(self, req: BuildRequest) -> list[str]:
        """The request's build options as ``podman build`` flags (what :func:`unsupported`
        lets through; the passthrough ones in the option table's podman spelling, last)."""
        a: list[str] = []
        for k, v in req.build_args.items():
            a += ["--build-arg", f"{k}={v}"]
        for k, v in req.labels.items():
            a += ["--label", f"{k}={v}"]
        for k, v in req.annotations.items():
            a += ["--annotation", f"{k}={v}"]
        for spec in req.annotation_args:
            a += ["--annotation", spec.removeprefix("manifest:")]
        for name, src in req.build_contexts.items():
            a += ["--build-context", f"{name}={oci_layout_context(src)}"]
        return a + engine_argv(req.args, self.name)

    def use_builder(self, name: str | None) -> None:
        return None  # podman has no builders

    def export_argv(self, layout: Path, *, digestfile: Path) -> list[str]:
        """Write the local manifest list and every image in it as an OCI layout."""
        return [PODMAN, "manifest", "push", "--all", "--format", "oci", "--digestfile",
                str(digestfile), self.list_name, f"oci:{layout}"]

    def remove_argv(self) -> list[str]:
        return [PODMAN, "manifest", "rm", self.list_name]

    def plain_http_hosts(self, req: BuildRequest) -> set[str]:
        """The registries this build pulls from over plain HTTP: those named with
        ``--insecure-registry``, and every loopback registry the Dockerfile, a build
        argument or a named context mentions (Docker treats those as insecure itself)."""
        texts = [*req.build_args.values(), *req.build_contexts.values()]
        try:
            with req.dockerfile.open("rb") as f:
                texts.append(f.read(MAX_DOCKERFILE_BYTES).decode(errors="replace"))
        except OSError:
            pass  # podman says what is wrong with it
        return set(self.insecure) | loopback_hosts(texts)

    def build_env(self, req: BuildRequest, tmp: Path) -> dict[str, str]:
        """``CONTAINERS_REGISTRIES_CONF`` for the build: the user's registries
        configuration plus the plain-HTTP registries, in ``tmp`` (removed with it)."""
        conf = write_conf(self.plain_http_hosts(req), tmp / "registries.conf")
        return {"CONTAINERS_REGISTRIES_CONF": str(conf)} if conf is not None else {}

    def build_commands(self, req: BuildRequest, metadata_file: Path) -> list[list[str]]:
        tmp = metadata_file.parent
        build = self.build_argv(req, logfile=tmp / "build.log")
        if self.plain_http_hosts(req):
            build = ["env", f"CONTAINERS_REGISTRIES_CONF={tmp / 'registries.conf'}", *build]
        cmds = [build]
        if req.output is not None:
            cmds.append(self.export_argv(req.output, digestfile=tmp / "digest"))
        cmds.append(self.remove_argv())
        return cmds

    # -- building ------------------------------------------------------------
    def build(
        self, req: BuildRequest, *, on_step: Callable[[StepEvent], None] | None = None,
        cancel: proc.Cancel | None = None,
    ) -> BuildResult:
        if req.output is None:
            raise UsageError("the podman engine needs a directory to write the OCI layout to")
        # The layouts the build reads (a project's images built before) are pulled into
        # podman's store and named after their paths: names that are new go again.
        pulled = self._pulled.new(oci_layout_context(src) for src in req.build_contexts.values())
        with tempfile.TemporaryDirectory(prefix="polyarch-") as tmp_name:
            tmp = Path(tmp_name)
            t0 = time.monotonic()
            try:
                self._build(req, tmp, on_step, cancel)
                digest = self._export(req.output, tmp / "digest", cancel)
            finally:
                self._remove_list()
                # A cleanup: an untag past its deadline leaves a name, and the build's
                # own error (if any) is what is reported.
                with contextlib.suppress(FatalError):
                    self._pulled.untag(pulled)
            seconds = time.monotonic() - t0
        return BuildResult(digest=digest, media_type=OCI_INDEX, size=0, seconds=seconds,
                           layout=req.output)

    def _build(self, req: BuildRequest, tmp: Path, on_step: Callable[[StepEvent], None] | None,
               cancel: proc.Cancel | None) -> None:
        logfile = tmp / "build.log"
        logfile.touch()
        argv = self.build_argv(req, logfile=logfile)
        steps = StepLog(req.platforms, on_step)
        with _Follow(logfile, steps.feed):
            # No wall-clock deadline for a build; progress goes to the log file. Not
            # checked: the log is read to its end before a failure is classified.
            res = proc.run(argv, check=False, timeout=None, idle_timeout=proc.idle_timeout(),
                           activity_paths=[logfile], env=self.build_env(req, tmp),
                           cancel=cancel)
        if res.ok:
            steps.finish(None)
            return
        reason = build_reason(res.stderr)
        steps.finish(reason)
        raise build_failure(res.stderr, steps)

    def _export(self, layout: Path, digestfile: Path, cancel: proc.Cancel | None = None) -> str:
        proc.run(self.export_argv(layout, digestfile=digestfile), timeout=None, cancel=cancel,
                 idle_timeout=proc.idle_timeout(),
                 error=lambda r: EnvironmentProblem(
                     f"podman could not write the OCI layout {layout}: "
                     + _first_line(r.stderr or r.stdout)))
        try:
            digest = digestfile.read_text().strip()
        except OSError as e:
            raise EnvironmentProblem(f"podman wrote no digest file: {e.strerror}") from e
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise EnvironmentProblem(f"podman reported no usable digest (got {digest!r})")
        return digest

    def _remove_list(self) -> None:
        # Not checked: the exit status is the answer (1: no such list); the removal is a
        # cleanup whose failure changes nothing.
        exists = proc.run([PODMAN, "manifest", "exists", self.list_name], check=False,
                          echo=False, timeout=60)
        if exists.ok:
            proc.run(self.remove_argv(), check=False, timeout=120)

    def load(self, layout: Path, names: Sequence[str]) -> str:
        """podman's store keeps one image per name: the host's platform is loaded (under
        ``names`` only: the name podman gives the pull, after the layout's path, is
        taken off again)."""
        ref = f"oci:{oci_path(layout)}"
        pulled = self._pulled.new([ref])
        r = proc.run([PODMAN, "pull", "-q", ref], timeout=1800,
                     error=lambda res: EnvironmentProblem(
                         "podman could not load the verified image: "
                         + _first_line(res.stderr or res.stdout)))
        image_id = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
        for n in names:
            proc.run([PODMAN, "tag", image_id, n], timeout=60, error_class=EnvironmentProblem)
        with contextlib.suppress(FatalError):  # a cleanup: the image is loaded
            self._pulled.untag([n for n in pulled if n not in names])
        return f"the host's platform only ({self.info().os}/{self.info().arch}; podman keeps" \
               " one platform per name)"

    def remove_images(self, names: Sequence[str]) -> None:
        if names:
            # Cleanup, not checked: a non-zero exit (an image already gone) is no error; a
            # deadline passed is, and the caller reports it as a warning.
            proc.run([PODMAN, "rmi", "--force", *names], check=False, echo=False, timeout=120)

    def runnable_platforms(self, layout: Path, digests: Sequence[str], name: str
                           ) -> dict[str, str]:
        """podman runs straight from the layout (``--platform`` picks the entry): nothing
        is loaded. (A name its runs will give the image that is there already is the
        user's: :meth:`forget_runs` leaves it.)"""
        ref = f"oci:{oci_path(layout)}"
        self._pulled.new([ref])
        return dict.fromkeys(digests, ref)

    def forget_runs(self, refs: Sequence[str]) -> None:
        """``podman run`` of ``oci:PATH`` pulls the image and names it after PATH (a
        path of this run's cache, gone when it ends): that name is taken off again, so
        that the image is what the build left, a cache entry ``podman image prune``
        may remove, instead of a name that keeps it forever."""
        self._pulled.forget(refs)

    # -- running -------------------------------------------------------------
    def run_argv(self, ref: str, platform: Platform, command: Sequence[str], *,
                 entrypoint: str | None = None) -> list[str]:
        # --pull always: podman's store keeps one variant per name; another platform's
        # image under the same reference must not be reused.
        a = [PODMAN, "run", "--rm", "--pull", "always", "--platform", str(platform)]
        if entrypoint is not None:
            a += ["--entrypoint", entrypoint]
        if not ref.startswith("oci:"):
            try:
                if self.plain_http(parse_ref(ref)):
                    a.append("--tls-verify=false")
            except ValueError:
                pass
        return a + ulimit_args() + [ref, *command]


#: The TYPE[,TYPE][[PLATFORMS]]: prefix of a buildx annotation; podman takes none but
#: manifest (its --annotation sets the image manifest's annotations).
_ANNOTATION_TYPE = re.compile(r"^([a-z-]+(?:,[a-z-]+)*(?:\[[^\]]*\])?):[^=]*=")


def unsupported(req: BuildRequest) -> None:
    """Refuse what podman cannot do instead of silently dropping it: one error naming
    every flag (exit 2)."""
    problems = []
    if req.provenance:
        problems.append("provenance attestations (--provenance)")
    if req.sbom:
        problems.append("SBOM attestations (--sbom)")
    if req.cache_from or req.cache_to:
        problems.append("buildx cache import/export (--cache, --cache-from, --cache-to)")
    for name, src in req.build_contexts.items():
        try:
            oci_layout_context(src)
        except UsageError as e:
            problems.append(f"--build-context {name}=... ({e.message})")
    for spec in req.annotation_args:
        m = _ANNOTATION_TYPE.match(spec)
        if m is not None and m.group(1) != "manifest":
            problems.append(f"{m.group(1)} annotations (--annotation {spec.split('=', 1)[0]}=...)")
    problems += missing(req.args, PodmanEngine.name)
    if problems:
        raise UsageError("the podman engine does not support " + ", ".join(problems),
                         hint="drop the option, or use --engine docker")


def ulimit_args() -> list[str]:
    """``--ulimit`` flags for ``podman run`` when podman cannot set its defaults.

    Rootful podman asks the runtime for nofile=1048576 and a large nproc limit in every
    container. Raising a limit needs CAP_SYS_RESOURCE; where podman runs without it
    (inside a container, as CI jobs often do) runc fails with "error setting rlimit
    type 7: operation not permitted". There the limits are clamped to what this process
    has (nproc also to 32768, the limit podman 4 puts on itself in that case).
    """
    if os.geteuid() != 0 or _has_cap_sys_resource():
        return []
    out = []
    for name, which, cap in (("nofile", resource.RLIMIT_NOFILE, None),
                             ("nproc", resource.RLIMIT_NPROC, 32768)):
        hard = resource.getrlimit(which)[1]
        if hard == resource.RLIM_INFINITY:
            if cap is None:
                continue
            hard = cap
        elif cap is not None:
            hard = min(hard, cap)
        out += ["--ulimit", f"{name}={hard}:{hard}"]
    return out


def _has_cap_sys_resource(status: Path = Path("/proc/self/status")) -> bool:
    try:
        text = status.read_text()
    except OSError:
        return True  # not Linux, or no procfs: assume the ordinary case
    m = re.search(r"^CapEff:\s*([0-9a-fA-F]+)$", text, re.M)
    return m is None or bool(int(m.group(1), 16) & (1 << 24))  # CAP_SYS_RESOURCE = 24


# -- progress ------------------------------------------------------------------------

def _norm_host(host: str) -> str:
    h = host.strip().lower()
    for scheme in ("https://", "http://"):
        h = h.removeprefix(scheme)
    return h.rstrip("/")


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "no answer"
