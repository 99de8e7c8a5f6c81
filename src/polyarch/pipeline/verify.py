"""Verify: read the build's OCI layout on local disk (coverage, labels, ELF machine of
every binary, secrets in every layer and in the config), and run the smoke command of
every platform through the selected engine, before anything is pushed."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyarch import interrupt
from polyarch.platforms import Platform, parse_platform
from polyarch.session import Session

if TYPE_CHECKING:
    from polyarch.checks.deep import Judged
    from polyarch.checks.smoke import RunArgv
    from polyarch.checks.verify import VerifyReport


@dataclass
class SmokeTimes:
    """Where the smoke step's time went: getting the images into the engine, running."""

    load: float = 0.0
    run: float = 0.0
    cached: int = 0  # platforms whose smoke result was known (not run)
    ran: int = 0


@dataclass(frozen=True)
class Verified:
    report: VerifyReport | None  # None: --no-verify
    seconds: float
    #: The layer scan (coverage, labels, binaries, secrets) within ``seconds``.
    scan_seconds: float = 0.0
    #: The smoke step (None: no smoke command).
    smoke: SmokeTimes | None = None

    @property
    def ok(self) -> bool:
        return self.report is None or self.report.ok

    def to_json(self) -> dict[str, Any] | None:
        return self.report.to_json() if self.report is not None else None

    def timings(self) -> dict[str, float | int]:
        """The verify step's parts, for ``--json``'s ``timings``."""
        sm = self.smoke or SmokeTimes()
        return {"scan_seconds": round(self.scan_seconds, 3),
                "load_seconds": round(sm.load, 3), "smoke_seconds": round(sm.run, 3),
                "smoke_cached": sm.cached, "smoke_ran": sm.ran}


#: What an interruption of verification leaves behind, as a rule.
NOTHING_PUSHED = "verifying on local disk: nothing was pushed"


def findings_text(report: VerifyReport, limit: int = 20, see: str | None = None) -> str:
    """The errors (at most ``limit``), the ``--allow`` line that would accept each one
    about a path, and a line per platform with what it found below error."""
    errs = report.errors()
    lines = []
    for plat, f in errs[:limit]:
        where = f" {f.path}" if f.path else ""
        layer = f" (layer {f.layer[7:19]})" if f.layer else ""
        lines.append(f"  {plat or 'image'}: {f.check}:{where} {f.message}{layer}")
    if len(errs) > limit:
        lines.append(f"  ... and {len(errs) - limit} more (see --json)")
    allow = allow_lines(report)
    if allow:
        lines.append("to accept one of these as a known exception (it then becomes a note),"
                     " add its line to the command:")
        lines += [f"  {a}" for a in allow[:limit]]
        if len(allow) > limit:
            lines.append(f"  ... and {len(allow) - limit} more")
    lines += platform_lines(report, see or "this command with --json lists every finding")
    return "\n".join(lines)


def allow_lines(report: VerifyReport) -> list[str]:
    """``--allow PLATFORM=GLOB`` for each error about a path (binaries, secrets), in the
    form the option matches (the platform normalised, the path's glob characters
    escaped); errors without a path (coverage, labels, the config) cannot be allowed."""
    from polyarch.checks.allow import allow_argument

    out: list[str] = []
    for plat, f in report.errors():
        if not plat or not f.path or f.check not in ("binaries", "secrets"):
            continue
        try:
            name = str(parse_platform(plat))
        except ValueError:
            name = plat
        line = allow_argument(name, f.path)
        if line not in out:
            out.append(line)
    return out


def platform_lines(report: VerifyReport, see: str) -> list[str]:
    """One line per platform: its errors, warnings and notes, and where to read them."""
    out = []
    for p in report.platforms:
        n = {sev: sum(1 for f in p.findings if f.severity == sev)
             for sev in ("error", "warning", "info")}
        counts = ", ".join(f"{n[sev]} {word}{'' if n[sev] == 1 else 's'}" for sev, word in
                           (("error", "error"), ("warning", "warning"), ("info", "note")))
        hint = f" ({see})" if n["warning"] or n["info"] else ""
        out.append(f"  {p.platform}: {counts}{hint}")
    return out


def smoke_run_argv(run_argv: RunArgv, entrypoint: str | None) -> RunArgv:
    """``run_argv`` with the ``smoke-entrypoint`` option: the smoke command runs with
    that ENTRYPOINT instead of the image's (runs that name their own, such as the
    ``uname`` check, keep it)."""
    if entrypoint is None:
        return run_argv

    smoke_entrypoint = entrypoint

    def with_entrypoint(ref: str, platform: Platform, command: Sequence[str], *,
                        entrypoint: str | None = None) -> list[str]:
        return run_argv(ref, platform, command,
                        entrypoint=smoke_entrypoint if entrypoint is None else entrypoint)

    return with_entrypoint


def run_smoke(s: Session, report: VerifyReport,
              refs_for: Callable[[Sequence[str]], Mapping[str, str]]) -> SmokeTimes:
    """Run ``s.opts.smoke`` (and the ``uname -m`` check) in every platform of the image
    through the session's engine; findings go into ``report``.

    A platform whose manifest passed the same smoke command on the same engine before is
    not run again (the per-manifest smoke cache); ``refs_for(digests)`` makes the others
    runnable (loading only those where the engine must) and names what to run. The
    platforms run concurrently, each run within ``smoke-timeout`` seconds."""
    from concurrent.futures import ThreadPoolExecutor

    from polyarch.checks.smoke import SmokeCache
    from polyarch.checks.smoke import smoke as smoke_one

    times = SmokeTimes()
    command = s.opts.smoke
    entrypoint = s.opts.smoke_entrypoint
    engine = s.engine.name
    cache = SmokeCache(s.ws.smoke_cache)
    run_argv = smoke_run_argv(s.engine.run_argv, entrypoint)
    todo: list[tuple[Any, Platform]] = []
    for r in report.platforms:
        if r.status not in ("present", "unexpected") or not r.digest:
            continue
        try:
            plat = parse_platform(r.platform)
        except ValueError:
            continue
        r.ran.add("smoke")
        known = cache.get(r.digest, command, entrypoint, engine)
        if known is not None:
            s.rep.info(f"smoke {r.platform}: passed before for {r.digest[:19]}..., not run")
            times.cached += 1
            _record(r, known)
            continue
        todo.append((r, plat))
    if not todo:
        return times
    t0 = time.monotonic()
    refs = refs_for([r.digest for r, _ in todo])
    times.load = time.monotonic() - t0

    def one(item: tuple[Any, Platform]) -> list[Any]:
        r, plat = item
        s.rep.info(f"smoke run {r.platform}")
        return smoke_one(plat, refs[r.digest], command or None, run_argv,
                         timeout=s.opts.smoke_timeout)

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(todo), thread_name_prefix="smoke") as pool:
        results = list(pool.map(one, todo))
    times.run = time.monotonic() - t0
    times.ran = len(todo)
    for (r, _), res in zip(todo, results, strict=True):
        _record(r, res)
        cache.put(r.digest, command, entrypoint, engine, res)
    return times


def _record(r: Any, results: Sequence[Any]) -> None:
    """Smoke results into the platform's report: findings, and the command's first line."""
    from polyarch.checks.verify import Finding

    for res in results:
        if res.severity != "ok":
            r.findings.append(Finding("smoke", res.severity, res.message))
        elif res.first_line is not None:
            r.smoke_output = res.first_line


def remove_quietly(s: Session, names: Sequence[str], ran: Sequence[str] = ()) -> None:
    """Remove temporary images, and the names the runs of ``ran`` left
    (:meth:`~polyarch.engines.Engine.forget_runs`); a failure (a slow engine under load,
    say) is a warning, never the end of a publish that passed."""
    from polyarch.errors import FatalError

    if names:
        try:
            s.engine.remove_images(names)
        except FatalError as e:
            s.rep.warn(f"could not remove the temporary images {', '.join(names)}:"
                       f" {e.message}; remove them later with the engine's 'image rm'")
    if ran:
        try:
            s.engine.forget_runs(ran)
        except FatalError as e:
            s.rep.warn(f"could not remove the names the smoke runs left in the engine's"
                       f" store: {e.message}; its image list shows them (localhost/...)")


def smoke_layout(s: Session, report: VerifyReport, layout: Path) -> SmokeTimes:
    """The smoke step for an OCI layout on local disk: only the platforms to run are
    loaded into the engine, and removed afterwards (or, where the engine runs straight
    from the layout, the names its runs left)."""
    loaded: list[str] = []
    ran: list[str] = []

    def refs_for(digests: Sequence[str]) -> Mapping[str, str]:
        refs = s.engine.runnable_platforms(
            layout, digests, f"polyarch-smoke-{secrets.token_hex(6)}:latest")
        loaded.extend(r for r in refs.values() if not r.startswith("oci:"))
        ran.extend(r for r in refs.values() if r.startswith("oci:"))
        return refs

    try:
        return run_smoke(s, report, refs_for)
    finally:
        remove_quietly(s, loaded, ran)


def smoke_in_registry(s: Session, report: VerifyReport, name: str) -> SmokeTimes:
    """The smoke step for an image in a registry: every platform run by digest from the
    repository ``name`` (the engine pulls it)."""
    return run_smoke(s, report, lambda digests: {d: f"{name}@{d}" for d in digests})


def smoke_source(s: Session, report: VerifyReport, source: str) -> SmokeTimes:
    """The smoke step for what ``polyarch verify`` reads: ``oci:PATH`` from the layout
    (an archive is unpacked into the cache first), else by digest from the registry."""
    from polyarch.refs import parse_ref

    if not source.startswith("oci:"):
        return smoke_in_registry(s, report, parse_ref(source).name)
    path = Path(source[4:])
    if path.is_file():
        import tarfile

        unpacked = s.build_dir("smoke")
        with tarfile.open(path) as t:
            t.extractall(unpacked, filter="data")
        path = unpacked
    return smoke_layout(s, report, path)


def verify_source(s: Session, source: str, *, deep: bool) -> Verified:
    """``polyarch verify``: read ``source`` (a registry reference, or ``oci:PATH`` of a
    layout or its archive) for the session's platforms, then run the smoke step."""
    from polyarch.checks.verify import verify

    t0 = time.monotonic()
    local = source.startswith("oci:")
    report = verify(source, s.opts.platforms, allow=s.opts.allow, deep=deep,
                    client=None if local else s.client, progress=s.rep.info,
                    cache=s.layer_cache)
    scan = time.monotonic() - t0
    smoke_times = smoke_source(s, report, source) if s.opts.smoke is not None else None
    return Verified(report, time.monotonic() - t0, scan_seconds=scan, smoke=smoke_times)


def verify_layout(s: Session, layout: Path, expected: Sequence[Platform], *,
                  what: str, phase: str = NOTHING_PUSHED, judged: Judged | None = None
                  ) -> Verified:
    """Verify the OCI layout at ``layout`` (nothing unverified of it has left the
    machine; ``phase`` says what has, for an interruption; ``judged``: the verdicts of
    platforms verified on their own before)."""
    if not s.opts.verify:
        s.rep.warn("verification skipped (--no-verify): nobody checked this image")
        return Verified(None, 0.0)
    from polyarch.checks.verify import verify_source
    from polyarch.registry.layout import OCILayout

    t0 = time.monotonic()
    interrupt.set_phase(phase)
    smoke_times: SmokeTimes | None = None
    with s.rep.group(f"verify {what}"):
        # The layout the build has just written: cached layers are not read again.
        report = verify_source(OCILayout(layout), expected, allow=s.opts.allow,
                               cache=s.layer_cache, progress=s.rep.info, check_cached=False,
                               judged=judged)
        scan = time.monotonic() - t0
        if s.opts.smoke is not None:
            smoke_times = smoke_layout(s, report, layout)
    report.smoke = s.opts.smoke
    # The layout is removed when the command ends: name what was built instead.
    report.reference = what
    return Verified(report, time.monotonic() - t0, scan_seconds=scan, smoke=smoke_times)


