"""polyarch verify REF|oci:PATH: does every variant match its platform?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from polyarch.commands._common import (
    config_option,
    json_option,
    load_options,
    reporter,
    table_options,
)
from polyarch.errors import UsageError, VerificationError
from polyarch.session import Session


@click.command("verify")
@click.argument("ref", metavar="REF|oci:PATH")
@table_options("verify")
@click.option("--deep/--no-deep", default=True,
              help="Read every layer (binaries, secrets). --no-deep checks the index only.")
@config_option
@json_option
def command(ref: str, deep: bool, json_mode: bool, **kw: Any) -> int:
    """Verify that every variant of REF is what its platform says.

    Exit 0 when every check passes, 5 when one fails (or, with --require-signature or
    --require-attestation, when the index the reference names is not signed or attested),
    4 when the registry cannot be read.
    """
    from polyarch.pipeline import verify as verify_step
    from polyarch.signing.cosign import requirement_from

    rep = reporter(json_mode)
    opts = load_options(kw)
    req = requirement_from(opts.require_signature, opts.certificate_identity,
                           opts.certificate_oidc_issuer, opts.tlog)
    if (req is not None or opts.require_attestation) and ref.startswith("oci:"):
        raise UsageError("--require-signature/--require-attestation check a registry's"
                         f" signatures; {ref} is a local layout",
                         hint="verify the published reference instead")
    if req is not None:
        from polyarch.signing.cosign import check_available

        check_available()
    rep.step(f"verifying {ref} for {', '.join(str(p) for p in opts.platforms)}")
    checked = None
    docker_config = Path(opts.docker_config) if opts.docker_config else None
    with Session(opts, rep, docker_config=docker_config) as s:
        verified = verify_step.verify_source(s, ref, deep=deep)
        report = verified.report
        assert report is not None  # verify reads what it was asked to, always
        if req is not None or opts.require_attestation:
            checked = _signature(s, ref, report.index_digest, req, opts.require_attestation)
    if json_mode:
        doc = report.to_json()
        if checked is not None:
            doc["signature"] = checked.to_json()
        rep.emit_json(doc)
    else:
        from polyarch.commands import _render

        _render.verification(rep, report, checked)
    if not report.ok:
        raise VerificationError(report.summary())
    return 0


def _signature(s: Session, ref: str, digest: str, req: Any, need_attestation: bool) -> Any:
    """Check the signature and the attestation of the index ``ref`` names now (by
    digest: a tag moved to another index since it was signed fails)."""
    from polyarch.pipeline.sign import access
    from polyarch.refs import parse_ref
    from polyarch.signing.check import check

    repo = parse_ref(ref)
    return check(s.client, repo, digest, access(s, repo.registry), req, need_attestation)
