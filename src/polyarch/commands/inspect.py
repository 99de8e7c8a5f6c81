"""polyarch inspect REF: the platforms of an index, with sizes and attestations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from polyarch.commands._common import json_option, load_options, table_options
from polyarch.errors import RegistryError
from polyarch.output import Reporter


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def predicate_name(predicate_type: str) -> str:
    """``https://slsa.dev/provenance/v0.2`` -> ``provenance v0.2``."""
    if "provenance" in predicate_type:
        return "provenance " + predicate_type.rstrip("/").rsplit("/", 1)[-1]
    if "spdx" in predicate_type:
        return "sbom (spdx)"
    return predicate_type


def short(digest: str) -> str:
    return digest[:19]


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
    rep.info(f"{desc.reference}")
    rep.info(f"  digest:     {desc.digest}")
    rep.info(f"  media type: {desc.media_type}")
    if found:
        from polyarch.signing.check import describe as verified_by

        unread = f"unknown ({found['error']})" if found.get("error") else "not signed"
        rep.info(f"  signed by:  {found['signed'] or unread}")
        pred = found.get("verification")
        rep.info(f"  {verified_by(pred) if pred else 'no verification attestation'}")
        if found["signed"] or pred:
            rep.info("  (read, not checked: polyarch verify --require-signature KEY checks it)")
    rows: list[list[str]] = []
    for p in desc.platforms:
        rows.append([p.platform, short(p.digest), human_size(p.size), p.created or "-",
                     str(p.layers)])
        for a in p.attestations:
            kinds = ", ".join(predicate_name(t) for t in a.predicate_types) or "attestation"
            rows.append([f"  attestation of {p.platform}", short(a.digest), human_size(a.size),
                         "-", kinds])
    for a in desc.orphan_attestations:
        rows.append(["  attestation (subject not in index)", short(a.digest),
                     human_size(a.size), "-", ", ".join(a.predicate_types) or "-"])
    rep.table(None, ["PLATFORM", "DIGEST", "SIZE", "CREATED", "LAYERS"], rows)
    return 0
