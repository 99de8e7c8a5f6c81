"""polyarch merge: join per-platform images into one index, verify it, promote the tags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from polyarch.commands._common import load_options, reporter


@click.command("merge")
@click.argument("sources", nargs=-1, metavar="SOURCE...")
@click.option("-t", "--tag", "tags", multiple=True, metavar="REF",
              help="Image reference to publish (repeatable).")
@click.option("--platform", "platforms", multiple=True, metavar="LIST",
              help="Expected platforms, comma separated (repeatable). Default: the configured"
                   " platforms, as for publish (linux/amd64,linux/arm64).")
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
    """Join SOURCEs (build descriptors from 'polyarch build --push', or image references:
    tags or digests, single-platform images or indexes) into one index, verify it, and
    publish it under every -t tag, as 'publish' does."""
    from polyarch import ci
    from polyarch.commands._render import image
    from polyarch.pipeline import merge as merging
    from polyarch.pipeline.verify import VerificationFailed
    from polyarch.session import Session

    rep = reporter(json_mode)
    opts = load_options(kw)
    with Session(opts, rep, dry_run=dry_run) as s:
        try:
            done = merging.merge(s, sources, expected=opts.platforms)
        except VerificationFailed as e:
            ci.write_outputs(e.doc)
            if json_mode:
                rep.emit_json(e.doc)
            raise
    if not dry_run:
        ci.write_outputs(done.result.to_json())
    if json_mode:
        rep.emit_json(done.to_json())
        return 0
    if dry_run:
        rep.info(done.plan.index.data.decode().rstrip())
        return 0
    image(rep, done.result)
    rep.table(None, ["platform", "source"],
              [(str(e.platform), e.source.given) for e in done.plan.entries])
    return 0
