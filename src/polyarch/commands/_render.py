"""Human output of results (``--json`` prints ``to_json()`` of the same objects)."""

from __future__ import annotations

from polyarch.output import Reporter
from polyarch.pipeline.publish import ImageResult


def image(rep: Reporter, r: ImageResult) -> None:
    rep.info(f"index   {r.digest}")
    rep.table(None, ["platform", "digest", "build"],
              [(p.platform, p.digest, p.mode) for p in r.platforms])
    if r.pushed is not None:
        p = r.pushed
        rep.info(f"pushed  {', '.join(p.repositories)}: {p.blobs_uploaded} blobs uploaded,"
                 f" {p.blobs_skipped} already there, {p.blobs_mounted} mounted")
    if r.signed is not None:
        sg = r.signed
        if sg.signer is not None:
            rep.info(f"signed  {sg.signer}")
        if sg.attestation is not None:
            rep.info(f"attest  verification attestation ({sg.attestation}) of the index")
    for t in (r.tagged.tags if r.tagged else ()):
        rep.info(f"tag     {t}")
    for o in r.outputs:
        rep.info(o)
    if r.layout:
        rep.info(f"kept    oci:{r.layout}")
        rep.info("        nothing else was asked for: read it with 'polyarch inspect"
                 f" oci:{r.layout}', or re-run with -o oci:PATH, --load or --push (the"
                 " build cache makes that quick)")
