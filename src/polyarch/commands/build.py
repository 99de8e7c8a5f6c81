"""polyarch build: build every platform and verify it on local disk; then write it
(-o oci:PATH), load it (--load), push it by digest for a merge (--push), or keep it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from polyarch.commands import _render
from polyarch.commands._common import build_options, check_writable, load_options, reporter
from polyarch.session import Session


@click.command("build")
@build_options("build")
@click.option("-o", "--output", "output", metavar="oci:PATH",
              help="Write the verified image as an OCI layout directory, or an archive when"
                   " PATH ends in .tar (buildx's type=oci,dest=PATH is accepted too).")
@click.option("--load", is_flag=True, help="Load the verified image into the local engine"
              " under its -t names (every platform with Docker's containerd image store).")
@click.option("--push", "push", is_flag=True,
              help="Push the verified image by digest (no tag) to the -t repository and write"
                   " a build descriptor for 'polyarch merge'.")
@click.option("--stage", "stage", is_flag=True, hidden=True, help="Same as --push.")
@click.option("--descriptor", "descriptor", type=click.Path(path_type=Path), metavar="PATH",
              help="Where --push writes the build descriptor (default:"
                   " ./polyarch-build-<platforms>.json).")
def command(output: str | None, load: bool, push: bool, stage: bool, descriptor: Path | None,
            json_mode: bool, **kw: Any) -> int:
    """Build CONTEXT (default .) for every platform and verify it on local disk. No
    registry is needed unless --push is given; no tag ever moves here."""
    started = None
    if not kw.get("dry_run"):  # (a dry run the config asks for leaves them unused)
        from polyarch.engines import start_engine

        started = start_engine(kw)  # its look-ups run while the rest is imported
    from polyarch.pipeline import descriptor as desc
    from polyarch.pipeline.outputs import OutputPlan, parse_output
    from polyarch.pipeline.publish import build
    from polyarch.pipeline.result import VerificationFailed

    rep = reporter(json_mode)
    if descriptor is not None:
        check_writable(descriptor, "--descriptor")
    opts = load_options(kw)
    dry_run = opts.dry_run
    push = push or stage
    out = OutputPlan(parse_output(output), load, push)
    path = descriptor or desc.default_path(opts)
    if push:
        check_writable(path, "--descriptor")
    with Session(opts, rep, dry_run=dry_run, started_engine=started) as s:
        try:
            result = build(s, out)
        except VerificationFailed as e:
            if json_mode:
                rep.emit_json(e.doc)
            raise
        written = None
        if push and not dry_run and result.pushed is not None:
            # The first target repository: with tags from git, the first --image (the
            # session's options hold no tags; the build computed them).
            d = desc.make(repository=result.pushed.repositories[0], digest=result.digest,
                          media_type=result.media_type,
                          platforms=[str(p) for p in s.opts.platforms],
                          manifests={p.platform: p.digest for p in result.platforms},
                          modes={p.platform: p.mode for p in result.platforms},
                          build_seconds=result.build_seconds, engine=s.engine.name,
                          verified=result.verified is not None
                          and result.verified.report is not None,
                          annotations=result.annotations)
            desc.write(d, path)
            written = path
    if json_mode:
        doc = result.to_json()
        doc["descriptor_path"] = str(written) if written else None
        rep.emit_json(doc)
        return 0
    if not dry_run:
        _render.image(rep, result)
        if written:
            rep.info(f"descriptor {written}")
    return 0
