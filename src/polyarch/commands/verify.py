"""polyarch verify REF|oci:PATH: does every variant match its platform?"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import click

from polyarch.checks.verify import CHECKS, VerifyReport, verify
from polyarch.commands._common import (
    config_option,
    json_option,
    load_options,
    reporter,
    table_options,
)
from polyarch.errors import VerificationError
from polyarch.session import Session

#: Findings shown per platform in the human table (all of them are in --json).
MAX_ROWS = 40


@click.command("verify")
@click.argument("ref", metavar="REF|oci:PATH")
@table_options("verify")
@click.option("--deep/--no-deep", default=True,
              help="Read every layer (binaries, secrets). --no-deep checks the index only.")
@click.option("--docker-config", type=click.Path(path_type=Path), metavar="DIR",
              help="Directory of config.json with credentials (default: $DOCKER_CONFIG).")
@config_option
@json_option
def command(ref: str, deep: bool, docker_config: Path | None, json_mode: bool,
            **kw: Any) -> int:
    """Verify that every variant of REF is what its platform says.

    Exit 0 when every check passes, 5 when one fails, 4 when the registry cannot be read.
    """
    rep = reporter(json_mode)
    opts = load_options(kw)
    rep.step(f"verifying {ref} for {', '.join(str(p) for p in opts.platforms)}")
    with Session(opts, rep, docker_config=docker_config) as s:
        source = ref if ref.startswith("oci:") else None
        report = verify(ref, opts.platforms, allow=opts.allow, deep=deep,
                        client=None if source else s.client, progress=rep.info,
                        cache=s.layer_cache)
        if opts.smoke is not None:
            _smoke_runs(s, report, ref)
    if json_mode:
        rep.emit_json(report.to_json())
    else:
        rep.info(f"index {report.index_digest} ({report.media_type})")
        rep.table(None, ["PLATFORM", "STATUS", *(c.upper() for c in CHECKS)],
                  [[p.platform, p.status, *(p.check_status(c) for c in CHECKS)]
                   for p in report.platforms])
        rows: list[list[str]] = []
        for f in report.findings:
            rows.append(["(image)", f.check, f.severity, f.path or "-", f.message])
        for p in report.platforms:
            shown = p.findings[:MAX_ROWS]
            for f in shown:
                layer = f" [layer {f.layer[7:19]}]" if f.layer else ""
                rows.append([p.platform, f.check, f.severity, f.path or "-", f.message + layer])
            if len(p.findings) > len(shown):
                rows.append([p.platform, "", "", "",
                             f"... and {len(p.findings) - len(shown)} more (see --json)"])
        if rows:
            rep.table("Findings", ["PLATFORM", "CHECK", "SEVERITY", "PATH", "MESSAGE"], rows)
        from polyarch.pipeline.verify import allow_lines, platform_lines

        for line in platform_lines(report, "--json lists every finding"):
            rep.info(line)
        allow = allow_lines(report)
        if allow:
            rep.info("to accept one of the errors as a known exception (it then becomes a"
                     " note), add its line to the command:")
            for line in allow:
                rep.info(f"  {line}")
        if report.ok:
            rep.info(report.summary())
    if not report.ok:
        raise VerificationError(report.summary())
    return 0


def _smoke_runs(s: Session, report: VerifyReport, ref: str) -> None:
    """Run the smoke command of every platform through the configured engine: from the
    layout for ``oci:PATH`` (an archive is unpacked into the cache first), else by digest
    from the registry."""
    from polyarch.pipeline.verify import run_smoke
    from polyarch.refs import parse_ref

    if not ref.startswith("oci:"):
        repo = parse_ref(ref).name
        run_smoke(s, report, lambda r: f"{repo}@{r.digest}")
        return
    path = Path(ref[4:])
    if path.is_file():
        import tarfile

        unpacked = s.build_dir("smoke")
        with tarfile.open(path) as t:
            t.extractall(unpacked, filter="data")
        path = unpacked
    name = f"polyarch-smoke-{secrets.token_hex(6)}:latest"
    run_ref = s.engine.runnable(path, name)
    try:
        run_smoke(s, report, lambda _r: run_ref)
    finally:
        s.engine.remove_images([name])
