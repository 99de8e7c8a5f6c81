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
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from polyarch.checks import attestations, judge
from polyarch.checks import secrets as secret_checks
from polyarch.checks.allow import allow_for
from polyarch.checks.cache import LayerCache
from polyarch.checks.filesystem import merge
from polyarch.checks.layers import LayerFormatError, LayerScan
from polyarch.checks.parallel import Spawn, processes_for, scan_all, spawn_worker
from polyarch.checks.report import CHECKS, SCHEMA, Finding, PlatformResult, VerifyReport
from polyarch.checks.smoke import RunArgv, SmokeResult, docker_run_argv
from polyarch.checks.smoke import smoke as run_smoke
from polyarch.errors import UsageError, VerificationError
from polyarch.platforms import ARCHES, DEFAULT_VARIANT, Platform, parse_platform
from polyarch.refs import ImageRef
from polyarch.registry.client import RegistryClient
from polyarch.registry.media import Manifest, is_attestation, load_json
from polyarch.registry.source import ImageSource, open_source

#: ``hook(platform, manifest_digest)`` runs one variant and says how it went.
SmokeHook = Callable[[Platform, str], Sequence[SmokeResult]]

# -- helpers ----------------------------------------------------------------------------

def _platform_str(p: dict[str, Any]) -> str:
    os_ = str(p.get("os") or "?")
    arch = str(p.get("architecture") or "?")
    variant = str(p.get("variant") or "")
    return f"{os_}/{arch}/{variant}" if variant else f"{os_}/{arch}"


def _same_platform(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if (a.get("os"), a.get("architecture")) != (b.get("os"), b.get("architecture")):
        return False
    va, vb = str(a.get("variant") or ""), str(b.get("variant") or "")
    if va == vb:
        return True
    default = DEFAULT_VARIANT.get(str(a.get("architecture")), "")
    return {va, vb} <= {"", default}


def _to_platform(p: dict[str, Any]) -> Platform | None:
    """The known platform a descriptor names, or ``None``. An architecture polyarch
    knows with a variant it does not (``amd64/v3``) is kept as written: its binaries
    are judged by the architecture's ELF machine."""
    if p.get("os") != "linux":
        return None
    arch = str(p.get("architecture") or "")
    variant = str(p.get("variant") or "")
    for text in (f"linux/{arch}/{variant}" if variant else f"linux/{arch}", f"linux/{arch}"):
        try:
            plat = parse_platform(text)
        except ValueError:
            continue
        if (plat.architecture, plat.variant) in ARCHES and plat.architecture == arch:
            if variant and plat.variant != variant and arch == "amd64":
                return Platform("linux", arch, variant)
            return plat
    return None


def _is_layer(desc: dict[str, Any]) -> bool:
    mt = str(desc.get("mediaType") or "")
    return "tar" in mt or mt == "" or mt.startswith("application/vnd.docker.image.rootfs")


@dataclass
class _Procs:
    """How layers are read: ``count`` worker processes (``None``: as many as
    :func:`processes_for` says), started by ``spawn``."""

    count: int | None
    spawn: Spawn


@dataclass
class _Entry:
    result: PlatformResult
    desc: dict[str, Any]
    plat: Platform | None
    manifest: Manifest | None = None
    config: dict[str, Any] | None = None


# -- verify -----------------------------------------------------------------------------

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
    starts one. Raises
    :class:`RegistryError` when the source cannot be read and
    :class:`VerificationError` when its manifests are malformed; every problem with the
    image itself is a finding in the report.
    """
    t0 = time.monotonic()
    n = workers if workers is not None else max(2, os.cpu_count() or 2)
    try:
        recheck = src.ref is None if check_cached is None else check_cached
        report = _verify(src, list(expected), allow, deep, max(1, n), progress, cache,
                         smoke_hook, recheck, _Procs(processes, spawn))
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
            smoke_hook: SmokeHook | None, recheck: bool, procs: _Procs) -> VerifyReport:
    say = progress or (lambda _m: None)
    root = src.root()
    report = VerifyReport(src.description, root.digest, root.media_type,
                          [str(p) for p in expected], deep, None)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        entries = _entries(src, root, pool, report)
        _coverage(entries, expected, report)
        for e in entries:
            if e.manifest is not None:
                _labels(e)
        if deep:
            _deep(src, entries, allow, pool, say, cache, report, recheck, procs)
            if root.is_index:
                # What a pull gets besides the platforms: attestation manifests (their
                # in-toto layers), and the annotations of every descriptor.
                attestations.check_index(
                    src, root, {e.result.digest: e.result for e in entries if e.result.digest},
                    report, pool)
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


def _entries(src: ImageSource, root: Manifest, pool: ThreadPoolExecutor,
             report: VerifyReport) -> list[_Entry]:
    """One entry per platform descriptor, with its manifest and config fetched."""
    if root.is_index:
        descs = [d for d in root.json.get("manifests") or [] if isinstance(d, dict)]
        descs = [d for d in descs if not is_attestation(d)]
        manifests = list(pool.map(lambda d: src.manifest(str(d["digest"])), descs))
    else:
        descs = [{"digest": root.digest, "mediaType": root.media_type}]
        manifests = [root]
        report.findings.append(Finding(
            "coverage", "warning", "the reference is a single-platform manifest, not an index"))

    def config(m: Manifest) -> dict[str, Any] | None:
        if m.is_index:
            return None
        cfg = m.json.get("config")
        if not isinstance(cfg, dict) or not isinstance(cfg.get("digest"), str):
            return None
        doc = load_json(src.blob(cfg["digest"]), f"image config {cfg['digest']}")
        return doc if isinstance(doc, dict) else None

    configs = list(pool.map(config, manifests))
    entries = []
    for d, m, c in zip(descs, manifests, configs, strict=True):
        plat_doc = d.get("platform")
        if not isinstance(plat_doc, dict):
            # A manifest without an index around it: it is what its config says.
            plat_doc = {k: c.get(k) for k in ("os", "architecture", "variant")} if c else {}
        res = PlatformResult(_platform_str(plat_doc), m.digest)
        if c is not None:
            res.config_platform = _platform_str(c)
        entry = _Entry(res, {**d, "platform": plat_doc}, _to_platform(plat_doc), m, c)
        if m.is_index:
            res.findings.append(Finding("coverage", "error", "index entry is itself an index"))
            entry.manifest = None
        entries.append(entry)
    return entries


def _coverage(entries: list[_Entry], expected: list[Platform], report: VerifyReport) -> None:
    seen: dict[Platform, _Entry] = {}
    for e in entries:
        e.result.ran.add("coverage")
        pd = e.desc["platform"]
        match = next((p for p in expected
                      if p.matches(str(pd.get("os")), str(pd.get("architecture")),
                                   pd.get("variant"))), None)
        if match is None:
            e.result.status = "unexpected"
            want = ", ".join(str(p) for p in expected)
            e.result.findings.append(Finding(
                "coverage", "error", f"{e.result.platform} is in the index but not expected"
                                     f" (expected: {want})"))
        elif match in seen:
            e.result.status = "duplicate"
            e.result.findings.append(Finding(
                "coverage", "error", f"{match} appears more than once in the index (also"
                                     f" {seen[match].result.digest})"))
        else:
            seen[match] = e
    for p in expected:
        if p not in seen:
            res = PlatformResult(str(p), None, status="missing")
            res.ran.add("coverage")
            res.findings.append(Finding("coverage", "error",
                                        f"{p} is expected but missing from the index"))
            entries.append(_Entry(res, {"platform": {}}, p))


def _labels(e: _Entry) -> None:
    e.result.ran.add("labels")
    if e.config is None:
        e.result.findings.append(Finding("labels", "error", "image config could not be read"))
        return
    if not _same_platform(e.desc["platform"], e.config):
        e.result.findings.append(Finding(
            "labels", "error",
            f"index entry says {e.result.platform} but its image config says"
            f" {_platform_str(e.config)}"))


def _deep(src: ImageSource, entries: list[_Entry], allow: Sequence[str],
          pool: ThreadPoolExecutor, say: Callable[[str], None], cache: LayerCache | None,
          report: VerifyReport, recheck: bool, procs: _Procs) -> None:
    layer_lists: dict[int, list[str]] = {}
    wanted: list[str] = []
    for i, e in enumerate(entries):
        if e.manifest is None or e.result.status == "missing":
            continue
        layers = [d for d in e.manifest.json.get("layers") or [] if isinstance(d, dict)]
        digests = [str(d["digest"]) for d in layers if _is_layer(d) and d.get("digest")]
        layer_lists[i] = digests
        e.result.layers = len(digests)
        e.result.compressed_bytes = sum(int(d.get("size") or 0) for d in layers if _is_layer(d))
        wanted += [dg for dg in digests if dg not in wanted]
    scans: dict[str, LayerScan | Finding] = {}
    if cache is not None:
        for dg in wanted:
            cached = cache.get(dg)
            if cached is not None:
                scans[dg] = cached
    todo = [dg for dg in wanted if dg not in scans]
    report.layers_cached = len(wanted) - len(todo)
    report.layers_read = len(todo)
    say(f"reading {len(todo)} layers" + (f" ({report.layers_cached} cached)"
                                          if report.layers_cached else ""))
    # Largest first: the longest reads start at once and the small ones fill in.
    sizes = {str(d.get("digest")): int(d.get("size") or 0) for e in entries if e.manifest
             for d in e.manifest.json.get("layers") or [] if isinstance(d, dict)}
    # A cached scan says what a blob with this digest holds; whether the file still is
    # that blob is checked by reading it (its digest, without the walk).
    checks = [pool.submit(_check_digest, src, dg)
              for dg in sorted(scans, key=lambda d: -sizes.get(d, 0))] if recheck else []
    n = procs.count if procs.count is not None else processes_for(
        todo, sizes, os.cpu_count() or 1)
    results = scan_all(src, todo, sizes, threads=pool, processes=n, spawn=procs.spawn)
    try:
        for dg, result in results:
            try:
                scan = result()
            except LayerFormatError as ex:
                scans[dg] = Finding("binaries", "error", f"layer cannot be read: {ex}",
                                    layer=dg)
                continue
            scans[dg] = scan
            if cache is not None:
                cache.put(scan)
    finally:
        results.close()  # on an error or Ctrl-C here: the worker processes stop now
    for check in checks:
        check.result()  # a blob that does not match its digest: RegistryError
    if cache is not None and todo:
        cache.prune()
    for i, digests in layer_lists.items():
        e = entries[i]
        good: list[LayerScan] = []
        for dg in digests:
            s = scans[dg]
            if isinstance(s, Finding):
                e.result.findings.append(s)
            else:
                good.append(s)
        fs = merge(good)
        # The platform as --allow normalises it (linux/arm64/v8 is linux/arm64).
        mine = allow_for(allow, e.plat if e.plat is not None else e.result.platform)
        judge.binaries(e.result, fs, e.plat, mine, e.config)
        judge.secrets(e.result, fs, mine)
        # What a pull also gets besides the layers: the config (Env, Labels, the build
        # arguments BuildKit records in history) and the manifest's annotations.
        hits = secret_checks.scan_config(e.config or {})
        if e.manifest is not None:
            doc = e.manifest.json
            ann = doc.get("annotations")
            hits += secret_checks.scan_annotations(ann if isinstance(ann, dict) else {})
            hits += secret_checks.scan_descriptors(doc)
        for hit in hits:
            e.result.findings.append(Finding("secrets", hit.severity, hit.describe(),
                                             path=None))


def _check_digest(src: ImageSource, digest: str) -> None:
    for _ in src.iter_blob(digest):  # the source checks the digest at the end
        pass


__all__ = ["CHECKS", "SCHEMA", "Finding", "LayerCache", "PlatformResult", "SmokeHook",
           "VerifyReport", "verify", "verify_source"]
