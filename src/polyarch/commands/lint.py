"""polyarch lint: multi-architecture pitfalls in a Dockerfile."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from polyarch.commands._common import json_option, load_options, table_options
from polyarch.errors import FatalError, UsageError
from polyarch.lint import (
    SEVERITY_RANK,
    Finding,
    LookupFailed,
    PlatformLookup,
    lint,
    parse,
)
from polyarch.lint.context import LintContext
from polyarch.platforms import Platform
from polyarch.refs import ImageRef

SCHEMA = "polyarch.lint/v1"
FAIL_ON = ("error", "warning", "info", "never")
#: Larger than any real Dockerfile; refusing is clearer than linting a data file.
MAX_BYTES = 1024 * 1024


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
            from polyarch.registry.media import load_json

            config = load_json(client.get_blob(ref, doc["config"]["digest"]))
            return [Platform(str(config.get("os")), str(config.get("architecture")),
                             str(config.get("variant") or ""))]
        except FatalError as e:
            raise LookupFailed(e.line()) from e
        except (KeyError, TypeError, ValueError) as e:
            raise LookupFailed(f"unreadable manifest ({e})") from e

    return lookup, client.close


def _offline(ref: ImageRef) -> list[Platform] | None:
    raise LookupFailed("--offline")


def read_dockerfile(dockerfile: str) -> tuple[str, str, bytes]:
    """(text, path shown, raw bytes) of the Dockerfile; bad input is a UsageError."""
    if dockerfile == "-":
        raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else \
            sys.stdin.read().encode()
        path = "-"
    else:
        p = Path(dockerfile)
        if p.is_dir():
            p = p / "Dockerfile"
        if not p.is_file():
            raise UsageError(f"no such Dockerfile: {p}",
                             hint="give the path of a Dockerfile or of a folder holding one")
        try:
            with p.open("rb") as fh:
                raw = fh.read(MAX_BYTES + 1)
        except OSError as e:
            raise UsageError(f"cannot read {p}: {e.strerror or e}") from e
        path = str(p)
    if len(raw) > MAX_BYTES:
        raise UsageError(f"{path} is larger than {MAX_BYTES // 1024} KiB, too large for a "
                         "Dockerfile", hint="point polyarch lint at the Dockerfile itself")
    if b"\0" in raw:
        raise UsageError(f"{path} is a binary file, not a Dockerfile",
                         hint="point polyarch lint at the Dockerfile")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UsageError(f"{path} is not UTF-8 text (byte {e.start})",
                         hint="save the Dockerfile as UTF-8") from e
    if not text.strip():
        raise UsageError(f"{path} is empty", hint="BuildKit refuses an empty Dockerfile too")
    return text, path, raw


@click.command("lint")
@click.argument("dockerfiles", nargs=-1, metavar="[DOCKERFILE]...")
@table_options("lint")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default="error", show_default=True,
              help="Exit 5 when a finding of this severity or worse is found.")
@click.option("--offline", is_flag=True, help="Do not look base images up in their registry.")
@click.option("--format", "fmt", type=click.Choice(("human", "json", "sarif")), default=None,
              help="Output format (default human; --json is --format json).")
@json_option
@click.option("--fix", is_flag=True,
              help="Show the provably safe rewrites as a diff (nothing is written).")
@click.option("--write", is_flag=True, help="With --fix: write the rewrites to the file.")
def command(dockerfiles: tuple[str, ...], fail_on: str, offline: bool, fmt: str | None,
            json_mode: bool, fix: bool, write: bool, **kw: Any) -> int:
    """Check each DOCKERFILE (default ./Dockerfile; a folder means its Dockerfile; - for
    stdin) for multi-architecture pitfalls. Exit 0 when clean, 5 when a finding at or
    above --fail-on is found, 2 for unusable input."""
    opts = load_options(kw)
    targets, target = opts.platforms, opts.target
    if write and not fix:
        raise UsageError("--write needs --fix", hint="polyarch lint --fix --write DOCKERFILE")
    fmt = fmt or ("json" if json_mode else "human")
    files = [read_dockerfile(d) for d in (dockerfiles or ("Dockerfile",))]
    if len(files) == 1:
        return _one(*files[0], targets, target, fail_on, offline, fmt, fix, write)
    if fmt != "human":
        raise UsageError(f"--format {fmt} takes one Dockerfile",
                         hint="run polyarch lint once per file")
    return max(_one(*f, targets, target, fail_on, offline, fmt, fix, write) for f in files)


def _one(text: str, path: str, raw: bytes, targets: tuple[Platform, ...], target: str | None,
         fail_on: str, offline: bool, fmt: str, fix: bool, write: bool) -> int:
    try:
        return _lint_one(text, path, raw, targets, target, fail_on, offline, fmt, fix, write)
    except RecursionError:
        # BuildKit's own lexer recurses too: such a file does not build either.
        raise UsageError(f"{path}: variables or brackets nested too deeply to read",
                         hint="BuildKit would refuse it as well; flatten the nesting") from None


def _lint_one(text: str, path: str, raw: bytes, targets: tuple[Platform, ...],
              target: str | None, fail_on: str, offline: bool, fmt: str, fix: bool,
              write: bool) -> int:
    if target is not None:
        df = parse(text)
        if df.stage_named(target) is None:
            names = ", ".join(s.name for s in df.stages if s.name) or "none"
            raise UsageError(f"no stage named {target!r} in {path}",
                             hint=f"stages with a name: {names}")
    if fix:
        return _fix(text, path, raw, targets, target, write)
    if offline:
        lookup: PlatformLookup = _offline
        close: Callable[[], None] = lambda: None  # noqa: E731
    else:
        lookup, close = registry_lookup()
    try:
        findings = lint(text, path=path, platforms=targets, platform_lookup=lookup, target=target)
    finally:
        close()
    threshold = SEVERITY_RANK.get(fail_on, 99)
    failing = [f for f in findings if SEVERITY_RANK[f.severity] >= threshold]
    if fmt == "json":
        _emit(to_json(path, targets, fail_on, findings, failing))
    elif fmt == "sarif":
        from polyarch import __version__
        from polyarch.lint.sarif import to_sarif

        _emit(to_sarif(findings, __version__))
    else:
        from polyarch.commands import _render
        from polyarch.output import Reporter

        _render.lint_findings(Reporter(), path, findings, failing, fail_on)
    _annotate(findings)
    return 5 if failing else 0


def _emit(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    sys.stdout.flush()


def _fix(text: str, path: str, raw: bytes, targets: tuple[Platform, ...], target: str | None,
         write: bool) -> int:
    from polyarch.lint import fix as fixmod

    df = parse(text)
    fixes, refused = fixmod.plan(LintContext(df, path, targets, target))
    for r in refused:
        click.echo(f"# not rewritten ({r.kind}): stage {r.stage.label}: {r.reason}", err=True)
    if not fixes:
        click.echo(f"{path}: nothing to rewrite")
        return 0
    for fx in fixes:
        click.echo(f"# {fx.kind}: {fx.summary}", err=True)
    click.echo(fixmod.diff(path, df.lines, fixes), nl=False)
    if write:
        if path == "-":
            raise UsageError("--write cannot write to standard input", hint="give a file path")
        newline = "\r\n" if b"\r\n" in raw else "\n"
        out = newline.join(fixmod.apply(df.lines, fixes))
        bom = "\ufeff" if raw.startswith(b"\xef\xbb\xbf") else ""
        Path(path).write_bytes((bom + out).encode("utf-8"))
        click.echo(f"{path}: {len(fixes)} rewrite{'s' if len(fixes) != 1 else ''} written",
                   err=True)
    return 0


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
