"""The deep checks of ``verify``: the layers of every platform read (each distinct
layer once, in parallel, or taken from the :class:`LayerCache`), each platform's final
filesystem judged (``binaries``, ``secrets``), and its config and manifest annotations
read for secrets.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from polyarch.checks import judge
from polyarch.checks import secrets as secret_checks
from polyarch.checks.allow import allow_for
from polyarch.checks.cache import LayerCache, known_suffix
from polyarch.checks.entries import Entry
from polyarch.checks.filesystem import merge
from polyarch.checks.layers import LayerFormatError, LayerScan
from polyarch.checks.parallel import Spawn, processes_for, scan_all
from polyarch.checks.report import Finding, VerifyReport
from polyarch.registry.source import ImageSource


def _is_layer(desc: dict[str, Any]) -> bool:
    mt = str(desc.get("mediaType") or "")
    return "tar" in mt or mt == "" or mt.startswith("application/vnd.docker.image.rootfs")


@dataclass(frozen=True)
class _Judgement:
    """What the deep checks added to one platform's result."""

    findings: tuple[Finding, ...]
    ran: frozenset[str]
    files_checked: int
    inert: tuple[str, ...]
    test_data: tuple[str, ...]


class Judged:
    """The deep checks' verdicts of platform manifests judged in this process, by
    manifest digest, platform and the ``--allow`` rules that applied: a manifest's
    layers, config and annotations are fixed by its digest, so a second verification of
    the same image in one run (the publish verifies each platform on its own while its
    layers are pushed, then the whole index) takes the verdict instead of merging and
    judging every file again."""

    def __init__(self) -> None:
        self._done: dict[tuple[str, str, tuple[str, ...], str], _Judgement] = {}
        self._attestations: dict[str, tuple[Finding, ...]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, tuple[str, ...], str]) -> _Judgement | None:
        with self._lock:
            return self._done.get(key)

    def put(self, key: tuple[str, str, tuple[str, ...], str], j: _Judgement) -> None:
        with self._lock:
            self._done[key] = j

    def attestation(self, digest: str, scan: Callable[[], list[Finding]]) -> list[Finding]:
        """The findings of the attestation manifest ``digest`` (its content, fixed by
        the digest, scanned for the values this run knows): ``scan`` once per run and
        set of known values."""
        key = digest + known_suffix()
        with self._lock:
            done = self._attestations.get(key)
        if done is None:
            done = tuple(scan())
            with self._lock:
                self._attestations[key] = done
        return list(done)


@dataclass
class Procs:
    """How layers are read: ``count`` worker processes (``None``: as many as
    :func:`processes_for` says), started by ``spawn``."""

    count: int | None
    spawn: Spawn


def check_layers(src: ImageSource, entries: list[Entry], allow: Sequence[str],
                 pool: ThreadPoolExecutor, say: Callable[[str], None],
                 cache: LayerCache | None, report: VerifyReport, recheck: bool,
                 procs: Procs, judged: Judged | None = None) -> None:
    """The ``binaries`` and ``secrets`` checks of every entry with a manifest; a layer
    that cannot be read is a finding of each platform that has it."""
    known = known_suffix()  # the values looked for, as the scans below begin
    layer_lists: dict[int, list[str]] = {}
    keys: dict[int, tuple[str, str, tuple[str, ...], str]] = {}
    wanted: list[str] = []
    judged_layers: set[str] = set()  # of platforms judged before: not loaded again
    for i, e in enumerate(entries):
        if e.manifest is None or e.result.status == "missing":
            continue
        layers = [d for d in e.manifest.json.get("layers") or [] if isinstance(d, dict)]
        digests = [str(d["digest"]) for d in layers if _is_layer(d) and d.get("digest")]
        e.result.layers = len(digests)
        e.result.compressed_bytes = sum(int(d.get("size") or 0) for d in layers if _is_layer(d))
        keys[i] = _key(e, _mine(e, allow))  # (before judging: the values known then)
        done = judged.get(keys[i]) if judged is not None else None
        if done is not None:
            _apply(e, done)
            judged_layers.update(digests)
            continue
        layer_lists[i] = digests
        wanted += [dg for dg in digests if dg not in wanted]
    scans: dict[str, LayerScan | Finding] = {}
    if cache is not None:
        for dg in wanted:
            cached = cache.get(dg)
            if cached is not None:
                scans[dg] = cached
    todo = [dg for dg in wanted if dg not in scans]
    report.layers_cached = len(wanted) - len(todo) + len(judged_layers - set(wanted))
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
                cache.put(scan, known)
    finally:
        results.close()  # on an error or Ctrl-C here: the worker processes stop now
    for check in checks:
        check.result()  # a blob that does not match its digest: RegistryError
    for i, digests in layer_lists.items():
        e = entries[i]
        good: list[LayerScan] = []
        for dg in digests:
            s = scans[dg]
            if isinstance(s, Finding):
                e.result.findings.append(s)
            else:
                good.append(s)
        mine = _mine(e, allow)
        before = (len(e.result.findings), set(e.result.ran), e.result.files_checked,
                  len(e.result.inert), len(e.result.test_data))
        _judge(e, merge(good), mine)
        if judged is not None and len(good) == len(digests):  # (every layer read)
            judged.put(keys[i], _Judgement(
                tuple(e.result.findings[before[0]:]), frozenset(e.result.ran - before[1]),
                e.result.files_checked - before[2], tuple(e.result.inert[before[3]:]),
                tuple(e.result.test_data[before[4]:])))


def _mine(e: Entry, allow: Sequence[str]) -> tuple[str, ...]:
    """The --allow rules of the entry's platform, as --allow normalises it
    (linux/arm64/v8 is linux/arm64)."""
    return allow_for(allow, e.plat if e.plat is not None else e.result.platform)


def _key(e: Entry, mine: Sequence[str]) -> tuple[str, str, tuple[str, ...], str]:
    """What a platform's verdict depends on besides its manifest's content: the platform
    expected of it, the --allow rules for it, and the secret values known when it is
    made (a registry password is learnt when the registry is first asked, perhaps after
    a platform was judged: a keyed hash of them, :func:`known_suffix`)."""
    assert e.manifest is not None
    return (e.manifest.digest, str(e.plat), tuple(mine), known_suffix())


def _judge(e: Entry, fs: Any, mine: Sequence[str]) -> None:
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
        e.result.findings.append(Finding("secrets", hit.severity, hit.describe(), path=None))


def _apply(e: Entry, j: _Judgement) -> None:
    e.result.findings.extend(j.findings)
    e.result.ran |= j.ran
    e.result.files_checked += j.files_checked
    e.result.inert.extend(j.inert)
    e.result.test_data.extend(j.test_data)


def _check_digest(src: ImageSource, digest: str) -> None:
    for _ in src.iter_blob(digest):  # the source checks the digest at the end
        pass
