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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polyarch import proc
from polyarch.engines import BuildRequest, BuildResult, StepEvent
from polyarch.errors import BuildError, EnvironmentProblem, RegistryError, UsageError
from polyarch.platforms import Platform
from polyarch.refs import ImageRef, parse_ref

PODMAN = "podman"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
#: Local manifest lists are named ``localhost/polyarch-build:<random>``; never pushed.
LIST_REPOSITORY = "localhost/polyarch-build"

_INSTALL_HINT = "install podman (Debian/Ubuntu: apt-get install podman; Fedora: dnf install podman)"


@dataclass(frozen=True)
class PodmanInfo:
    version: str
    arch: str  # GOARCH as podman reports it (amd64, arm64)
    os: str
    rootless: bool
    remote: bool  # talks to a podman service elsewhere (podman --remote, CONTAINER_HOST)


class PodmanEngine:
    name = "podman"

    def __init__(self, *, insecure_registries: Iterable[str] = (),
                 list_name: str | None = None) -> None:
        self.insecure = {_norm_host(h) for h in insecure_registries}
        self.list_name = list_name or f"{LIST_REPOSITORY}:{secrets.token_hex(6)}"
        self._links: dict[str, Path] = {}  # smoke image name -> its link to the layout

    # -- discovery -----------------------------------------------------------
    def info(self) -> PodmanInfo:
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
        says so on the command line (``--tls-verify=false``) for the same registries.
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
        lets through)."""
        a: list[str] = []
        for k, v in req.build_args.items():
            a += ["--build-arg", f"{k}={v}"]
        for k, v in req.labels.items():
            a += ["--label", f"{k}={v}"]
        for k, v in req.annotations.items():
            a += ["--annotation", f"{k}={v}"]
        for spec in req.annotation_args:
            a += ["--annotation", spec.removeprefix("manifest:")]
        if req.target:
            a += ["--target", req.target]
        for s in req.secrets:
            a += ["--secret", s]
        for s in req.ssh:
            a += ["--ssh", s]
        plain_http = False
        for name, src in req.build_contexts.items():
            a += ["--build-context", f"{name}={oci_layout_context(src)}"]
            image = _context_image(src)
            plain_http = plain_http or (image is not None and self.plain_http(image))
        if plain_http:
            # Docker pulls from loopback registries over HTTP by itself; podman is told.
            a.append("--tls-verify=false")
        if req.no_cache:
            a.append("--no-cache")
        if req.pull:
            a.append("--pull=always")
        if req.network:
            a += ["--network", req.network]
        if req.shm_size:
            a += ["--shm-size", req.shm_size]
        for u in req.ulimits:
            a += ["--ulimit", u]
        return a

    def use_builder(self, name: str | None) -> None:
        return None  # podman has no builders

    def export_argv(self, layout: Path, *, digestfile: Path) -> list[str]:
        """Write the local manifest list and every image in it as an OCI layout."""
        return [PODMAN, "manifest", "push", "--all", "--format", "oci", "--digestfile",
                str(digestfile), self.list_name, f"oci:{layout}"]

    def remove_argv(self) -> list[str]:
        return [PODMAN, "manifest", "rm", self.list_name]

    def build_commands(self, req: BuildRequest, metadata_file: Path) -> list[list[str]]:
        tmp = metadata_file.parent
        cmds = [self.build_argv(req, logfile=tmp / "build.log")]
        if req.output is not None:
            cmds.append(self.export_argv(req.output, digestfile=tmp / "digest"))
        cmds.append(self.remove_argv())
        return cmds

    # -- building ------------------------------------------------------------
    def build(
        self, req: BuildRequest, *, on_step: Callable[[StepEvent], None] | None = None
    ) -> BuildResult:
        if req.output is None:
            raise UsageError("the podman engine needs a directory to write the OCI layout to")
        with tempfile.TemporaryDirectory(prefix="polyarch-") as tmp_name:
            tmp = Path(tmp_name)
            t0 = time.monotonic()
            try:
                self._build(req, tmp, on_step)
                digest = self._export(req.output, tmp / "digest")
            finally:
                self._remove_list()
            seconds = time.monotonic() - t0
        return BuildResult(digest=digest, media_type=OCI_INDEX, size=0, seconds=seconds,
                           layout=req.output)

    def _build(self, req: BuildRequest, tmp: Path,
               on_step: Callable[[StepEvent], None] | None) -> None:
        logfile = tmp / "build.log"
        logfile.touch()
        argv = self.build_argv(req, logfile=logfile)
        steps = StepLog(req.platforms, on_step)
        with _Follow(logfile, steps.feed):
            # No wall-clock deadline for a build; progress goes to the log file.
            res = proc.run(argv, check=False, timeout=None, idle_timeout=proc.idle_timeout(),
                           activity_paths=[logfile])
        if res.ok:
            steps.finish(None)
            return
        reason = build_reason(res.stderr)
        steps.finish(reason)
        raise build_failure(res.stderr, steps)

    def _export(self, layout: Path, digestfile: Path) -> str:
        r = proc.run(self.export_argv(layout, digestfile=digestfile), check=False,
                     timeout=None, idle_timeout=proc.idle_timeout())
        if not r.ok:
            raise EnvironmentProblem(f"podman could not write the OCI layout {layout}: "
                                     + _first_line(r.stderr or r.stdout))
        try:
            digest = digestfile.read_text().strip()
        except OSError as e:
            raise EnvironmentProblem(f"podman wrote no digest file: {e.strerror}") from e
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise EnvironmentProblem(f"podman reported no usable digest (got {digest!r})")
        return digest

    def _remove_list(self) -> None:
        exists = proc.run([PODMAN, "manifest", "exists", self.list_name], check=False,
                          echo=False, timeout=60)
        if exists.ok:
            proc.run(self.remove_argv(), check=False, timeout=120)

    def export_cache(self, req: BuildRequest) -> None:
        return None  # podman has no exportable build cache (refused up front)

    def load(self, layout: Path, names: Sequence[str]) -> str:
        """podman's store keeps one image per name: the host's platform is loaded."""
        with _reference_safe(layout, f"polyarch-load-{secrets.token_hex(6)}") as path:
            r = proc.run([PODMAN, "pull", "-q", f"oci:{path}"], check=False, timeout=1800)
            if not r.ok:
                raise EnvironmentProblem("podman could not load the verified image: "
                                         + _first_line(r.stderr or r.stdout))
            image_id = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
            for n in names:
                proc.run([PODMAN, "tag", image_id, n], timeout=60,
                         error_class=EnvironmentProblem)
            if path != layout and image_id:
                # The name podman gave the pulled image; the image keeps the names above.
                proc.run([PODMAN, "untag", image_id, f"localhost{path}"], check=False,
                         echo=False, timeout=60)
        return f"the host's platform only ({self.info().os}/{self.info().arch}; podman keeps" \
               " one platform per name)"

    def remove_images(self, names: Sequence[str]) -> None:
        stored = []
        for n in names:
            link = self._links.pop(n, None)
            if link is not None:
                stored.append(f"localhost{link}")  # what podman named the image it pulled
                link.unlink(missing_ok=True)
        if names:
            proc.run([PODMAN, "rmi", "--force", *names, *stored], check=False, echo=False,
                     timeout=120)

    def runnable(self, layout: Path, name: str) -> str:
        """What ``run_argv`` runs for a smoke test: podman runs straight from the layout
        (``oci:PATH``), through a link at a path podman can name the image after."""
        link = reference_safe_link(layout, name.split(":", 1)[0])
        if link == layout:
            return f"oci:{layout}"
        self._links[name] = link
        return f"oci:{link}"

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


#: A path component of an image reference (distribution's grammar): podman names an
#: image pulled from ``oci:PATH`` ``localhost/PATH``, and refuses a PATH that is not one.
_REF_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")


def reference_safe(path: Path) -> bool:
    """Whether podman can name an image after ``path`` (no ``.cache``, no capitals)."""
    parts = [p for p in str(path).split("/") if p]
    return bool(parts) and all(_REF_COMPONENT.fullmatch(p) for p in parts)


def reference_safe_link(layout: Path, name: str) -> Path:
    """``layout`` itself when podman can name an image after it, else a new symbolic
    link to it named ``name`` in the temporary directory (the caller removes it). A
    layout in ``~/.cache`` is refused by ``podman pull oci:...`` and ``podman run``
    otherwise ("invalid reference format")."""
    if reference_safe(layout):
        return layout
    link = Path(tempfile.gettempdir()) / name
    if not reference_safe(link):
        return layout  # nowhere better: podman will say what is wrong
    link.unlink(missing_ok=True)
    link.symlink_to(layout.resolve(), target_is_directory=True)
    return link


@contextlib.contextmanager
def _reference_safe(layout: Path, name: str) -> Iterator[Path]:
    link = reference_safe_link(layout, name)
    try:
        yield link
    finally:
        if link != layout:
            link.unlink(missing_ok=True)


#: Named-context values podman takes (besides a directory and an http(s) URL).
_IMAGE_CONTEXT = ("docker-image://", "container-image://", "docker://")


#: The TYPE[,TYPE][[PLATFORMS]]: prefix of a buildx annotation; podman takes none but
#: manifest (its --annotation sets the image manifest's annotations).
_ANNOTATION_TYPE = re.compile(r"^([a-z-]+(?:,[a-z-]+)*(?:\[[^\]]*\])?):[^=]*=")


def _context_image(src: str) -> ImageRef | None:
    for prefix in _IMAGE_CONTEXT:
        if src.startswith(prefix):
            try:
                return parse_ref(src.removeprefix(prefix))
            except ValueError:
                return None
    return None


def oci_layout_context(src: str) -> str:
    """A named context as podman takes it. Podman (4.3) has no ``oci-layout://`` but
    reads OCI layouts through its ``oci:`` transport: ``oci-layout://DIR[:TAG]`` becomes
    ``container-image://oci:DIR[:TAG]``. A ``@sha256:...`` pin is checked against the
    layout's index.json and becomes the entry's ref name, or no name when the layout
    holds that one image; other values pass unchanged."""
    if not src.startswith("oci-layout://"):
        return src
    rest = src.removeprefix("oci-layout://")
    path, at, digest = rest.partition("@")
    if not at:
        head, colon, tag = path.rpartition(":")
        if colon and "/" not in tag:
            return f"container-image://oci:{head}:{tag}"
        return f"container-image://oci:{path}"
    try:
        entries = json.loads((Path(path) / "index.json").read_text()).get("manifests") or []
    except (OSError, ValueError, AttributeError):
        return f"container-image://oci:{path}"  # not there yet (dry run): podman says so
    hit = [e for e in entries if isinstance(e, dict) and e.get("digest") == digest]
    if not hit:
        raise UsageError(f"{src}: the layout's index.json has no {digest}")
    ref_name = (hit[0].get("annotations") or {}).get("org.opencontainers.image.ref.name")
    if ref_name:
        return f"container-image://oci:{path}:{ref_name}"
    if len(entries) == 1:
        return f"container-image://oci:{path}"
    raise UsageError(f"{src}: podman selects an image of an OCI layout by name, and"
                     f" {digest} has none in a layout of {len(entries)} images")


def unsupported(req: BuildRequest) -> None:
    """Refuse what podman cannot do instead of silently dropping it: one error naming
    every flag (exit 2)."""
    problems = []
    if req.provenance:
        problems.append("provenance attestations (--provenance)")
    if req.sbom:
        problems.append("SBOM attestations (--sbom)")
    if req.attest:
        problems.append("attestations (--attest)")
    if req.cache_from or req.cache_to:
        problems.append("buildx cache import/export (--cache, --cache-from, --cache-to)")
    if req.entitlements:
        problems.append("entitlements (--allow-entitlement)")
    for name, src in req.build_contexts.items():
        try:
            oci_layout_context(src)
        except UsageError as e:
            problems.append(f"--build-context {name}=... ({e.message})")
    for spec in req.annotation_args:
        m = _ANNOTATION_TYPE.match(spec)
        if m is not None and m.group(1) != "manifest":
            problems.append(f"{m.group(1)} annotations (--annotation {spec.split('=', 1)[0]}=...)")
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

_STEP = re.compile(r"^(?:\[(linux/[a-z0-9]+(?:/v\d)?)\] )?(STEP \d+/\d+: .*|COMMIT.*)$")


class StepLog:
    """Turns podman's step output into :class:`StepEvent` s and keeps it for errors.

    Podman prefixes each step with ``[platform]`` when it builds several platforms;
    with one platform the prefix is missing and the step belongs to that platform.
    """

    def __init__(self, platforms: Sequence[Platform],
                 on_step: Callable[[StepEvent], None] | None) -> None:
        self.only = str(platforms[0]) if len(platforms) == 1 else None
        self.on_step = on_step
        self.lines: list[str] = []
        self.open: dict[str | None, tuple[str, float, bool]] = {}  # platform -> step
        self.last_platform: str | None = self.only
        self.output: dict[tuple[str | None, str], list[str]] = {}
        self.failed: list[tuple[str | None, str]] = []

    def feed(self, line: str) -> None:
        self.lines.append(line)
        m = _STEP.match(line)
        if m is None:
            cur = self.open.get(self.last_platform)
            if cur is not None:
                if line.startswith("--> Using cache"):
                    self.open[self.last_platform] = (cur[0], cur[1], True)
                elif not line.startswith("--> "):
                    self.output.setdefault((self.last_platform, cur[0]), []).append(line)
            return
        plat = m.group(1) or self.only
        name = m.group(2)
        self._close(plat, None)
        self.last_platform = plat
        self.open[plat] = (name, time.monotonic(), False)
        self._emit(StepEvent(plat, name, "started"))

    def finish(self, error: str | None) -> None:
        for plat in list(self.open):
            if error:
                self.failed.append((plat, self.open[plat][0]))
            self._close(plat, error)

    def failed_step(self) -> tuple[str | None, str, str] | None:
        """(platform, step, its output) of the first step that was running when the build
        failed."""
        if not self.failed:
            return None
        plat, name = self.failed[0]
        return plat, name, "\n".join(self.output.get((plat, name), []))

    def _close(self, plat: str | None, error: str | None) -> None:
        cur = self.open.pop(plat, None)
        if cur is None:
            return
        name, started, cached = cur
        state = "error" if error else ("cached" if cached else "done")
        self._emit(StepEvent(plat, name, state, error, time.monotonic() - started))

    def _emit(self, ev: StepEvent) -> None:
        if self.on_step is not None:
            self.on_step(ev)


class _Follow:
    """Follow a growing file in a thread and pass each complete line to a callback."""

    def __init__(self, path: Path, on_line: Callable[[str], None]) -> None:
        self.path = path
        self.on_line = on_line
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Follow:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        buf = ""
        with self.path.open("r", encoding="utf-8", errors="replace") as f:
            while True:
                stopping = self._stop.is_set()
                chunk = f.read()
                if chunk:
                    buf += chunk
                    *lines, buf = buf.split("\n")
                    for line in lines:
                        self._deliver(line.rstrip("\r"))
                elif stopping:
                    break
                else:
                    self._stop.wait(0.1)
        if buf:
            self._deliver(buf)

    def _deliver(self, line: str) -> None:
        # A broken progress display must not kill the build.
        with contextlib.suppress(Exception):
            self.on_line(line)


# -- errors --------------------------------------------------------------------------

def build_reason(stderr: str) -> str:
    """The most specific line of podman's own error text."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        m = re.match(r"^\*?\s*(building at STEP .*)$", ln)
        if m:
            return m.group(1)
    for ln in reversed(lines):
        if ln.startswith("Error:"):
            return ln.removeprefix("Error:").strip()
    return lines[-1] if lines else "podman build failed"


def build_failure(stderr: str, steps: StepLog) -> BuildError:
    """A failed ``podman build`` with podman's own text: the failing step's output, then
    podman's error."""
    reason = build_reason(stderr)
    parts = []
    failed = steps.failed_step()
    where = ""
    if failed is not None:
        plat, name, out = failed
        where = f" ({plat})" if plat and not steps.only else ""
        parts.append(f"--- {f'[{plat}] ' if plat else ''}{name}")
        if out.strip():
            parts.append("\n".join(out.rstrip().splitlines()[-30:]))
    elif steps.lines:
        parts.append("\n".join(steps.lines[-30:]))
    if stderr.strip():
        parts.append("\n".join(stderr.rstrip().splitlines()[-30:]))
    return BuildError(f"build failed{where}: {reason}", detail="\n".join(parts) or None)


def push_failure(ref: ImageRef, text: str, *, insecure_hint: bool) -> RegistryError:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    err = next((ln for ln in reversed(lines) if ln.startswith("Error:")),
               lines[-1] if lines else "podman manifest push failed")
    hint = None
    if insecure_hint and "http response to https client" in err.lower():
        hint = f"the registry speaks plain HTTP: pass --insecure-registry {ref.registry}"
    return RegistryError(f"push to {ref} failed: {err.removeprefix('Error:').strip()}",
                         hint=hint, detail="\n".join(lines[-30:]) or None)


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
