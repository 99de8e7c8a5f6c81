"""Human output of results (``--json`` prints ``to_json()`` of the same objects)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    if not r.dry_run:
        rep.info(f"time    {timings(r)}")
    if r.layout:
        rep.info(f"kept    oci:{r.layout}")
        rep.info("        nothing else was asked for: read it with 'polyarch inspect"
                 f" oci:{r.layout}', or re-run with -o oci:PATH, --load or --push (the"
                 " build cache makes that quick)")


def timings(r: ImageResult) -> str:
    """Where the time went, in the order the steps ran: ``build 4.5s, scan 0.1s, ...``."""
    t = r.to_json()["timings"]
    parts = [("build", t["build_seconds"]), ("scan", t.get("scan_seconds", 0.0))]
    if t.get("smoke_ran") or t.get("smoke_cached"):
        parts += [("load", t["load_seconds"]), ("smoke", t["smoke_seconds"])]
    parts += [("push", t["push_seconds"]), ("tag", t["tag_seconds"])]
    text = ", ".join(f"{name} {secs:.1f}s" for name, secs in parts)
    if t.get("smoke_cached"):
        text += f" ({t['smoke_cached']} platform(s) smoke-tested before, not run again)"
    return text
