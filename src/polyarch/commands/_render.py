"""Human output of results (``--json`` prints ``to_json()`` of the same objects)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyarch.output import Reporter
from polyarch.pipeline.publish import ImageResult

if TYPE_CHECKING:
    from polyarch.checks.report import VerifyReport
    from polyarch.pipeline.merge import MergeResult

#: Findings shown per platform by ``verify`` (all of them are in --json).
MAX_ROWS = 40


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


def merged(rep: Reporter, done: MergeResult) -> None:
    """``polyarch merge``: the dry run's index, or the published image and where each
    platform came from."""
    if done.result.dry_run:
        rep.info(done.plan.index.data.decode().rstrip())
        return
    image(rep, done.result)
    rep.table(None, ["platform", "source"],
              [(str(e.platform), e.source.given) for e in done.plan.entries])


def verification(rep: Reporter, report: VerifyReport, checked: Any = None) -> None:
    """``polyarch verify``: the checks per platform, the findings (at most
    :data:`MAX_ROWS` per platform), the ``--allow`` lines, and the signature read."""
    from polyarch.checks.report import CHECKS
    from polyarch.pipeline.verify import allow_lines, platform_lines

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
    for line in platform_lines(report, "--json lists every finding"):
        rep.info(line)
    allow = allow_lines(report)
    if allow:
        rep.info("to accept one of the errors as a known exception (it then becomes a"
                 " note), add its line to the command:")
        for line in allow:
            rep.info(f"  {line}")
    if report.ok:
        rep.info(report.summary())
    if checked is not None and checked.signature:
        rep.info(f"signed by {checked.signature}")
    if checked is not None and checked.attestation:
        from polyarch.signing.check import describe

        rep.info(describe(checked.attestation))
