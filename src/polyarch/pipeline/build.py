"""Build: the engine writes every platform into an OCI layout in the cache directory.

Nothing is pushed here. The registry cache (``cache = "registry"``) is read while
building but written only after verification (:func:`export_cache`).
"""

from __future__ import annotations

import importlib
import re
import shlex
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from polyarch import interrupt, proc, redact, settings
from polyarch.config import OPTIONS, Options
from polyarch.config.table import Unsupported
from polyarch.engines import BuildRequest, EngineArg, StepEvent, buildx_plugin
from polyarch.errors import BuildError, EnvironmentProblem, FatalError, RegistryError
from polyarch.output import BuildProgress
from polyarch.pipeline.plan import Plan
from polyarch.platforms import Platform
from polyarch.refs import ImageRef
from polyarch.session import Session

CACHE_TAG = "buildcache"
#: What the steps after a build load (verification; the push's reading of the
#: Dockerfile's base images; the push itself, which starts as soon as a platform
#: passed): imported while the engine builds, so that the imports are off the path
#: from the build's end to the push.
AFTER_BUILD = ("polyarch.checks.verify", "polyarch.lint.graph", "polyarch.lint.parser",
               "polyarch.lint.shellwords", "polyarch.registry.push", "polyarch.registry.pushed",
               "polyarch.pipeline.tag")
#: What verification loads once it reads a large file: ``module:function`` run too.
#: Loaded beside a build that is still running :data:`LATE_AFTER` seconds after it
#: started, else when a large file is read: about 50 ms of CPU that a short build
#: (a changed top layer, whose small layer is read) would lose to it on a busy machine.
BEFORE_VERIFY = ("polyarch.checks.secrets.prefilter:warm",)
LATE_AFTER = 3.0
#: Longest wait for those imports once the build is done (they take a fraction of it).
PRELOAD_WAIT = 30.0


@dataclass(frozen=True)
class PlatformBuilt:
    platform: str
    digest: str
    mode: str  # native | emulated | ?
    size: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"platform": self.platform, "digest": self.digest, "mode": self.mode,
                "size": self.size}


@dataclass(frozen=True)
class Built:
    """One build's verified-to-be layout on local disk."""

    layout: Path
    digest: str  # of the root: an index, or a manifest for one platform
    media_type: str
    size: int
    platforms: tuple[PlatformBuilt, ...]
    seconds: float
    request: BuildRequest
    context_bytes: int = 0  # build context the builder received (0: not said)

    @property
    def oci_spec(self) -> str:
        return f"oci:{self.layout}"


def cache_refs(opts: Options, repo: ImageRef | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """--cache-from and --cache-to values for ``cache = "registry"`` / ``"inline"``.

    The registry cache lives in the target repository under one tag per set of platforms
    built together (``buildcache-linux-amd64-linux-arm64``), so a build of one platform
    never evicts another's. Every build reads its own set's cache and each of its single
    platforms' caches.
    """
    if opts.no_cache:
        return (), ()
    if opts.cache == "inline":
        # The cache travels inside the image: read it from the tags users pull.
        return tuple(f"type=registry,ref={t}" for t in opts.tags), ("type=inline",)
    if opts.cache != "registry" or repo is None:
        return (), ()

    def ref(plats: Sequence[object]) -> str:
        slug = "-".join(str(p).replace("/", "-") for p in plats)
        return str(repo.untagged().with_tag(f"{CACHE_TAG}-{slug}"[:128]))

    own = ref(opts.platforms)
    sources = [own] + ([ref([p]) for p in opts.platforms] if len(opts.platforms) > 1 else [])
    return (tuple(f"type=registry,ref={r}" for r in sources),
            (f"type=registry,ref={own},mode=max,ignore-error=true",))


def request(opts: Options, output: Path | None, *, annotations: dict[str, str],
            cache_repo: ImageRef | None = None) -> BuildRequest:
    cache_from, cache_to = cache_refs(opts, cache_repo or (opts.tags[0] if opts.tags else None))
    return BuildRequest(
        context=Path(opts.context),
        dockerfile=opts.dockerfile,
        platforms=opts.platforms,
        output=output,
        build_args=dict(opts.build_args),
        build_contexts=dict(opts.build_contexts),
        labels=dict(opts.labels),
        annotations=annotations,
        annotation_args=opts.annotations,
        provenance=opts.provenance,
        sbom=opts.sbom,
        cache_from=cache_from + opts.cache_from,
        cache_to=cache_to + opts.cache_to,
        args=engine_args(opts),
    )


def engine_args(opts: Options) -> tuple[EngineArg, ...]:
    """The passthrough build options that are set, each in every engine's spelling from
    the option table (a value per flag; KEY=VALUE per item of a table; a true bool: the
    flag alone)."""
    out: list[EngineArg] = []
    for o in OPTIONS:
        if o.engine is None:
            continue
        value = opts.value(o.name)
        if isinstance(value, bool) or value is None:
            values: list[str | None] = [None] if value else []
        elif isinstance(value, str):
            values = [value] if value else []
        elif isinstance(value, Mapping):
            values = [f"{k}={v}" for k, v in value.items()]
        else:
            values = [str(v) for v in value]
        if not values:
            continue
        argv: dict[str, tuple[str, ...]] = {}
        lacks: dict[str, str] = {}
        for engine, spelling in o.engine.spellings():
            if isinstance(spelling, Unsupported):
                lacks[engine] = spelling.reason
            else:
                argv[engine] = tuple(a for v in values
                                     for a in ((spelling,) if v is None else (spelling, v)))
        out.append(EngineArg(o.flags[-1] if o.flags else o.key, argv, lacks))
    return tuple(out)


_INDEX_ANNOTATION = re.compile(r"^([a-z-]+(?:,[a-z-]+)*):(?P<key>[^=]+)=(?P<value>.*)$", re.S)


def index_annotations(req: BuildRequest) -> dict[str, str]:
    """The index annotations a build asks for: polyarch's own and the ``index:`` ones
    given with ``--annotation`` (a merge puts them on the index it writes)."""
    out = dict(req.annotations)
    for spec in req.annotation_args:
        m = _INDEX_ANNOTATION.match(spec)
        if m is not None and "index" in m.group(1).split(","):
            out[m.group("key")] = m.group("value")
    return out


def commands(s: Session, plan: Plan, req: BuildRequest) -> list[list[str]]:
    """Print and return the commands a build would run (``--dry-run``)."""
    cmds: list[list[str]] = list(plan.setup_commands)
    cmds.extend(s.engine.build_commands(req, Path("<tmp>/metadata.json")))
    if not all(c.startswith("type=inline") for c in req.cache_to):
        # After verification: the cache-only export of the registry build cache.
        cmds.extend(s.engine.build_commands(replace(req, cache_only=True, output=None),
                                            Path("<tmp>/metadata.json")))
    cmds = [buildx_plugin.as_docker(c) for c in cmds]  # to be run anywhere
    for c in cmds:
        s.rep.info(shlex.join(redact.argv(c)))
    return cmds


def _platforms(layout: Path, plan: Plan, fallback: Sequence[Platform]) -> tuple[PlatformBuilt, ...]:
    from polyarch.registry.layout import OCILayout
    from polyarch.registry.media import is_attestation

    root = OCILayout(layout).root()
    if not root.is_index:
        p = str(fallback[0])
        return (PlatformBuilt(p, root.digest, plan.platform_modes.get(p, "?"), len(root.data)),)
    out = []
    for m in root.json.get("manifests") or []:
        if is_attestation(m):
            continue
        pd = m.get("platform") or {}
        name = "/".join(x for x in (pd.get("os"), pd.get("architecture"), pd.get("variant")) if x)
        out.append(PlatformBuilt(name, str(m.get("digest", "")),
                                 plan.platform_modes.get(name, "?"), int(m.get("size", 0))))
    return tuple(out)


def _reachable(layout: Path) -> set[str]:
    """Every blob the layout's index.json reaches (indexes, manifests, configs, layers)."""
    from polyarch.registry.layout import OCILayout

    lay = OCILayout(layout)
    out: set[str] = set()
    todo = [str(d.get("digest", "")) for d in lay.index_json().get("manifests") or []
            if isinstance(d, dict)]
    while todo and len(out) < 100_000:
        digest = todo.pop()
        if digest in out or not digest:
            continue
        out.add(digest)
        doc = lay.manifest(digest).json  # only index entries get here: never a layer
        for child in doc.get("manifests") or []:
            if isinstance(child, dict):
                todo.append(str(child.get("digest", "")))
        for d in [doc.get("config"), *(doc.get("layers") or [])]:
            if isinstance(d, dict) and isinstance(d.get("digest"), str):
                out.add(d["digest"])
    return out


def seed_key(req: BuildRequest) -> str:
    """What a build is, for the blob store's seed lists: the same context, Dockerfile,
    engine options (the target among them) and platforms are the same image rebuilt (its
    unchanged layers are reused)."""
    import hashlib
    import json

    what = [str(req.context.resolve()), str(req.dockerfile.resolve()),
            [(arg.option, sorted(arg.argv.items())) for arg in req.args],  # --target too
            sorted(str(p) for p in req.platforms)]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:32]


#: Longest wait of the work started beside a build for the build's command to start.
START_WAIT = 2.0


def preload(modules: Sequence[str], after: threading.Event | None = None,
            late: Sequence[str] = (), unless: threading.Event | None = None
            ) -> threading.Thread:
    """Import ``modules`` in a thread of their own, and call the function named after a
    colon (``module:function``); a failure is left for the step that needs the module
    to report. ``after``: once it is set (at most :data:`START_WAIT` seconds later), so
    that the imports do not hold the interpreter while the build's command starts.
    ``late``: the same, :data:`LATE_AFTER` seconds after the start, unless ``unless`` is
    set by then."""
    t0 = time.monotonic()

    def load(names: Sequence[str]) -> bool:
        for name in names:
            module, _, function = name.partition(":")
            try:
                loaded = importlib.import_module(module)
                if function:
                    getattr(loaded, function)()
            except Exception:  # noqa: BLE001 - the step that uses it says what is wrong
                return False
        return True

    def run() -> None:
        if after is not None:
            after.wait(START_WAIT)
        if load(modules) and late and not (
                unless is not None and unless.wait(max(0.0, t0 + LATE_AFTER - time.monotonic()))):
            load(late)

    t = threading.Thread(target=run, name="polyarch-preload", daemon=True)
    t.start()
    return t


@dataclass(frozen=True)
class AlongsideCheck:
    """A check made while the engine builds (the registry's, which needs the HTTP
    client's imports): ``run`` raises the error of a blocking problem. It checks
    ``repositories`` repositories one after the other, each with at most a credential
    helper's run and four registry operations, each with its own deadline: that bounds
    the wait for it."""

    run: Callable[[], None]
    repositories: int = 1

    def limit(self) -> float:
        cur = settings.current()
        return max(1, self.repositories) * (cur.command_timeout + 4 * cur.registry_timeout)


class _Alongside:
    """An :class:`AlongsideCheck` under way: a blocking problem it finds stops the build
    and is what the build step raises, as if it had been found before the build."""

    def __init__(self, check: AlongsideCheck | None) -> None:
        self.cancel = proc.Cancel()
        self._bug: Exception | None = None  # raised as it is, for the CLI to report
        self._thread: threading.Thread | None = None
        self._limit = check.limit() if check is not None else 0.0
        self._made = time.monotonic()
        self._began: float | None = None  # when the check started
        #: Set once the check passed (at once when there is none) and the build has not
        #: failed: what it learnt (a registry password, a value verification looks for)
        #: is known from then on.
        self.passed = threading.Event()
        self.build_failed = threading.Event()
        if check is None:
            self.passed.set()
        else:
            self._thread = threading.Thread(target=self._run, args=(check.run,),
                                            name="polyarch-alongside", daemon=True)
            self._thread.start()

    def _run(self, check: Callable[[], None]) -> None:
        # Once the build's command has started (its imports would hold the interpreter
        # while it starts), or it failed first.
        self.cancel.started.wait(START_WAIT)
        self._began = time.monotonic()
        try:
            check()
            if not self.build_failed.is_set():
                self.passed.set()
        except FatalError as e:
            self.cancel.set(e)
        except Exception as e:  # noqa: BLE001 - a bug: raised by settle()
            self._bug = e
            self.cancel.set(FatalError("the registry check failed"))

    def settle(self, *, build_failed: bool = False) -> None:
        """Wait for the check, up to its limit from its start (once the build's command
        started, at most :data:`START_WAIT` after it was made), and raise what it found.
        After a failed build, a check without an answer by then leaves the build's own
        error to be raised."""
        if self._thread is not None:
            began = self._began if self._began is not None else min(
                time.monotonic(), self._made + START_WAIT)
            self._thread.join(max(0.0, began + self._limit - time.monotonic()))
            if self._thread.is_alive():
                if build_failed:
                    return
                self.cancel.set(RegistryError(
                    f"the registry check did not finish within {self._limit:g} s",
                    hint="check the registry; if it needs longer, raise"
                         " POLYARCH_REGISTRY_TIMEOUT (seconds)"))
        if self._bug is not None:
            raise self._bug
        if self.cancel.error is not None:
            raise self.cancel.error


def build(s: Session, plan: Plan, req: BuildRequest, *,
          alongside: AlongsideCheck | None = None,
          exported: Callable[[str, threading.Event], None] | None = None) -> Built:
    """Run the build into ``req.output`` (a fresh directory of the session).
    ``alongside``: a check made while the engine builds; the error it raises stops the
    build and is raised here (also when the build failed for another reason).
    ``exported(digest, checked)``: called (in this thread, as the build's output is
    read) once the engine says the image index is stored in ``req.output``, before the
    build ended (buildx only); ``checked`` is set once the ``alongside`` check passed
    (never, when it fails). It must return at once."""
    assert req.output is not None
    plats = ", ".join(str(p) for p in req.platforms)
    interrupt.set_phase("building: nothing was pushed")
    # (and the result's table, printed at the end)
    # Blobs earlier builds exported are linked in first: the exporter skips them.
    key = seed_key(req)
    s.ws.seed(req.output, key)
    with s.rep.group(f"build {plats}"), BuildProgress(s.rep) as prog:
        check = _Alongside(alongside)
        built = threading.Event()
        loading = preload(AFTER_BUILD + s.rep.table_modules(), after=check.cancel.started,
                          late=BEFORE_VERIFY if s.opts.verify else (), unless=built)
        try:
            step: Callable[[StepEvent], None] = prog
            if exported is not None:
                def step(ev: StepEvent) -> None:
                    if ev.state == "exported":
                        exported(ev.name, check.passed)
                    prog(ev)
            res = s.engine.build(req, on_step=step, cancel=check.cancel)
        except FatalError as e:
            check.build_failed.set()  # (nothing waiting for the check goes on now)
            check.cancel.started.set()  # (the command may not have started: no more wait)
            check.settle(build_failed=True)  # what it found comes first
            text = f"{e.message} {e.detail or ''}".lower()
            if "no space left on device" in text:
                raise EnvironmentProblem(
                    f"the disk of the cache directory {s.ws.root} is full",
                    hint="free space, or set POLYARCH_CACHE_DIR to a directory with room"
                ) from None
            raise
        finally:
            check.cancel.started.set()  # an engine that ran no command with the token
            built.set()
        check.settle()
    # Nothing below imports while the preloading thread still does.
    loading.join(PRELOAD_WAIT)
    if not (req.output / "index.json").is_file():
        raise BuildError(f"the engine wrote no OCI layout to {req.output}")
    try:
        reachable = _reachable(req.output)
    except (FatalError, ValueError, OSError):
        pass  # verification reports what is wrong with the layout; keep every blob
    else:
        s.ws.absorb(req.output, reachable, key)
    return Built(req.output, res.digest, res.media_type, res.size,
                 _platforms(req.output, plan, req.platforms), res.seconds, req,
                 res.context_bytes)


def export_cache(s: Session, built: Built) -> None:
    """Write the build cache (``--cache-to``, ``cache = "registry"``) once the image it
    caches passed verification: the cache holds the image's layers."""
    req = built.request
    if all(c.startswith("type=inline") for c in req.cache_to):
        return  # no cache to export, or only the inline one (inside the image itself)
    with s.rep.group("export build cache"), BuildProgress(s.rep) as prog:
        s.engine.build(replace(req, cache_only=True, output=None), on_step=prog)
