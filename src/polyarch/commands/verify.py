"""polyarch verify REF|oci:PATH: does every variant match its platform?"""

from __future__ import annotations

from pathlib import Path

import click

from polyarch import config
from polyarch.checks.verify import CHECKS, verify
from polyarch.commands._common import reporter
from polyarch.errors import VerificationError
from polyarch.registry import RegistryClient

#: Findings shown per platform in the human table (all of them are in --json).
MAX_ROWS = 40


@click.command("verify")
@click.argument("ref", metavar="REF|oci:PATH")
@click.option("--platform", "platforms", multiple=True, metavar="LIST",
              help="Expected platforms, comma separated (repeatable). Default: the configured"
                   " platforms.")
@click.option("--allow", "allow", multiple=True, metavar="PATH_GLOB",
              help="Known exception: a file matching this glob may be of another architecture"
                   " or hold credentials (repeatable; reported as info).")
@click.option("--smoke", metavar="CMD",
              help="Run CMD in each platform's image (expect exit 0) and check 'uname -m'"
                   " inside; --smoke '' checks uname only.")
@click.option("--deep/--no-deep", default=True,
              help="Read every layer (binaries, secrets). --no-deep checks the index only.")
@click.option("--insecure-registry", "insecure_registries", multiple=True, metavar="HOST[:PORT]",
              help="Allow plain HTTP to this registry (loopback registries always are).")
@click.option("--docker-config", type=click.Path(path_type=Path), metavar="DIR",
              help="Directory of config.json with credentials (default: $DOCKER_CONFIG).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), metavar="PATH",
              help="Config file (default: ./polyarch.toml or [tool.polyarch] in pyproject.toml).")
@click.option("--json", "json_mode", is_flag=True, help="Print one JSON document on stdout.")
def command(ref: str, platforms: tuple[str, ...], allow: tuple[str, ...], smoke: str | None,
            deep: bool, insecure_registries: tuple[str, ...], docker_config: Path | None,
            config_path: Path | None, json_mode: bool) -> int:
    """Verify that every variant of REF is what its platform says.

    Exit 0 when every check passes, 5 when one fails, 4 when the registry cannot be read.
    """
    rep = reporter(json_mode)
    opts = config.load({"platforms": platforms, "allow": allow, "smoke": smoke,
                        "insecure-registries": insecure_registries}, config_path=config_path)
    rep.step(f"verifying {ref} for {', '.join(str(p) for p in opts.platforms)}")
    with RegistryClient(insecure_registries=opts.insecure_registries,
                        docker_config=docker_config) as client:
        report = verify(ref, opts.platforms, allow=opts.allow, smoke=opts.smoke, deep=deep,
                        client=client, progress=rep.info)
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
        if report.ok:
            rep.info(report.summary())
    if not report.ok:
        raise VerificationError(report.summary())
    return 0
