"""``verify``: prove that every variant of an image is what its platform label says.

Checks, each reported per platform:

``coverage``  exactly the expected platforms are in the index, each once;
``labels``    each index entry's platform equals its config's os/architecture/variant;
``binaries``  every ELF executable and shared object of the final filesystem (after
              whiteouts) has the machine, class and byte order of the platform, or of
              the platform its path names (:mod:`polyarch.checks.tagged`);
``secrets``   no credentials in the final filesystem (text, binaries' strings), in the
              image's config (``ENV``, labels, every history entry), in a layer blob
              whose file a later layer deleted (``deleted-but-shipped``), in any
              descriptor's annotations, or in an attestation (:mod:`attestations`);
``smoke``     (optional) through a hook the caller passes: a run of each variant.

:func:`verify_source` reads any :class:`ImageSource` (the OCI layout a build wrote to
disk, before anything is pushed; or a registry). Layers are decompressed and walked
in parallel threads, each distinct layer once, never written to disk, and their scans
kept in a :class:`LayerCache` by digest: a rebuild re-reads only the layers that
changed. :func:`verify` is the same for a reference string (``REF`` or ``oci:PATH``).
The index's entries and the ``coverage`` and ``labels`` checks are in :mod:`entries`,
the layers' checks in :mod:`deep`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from polyarch.checks import attestations
from polyarch.checks import secrets as secret_checks
from polyarch.checks.cache import LayerCache
from polyarch.checks.deep import Judged, Procs, check_layers
from polyarch.checks.entries import check_coverage, check_labels, read_entries
from polyarch.checks.parallel import Spawn, spawn_worker
from polyarch.checks.report import CHECKS, SCHEMA, Finding, PlatformResult, VerifyReport
from polyarch.checks.smoke import RunArgv, SmokeResult, docker_run_argv
from polyarch.checks.smoke import smoke as run_smoke
from polyarch.errors import UsageError, VerificationError
from polyarch.platforms import Platform
from polyarch.refs import ImageRef
from polyarch.registry.client import RegistryClient
from polyarch.registry.source import ImageSource, open_source

#: ``hook(platform, manifest_digest)`` runs one variant and says how it went.
SmokeHook = Callable[[Platform, str], Sequence[SmokeResult]]


def verify_source(
    src: ImageSource,
    expected: Sequence[Platform],
    *,
    allow: Sequence[str] = (),
    cache: LayerCache | None = None,
    smoke_hook: SmokeHook | None = None,
    progress: Callable[[str], None] | None = None,
    deep: bool = True,
    workers: int | None = None,
    check_cached: bool | None = None,
    processes: int | None = None,
    spawn: Spawn = spawn_worker,
    judged: Judged | None = None,
) -> VerifyReport:
    """Verify the image ``src`` holds against the ``expected`` platforms.

    ``cache`` keeps layer scans by digest (``None``: read every layer). A layer the
    cache knows is still read and its digest checked when ``check_cached`` is true
    (default: for an OCI layout on disk, whose files may have changed since the scan;
    a registry's blobs are addressed by their digest, which every pull checks). The
    pipeline passes ``False`` for the layout its own build has just written. ``smoke_hook``
    (``None``: no runs) is called once per present platform with its manifest digest.
    ``deep=False`` checks coverage and labels only (no layer is read). ``workers``
    threads read layers (default: one per core, at least two). ``processes`` worker
    processes walk them instead (default: one per core when there is enough to read,
    :func:`~polyarch.checks.parallel.processes_for`; ``0``: threads only); ``spawn``
    starts one. ``judged`` keeps each platform's verdict for a later verification of
    the same manifests in this process (:class:`~polyarch.checks.deep.Judged`). Raises
    :class:`RegistryError` when the source cannot be read and
    :class:`VerificationError` when its manifests are malformed; every problem with the
    image itself is a finding in the report.
    """
    t0 = time.monotonic()
    n = workers if workers is not None else max(2, os.cpu_count() or 2)
    try:
        recheck = src.ref is None if check_cached is None else check_cached
        report = _verify(src, list(expected), allow, deep, max(1, n), progress, cache,
                         smoke_hook, recheck, Procs(processes, spawn), judged)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        # Malformed manifests, configs or index entries (not JSON, fields missing or of
        # the wrong type): the image cannot be verified, so it fails verification.
        raise VerificationError(f"{src.description}: the image is malformed and cannot be"
                                f" verified: {type(e).__name__}: {e}") from None
    report.elapsed = time.monotonic() - t0
    return report


def verify(
    source: str | ImageRef,
    expected: Sequence[Platform],
    *,
    allow: Sequence[str] = (),
    smoke: str | None = None,
    deep: bool = True,
    client: RegistryClient | None = None,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
    run_argv: RunArgv = docker_run_argv,
    cache: LayerCache | None = None,
) -> VerifyReport:
    """Verify the image at ``source`` (a registry reference or ``oci:PATH``).

    ``smoke`` (``None``: no runs) is a command to run in every platform's image; an
    empty string runs only the ``uname -m`` check. ``run_argv`` builds the engine's run
    command (docker by default). Otherwise as :func:`verify_source`.
    """
    is_layout = isinstance(source, str) and source.startswith("oci:")
    if smoke is not None and is_layout:
        raise UsageError("smoke runs need a registry reference (the engine pulls the image);"
                         " an OCI layout cannot be run")
    own = client is None and not is_layout
    cl = RegistryClient() if own else client
    try:
        src = open_source(source, cl)
        hook: SmokeHook | None = None
        if smoke is not None and src.ref is not None:
            name = src.ref.name

            def hook(plat: Platform, digest: str) -> Sequence[SmokeResult]:
                return run_smoke(plat, f"{name}@{digest}", smoke or None, run_argv)

        report = verify_source(src, expected, allow=allow, cache=cache, smoke_hook=hook,
                               progress=progress, deep=deep, workers=workers)
    finally:
        if own and cl is not None:
            cl.close()
    report.smoke = smoke
    return report


def _verify(src: ImageSource, expected: list[Platform], allow: Sequence[str], deep: bool,
            workers: int, progress: Callable[[str], None] | None, cache: LayerCache | None,
            smoke_hook: SmokeHook | None, recheck: bool, procs: Procs,
            judged: Judged | None = None) -> VerifyReport:
    say = progress or (lambda _m: None)
    root = src.root()
    report = VerifyReport(src.description, root.digest, root.media_type,
                          [str(p) for p in expected], deep, None)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        entries = read_entries(src, root, pool, report)
        check_coverage(entries, expected, report)
        for e in entries:
            if e.manifest is not None:
                check_labels(e)
        if deep:
            check_layers(src, entries, allow, pool, say, cache, report, recheck, procs,
                         judged)
            if root.is_index:
                # What a pull gets besides the platforms: attestation manifests (their
                # in-toto layers), and the annotations of every descriptor.
                attestations.check_index(
                    src, root, {e.result.digest: e.result for e in entries if e.result.digest},
                    report, pool, judged)
    if deep and root.is_index:
        ann = root.json.get("annotations")
        for hit in secret_checks.scan_annotations(ann if isinstance(ann, dict) else {}):
            report.findings.append(Finding("secrets", hit.severity, hit.describe(), path=None))
    if smoke_hook is not None:
        for e in entries:
            if e.result.status in ("present", "unexpected") and e.plat and e.manifest:
                say(f"smoke run {e.result.platform}")
                e.result.ran.add("smoke")
                for r in smoke_hook(e.plat, e.manifest.digest):
                    if r.severity != "ok":
                        e.result.findings.append(Finding("smoke", r.severity, r.message))
    report.platforms = [e.result for e in entries]
    report.platforms.sort(key=lambda r: (r.status == "missing", r.platform))
    return report


__all__ = ["CHECKS", "SCHEMA", "Finding", "Judged", "LayerCache", "PlatformResult", "SmokeHook",
           "VerifyReport", "verify", "verify_source"]
