"""polyarch merge: join per-platform images into one index, verify it, promote the tags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from polyarch.commands._common import load_options, reporter
from polyarch.platforms import Platform


def _expected(cli_platforms: tuple[str, ...], config_path: Path | None) -> bool:
    """Whether the expected platforms were given (command line, environment or config
    file); when not, merge expects the union of the sources' platforms."""
    from polyarch import config

    if cli_platforms or os.environ.get(config.ENV_PREFIX + "PLATFORMS"):
        return True
    if config_path is not None:
        import tomllib

        try:
            data = tomllib.loads(config_path.read_text())
        except (OSError, ValueError):
            return False  # config.load has already said what is wrong with it
        section = data.get("tool", {}).get("polyarch", data) if "tool" in data else data
        return isinstance(section, dict) and "platforms" in section
    found = config.find_config(Path.cwd())
    return found is not None and "platforms" in found[1]


@click.command("merge")
@click.argument("sources", nargs=-1, metavar="SOURCE...")
@click.option("-t", "--tag", "tags", multiple=True, metavar="REF",
              help="Image reference to publish (repeatable).")
@click.option("--platform", "platforms", multiple=True, metavar="LIST",
              help="Expected platforms, comma separated (repeatable). Default: the configured"
                   " platforms, else every platform the sources have.")
@click.option("--verify/--no-verify", "verify", default=None,
              help="Verify the merged index before moving any tag (default: on).")
@click.option("--smoke", metavar="CMD", default=None,
              help="Also run CMD in every platform's image and check 'uname -m' inside.")
@click.option("--allow", "allow", multiple=True, metavar="PATH_GLOB",
              help="Known exception for the binaries and secrets checks (repeatable).")
@click.option("--insecure-registry", "insecure_registries", multiple=True, metavar="HOST[:PORT]",
              help="Allow plain HTTP to this registry (loopback registries always are).")
@click.option("--image", "images", multiple=True, metavar="NAME",
              help="Image name (no tag) to tag from git state with --tag-spec (repeatable).")
@click.option("--tag-spec", "tag_specs", multiple=True, metavar="SPEC",
              help="Tag rule in docker/metadata-action syntax for --image names (repeatable).")
@click.option("--flavor", "flavor", multiple=True, metavar="F",
              help="latest=auto|true|false, prefix=P, suffix=S (repeatable).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), metavar="PATH",
              help="Config file (default: ./polyarch.toml or [tool.polyarch] in ./pyproject.toml).")
@click.option("--dry-run", is_flag=True, help="Resolve the sources and show the index; push"
                                              " nothing.")
@click.option("--json", "json_mode", is_flag=True, help="Print one JSON document on stdout.")
def command(sources: tuple[str, ...], dry_run: bool, json_mode: bool, **kw: Any) -> int:
    """Join SOURCEs (build descriptors from 'polyarch build --stage', or image references:
    tags or digests, single-platform images or indexes) into one index, verify it, and
    publish it under every -t tag, as 'publish' does."""
    from polyarch import ci
    from polyarch.pipeline import merge as merging
    from polyarch.pipeline import publish as workflow

    rep = reporter(json_mode)
    opts = load_options(kw)
    expected: tuple[Platform, ...] | None = (
        opts.platforms if _expected(kw.get("platforms") or (), kw.get("config_path")) else None)
    try:
        done = merging.merge(opts, sources, rep, expected=expected, dry_run=dry_run)
    except workflow.PublishFailed as e:
        ci.write_outputs(e.result.to_json())
        if json_mode:
            rep.emit_json(e.result.to_json())
        raise
    if not dry_run:
        ci.write_outputs(done.result.to_json())
    if json_mode:
        rep.emit_json(done.to_json())
        return 0
    r = done.result
    if dry_run:
        rep.info(done.plan.index.data.decode().rstrip())
        return 0
    rep.info(f"index   {r.index_digest}")
    rep.table(None, ["platform", "digest", "build", "source"],
              [(str(e.platform), e.digest, e.mode, e.source.given) for e in done.plan.entries])
    for t in r.tags:
        rep.info(f"tag     {t}")
    return 0
