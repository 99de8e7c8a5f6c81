"""polyarch lint: multi-architecture pitfalls in a Dockerfile."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from polyarch.errors import FatalError, UsageError
from polyarch.lint import RULES, SEVERITY_RANK, Finding, LookupFailed, PlatformLookup, lint
from polyarch.output import Reporter
from polyarch.platforms import DEFAULT_PLATFORMS, Platform, parse_platforms
from polyarch.refs import ImageRef

SCHEMA = "polyarch.lint/v1"
FAIL_ON = ("error", "warning", "info", "never")


def registry_lookup(*, timeout: float = 10.0) -> tuple[PlatformLookup, Callable[[], None]]:
    """A platform lookup backed by :class:`polyarch.registry.RegistryClient`, and a
    function that closes it. Without the registry module every lookup fails (a note)."""
    try:
        from polyarch.registry import RegistryClient
        from polyarch.registry.media import is_attestation
    except ImportError as e:
        reason = f"registry client unavailable ({e})"

        def unavailable(ref: ImageRef) -> list[Platform] | None:
            raise LookupFailed(reason)

        return unavailable, lambda: None

    client = RegistryClient(retries=1, backoff=0.2, timeout=timeout)

    def lookup(ref: ImageRef) -> list[Platform] | None:
        try:
            man = client.get_manifest(ref)
            doc = man.json
            if man.is_index or "manifests" in doc:
                out = []
                for desc in doc.get("manifests") or []:
                    plat = desc.get("platform") or {}
                    if is_attestation(desc) or plat.get("os") in (None, "unknown"):
                        continue
                    out.append(Platform(str(plat.get("os")), str(plat.get("architecture")),
                                        str(plat.get("variant") or "")))
                return out
            config = json.loads(client.get_blob(ref, doc["config"]["digest"]))
            return [Platform(str(config.get("os")), str(config.get("architecture")),
                             str(config.get("variant") or ""))]
        except FatalError as e:
            raise LookupFailed(e.line()) from e
        except (KeyError, TypeError, ValueError) as e:
            raise LookupFailed(f"unreadable manifest ({e})") from e

    return lookup, client.close


def _offline(ref: ImageRef) -> list[Platform] | None:
    raise LookupFailed("--offline")


@click.command("lint")
@click.argument("dockerfile", required=False, default="Dockerfile", metavar="[DOCKERFILE]")
@click.option("--platform", "platforms", multiple=True, metavar="LIST",
              help="Target platforms, comma separated (repeatable). "
                   "Default linux/amd64,linux/arm64.")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default="warning", show_default=True,
              help="Exit 5 when a finding of this severity or worse is found.")
@click.option("--offline", is_flag=True, help="Do not look base images up in their registry.")
@click.option("--json", "json_mode", is_flag=True, help="Print one JSON document on stdout.")
def command(dockerfile: str, platforms: tuple[str, ...], fail_on: str, offline: bool,
            json_mode: bool) -> int:
    """Check DOCKERFILE (default ./Dockerfile; - for stdin) for multi-architecture
    pitfalls. Exit 0 when clean, 5 when a finding at or above --fail-on is found."""
    try:
        targets = parse_platforms(list(platforms) or list(DEFAULT_PLATFORMS))
    except ValueError as e:
        raise UsageError(str(e)) from e
    if dockerfile == "-":
        text, path = sys.stdin.read(), "-"
    else:
        p = Path(dockerfile)
        if p.is_dir():
            p = p / "Dockerfile"
        if not p.is_file():
            raise UsageError(f"no such Dockerfile: {p}")
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read {p}: {e}") from e
        path = str(p)
    if offline:
        lookup: PlatformLookup = _offline
        close: Callable[[], None] = lambda: None  # noqa: E731
    else:
        lookup, close = registry_lookup()
    try:
        findings = lint(text, path=path, platforms=targets, platform_lookup=lookup)
    finally:
        close()
    threshold = SEVERITY_RANK.get(fail_on, 99)
    failing = [f for f in findings if SEVERITY_RANK[f.severity] >= threshold]
    rep = Reporter(json_mode=json_mode)
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITY_RANK}
    if json_mode:
        rep.emit_json(to_json(path, targets, fail_on, findings, failing))
    else:
        _human(rep, path, findings, failing, counts, fail_on)
    _annotate(findings)
    return 5 if failing else 0


def to_json(path: str, targets: tuple[Platform, ...], fail_on: str, findings: list[Finding],
            failing: list[Finding]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "path": path,
        "platforms": [str(p) for p in targets],
        "fail_on": fail_on,
        "failed": bool(failing),
        "summary": {s: sum(1 for f in findings if f.severity == s)
                    for s in ("error", "warning", "info", "note")},
        "findings": [f.to_json() for f in findings],
    }


def _human(rep: Reporter, path: str, findings: list[Finding], failing: list[Finding],
           counts: dict[str, int], fail_on: str) -> None:
    if not findings:
        rep.info(f"{path}: no findings")
        return
    rows = [(f"{path}:{f.line}", f.severity, f"{f.rule} {RULES[f.rule].name}",
             f"{f.message}\nfix: {f.hint}") for f in findings]
    rep.table(None, ["where", "severity", "rule", "finding"], rows)
    summary = ", ".join(f"{n} {s}{'s' if n != 1 and s != 'info' else ''}"
                        for s, n in sorted(counts.items(), key=lambda kv: -SEVERITY_RANK[kv[0]])
                        if n)
    verdict = (f"; {len(failing)} at or above --fail-on={fail_on}" if failing else
               f"; none at or above --fail-on={fail_on}")
    rep.info(f"{path}: {summary}{verdict}")


def _annotate(findings: list[Finding]) -> None:
    """GitHub Actions annotations, one per finding, on stderr."""
    if os.environ.get("GITHUB_ACTIONS") != "true":
        return
    level = {"error": "error", "warning": "warning", "info": "notice", "note": "notice"}
    for f in findings:
        msg = f"{f.rule} {f.message} (fix: {f.hint})"
        msg = msg.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        print(f"::{level[f.severity]} file={f.path},line={f.line},title={f.rule}::{msg}",
              file=sys.stderr)
