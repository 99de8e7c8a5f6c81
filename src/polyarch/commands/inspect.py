"""polyarch inspect REF: the platforms of an index, with sizes and attestations."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click

from polyarch.commands._common import json_option, load_options, table_options
from polyarch.errors import RegistryError
from polyarch.output import Reporter


@click.command("inspect")
@click.argument("ref", metavar="REF|oci:PATH")
@table_options("inspect")
@json_option
def command(ref: str, json_mode: bool, **kw: Any) -> int:
    """Show the platforms of REF (an image index or manifest, or an OCI layout)."""
    from polyarch.registry.client import RegistryClient
    from polyarch.registry.describe import describe
    from polyarch.registry.source import open_source

    rep = Reporter(json_mode=json_mode)  # inspect runs no commands to echo
    opts = load_options(kw)
    docker_config = Path(opts.docker_config) if opts.docker_config else None
    with RegistryClient(insecure_registries=opts.insecure_registries,
                        docker_config=docker_config) as client:
        src = open_source(ref, client)
        found: Future[dict[str, Any]] | None = None
        with ThreadPoolExecutor(max_workers=1) as pool:
            try:
                root = src.root()
                if not ref.startswith("oci:"):
                    from polyarch.refs import parse_ref
                    from polyarch.signing.check import discover

                    # Signatures and attestations, looked up while the image is read.
                    found = pool.submit(discover, client, parse_ref(ref), root.digest)
                desc = describe(src, root)
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                from polyarch.registry.media import DocumentError

                kind = "" if isinstance(e, DocumentError) else f"{type(e).__name__}: "
                raise RegistryError(f"{ref}: malformed image: {kind}{e}") from None
            signature = found.result() if found is not None else {}
    if json_mode:
        rep.emit_json({**desc.to_json(), **({"signature": signature} if signature else {})})
        return 0
    from polyarch.commands import _render

    _render.inspected(rep, desc, signature)
    return 0
