"""polyarch inspect REF: the platforms of an index, with sizes and attestations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from polyarch.errors import RegistryError
from polyarch.output import Reporter
from polyarch.registry.client import RegistryClient
from polyarch.registry.describe import describe
from polyarch.registry.source import open_source


@click.command("inspect")
@click.argument("ref", metavar="REF|oci:PATH")
@click.option("--insecure-registry", "insecure_registries", multiple=True, metavar="HOST[:PORT]",
              help="Allow plain HTTP to this registry (loopback registries always are).")
@click.option("--docker-config", type=click.Path(path_type=Path), metavar="DIR",
              help="Directory of config.json with credentials (default: $DOCKER_CONFIG).")
@click.option("--json", "json_mode", is_flag=True, help="Print one JSON document on stdout.")
def command(ref: str, insecure_registries: tuple[str, ...], docker_config: Path | None,
            json_mode: bool) -> int:
    """Show the platforms of REF (an image index or manifest, or an OCI layout)."""
    rep = Reporter(json_mode=json_mode)  # inspect runs no commands to echo
    with RegistryClient(insecure_registries=insecure_registries,
                        docker_config=docker_config) as client:
        try:
            desc = describe(open_source(ref, client))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            from polyarch.registry.media import DocumentError

            kind = "" if isinstance(e, DocumentError) else f"{type(e).__name__}: "
            raise RegistryError(f"{ref}: malformed image: {kind}{e}") from None
        found: dict[str, Any] = {}
        if not ref.startswith("oci:"):
            from polyarch.refs import parse_ref
            from polyarch.signing.check import discover

            found = discover(client, parse_ref(ref), desc.digest)
    if json_mode:
        rep.emit_json({**desc.to_json(), **({"signature": found} if found else {})})
        return 0
    from polyarch.commands import _render

    _render.inspected(rep, desc, found)
    return 0
