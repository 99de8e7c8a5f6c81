"""Human output of results (``--json`` prints ``to_json()`` of the same objects)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polyarch.checks.report import VerifyReport
    from polyarch.config import Options
    from polyarch.engines.base import Plan
    from polyarch.lint import Finding as LintFinding
    from polyarch.output import Reporter
    from polyarch.pipeline.merge import MergeResult
    from polyarch.pipeline.result import ImageResult
    from polyarch.registry.describe import ImageDescription
    from polyarch.tags import GitContext, TagPlan

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


#: Build context sent to the builder worth a word in the time line (bytes): an
#: unchanged context the builder still holds sends kilobytes.
CONTEXT_WORTH_SAYING = 50_000_000


def timings(r: ImageResult) -> str:
    """Where the time went, in the order the steps ran: ``build 4.5s, scan 0.1s, ...``."""
    t = r.to_json()["timings"]
    parts = [("build", t["build_seconds"]), ("scan", t.get("scan_seconds", 0.0))]
    if t.get("smoke_ran") or t.get("smoke_cached"):
        parts += [("load", t["load_seconds"]), ("smoke", t["smoke_seconds"])]
    parts += [("push", t["push_seconds"]), ("tag", t["tag_seconds"])]
    text = ", ".join(f"{name} {secs:.1f}s" for name, secs in parts)
    sent = t.get("context_bytes") or 0
    if sent >= CONTEXT_WORTH_SAYING:
        # The build's own time is mostly this when the builder lost an earlier copy.
        text = text.replace("s, ", f"s (build context {sent / 1e6:,.0f} MB sent), ", 1)
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


def doctor(rep: Reporter, plan: Plan, opts: Options) -> None:
    """``polyarch doctor``: every check, and where each option not left at its default
    came from."""
    rows = [("ok" if c.ok else ("FAIL" if c.error else "warn"), c.name, c.detail,
             "" if c.ok else c.remedy) for c in plan.checks]
    if opts.sources:
        given = "; ".join(f"{name.replace('_', '-')}: {origin}"
                          for name, origin in opts.sources.items())
        rows.append(("", "options", given, ""))
    rep.table("polyarch doctor", ["", "check", "result", "remedy"], rows)


def tag_plan(rep: Reporter, plan: TagPlan, ctx: GitContext, names: list[str]) -> None:
    """``polyarch tags``: the git state read, the tags (per image name, when given),
    latest and the labels."""
    where = ctx.ref or (f"detached at {ctx.short_sha}" if ctx.sha else "no commit")
    rep.info(f"git ({ctx.source}): {where}")
    if not plan.tags:
        rep.info("no tags: no tag spec matches this git state")
    else:
        for t in plan.tags:
            if names:
                for image in names:
                    rep.info(f"{image}:{t}")
            else:
                rep.info(t)
    rep.info(f"latest: {'yes' if plan.latest else 'no'} ({plan.latest_reason})")
    rep.table("labels", ["label", "value"], sorted(plan.labels.items()))


def inspected(rep: Reporter, desc: ImageDescription, found: dict[str, Any]) -> None:
    """``polyarch inspect``: the root, the signature and attestation read (not checked),
    and one row per platform and attestation."""
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


def lint_findings(rep: Reporter, path: str, findings: list[LintFinding],
                  failing: list[LintFinding], fail_on: str) -> None:
    """``polyarch lint``: one row per finding with its fix, and the counts by severity."""
    from polyarch.lint import RULES, SEVERITY_RANK

    if not findings:
        rep.info(f"{path}: no findings")
        return
    rows = [(f"{path}:{f.line}", f.severity, f"{f.rule} {RULES[f.rule].name}",
             f"{f.message}\nfix: {f.hint}") for f in findings]
    rep.table(None, ["where", "severity", "rule", "finding"], rows)
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITY_RANK}
    summary = ", ".join(f"{n} {s}{'s' if n != 1 and s != 'info' else ''}"
                        for s, n in sorted(counts.items(), key=lambda kv: -SEVERITY_RANK[kv[0]])
                        if n)
    verdict = (f"; {len(failing)} at or above --fail-on={fail_on}" if failing else
               f"; none at or above --fail-on={fail_on}")
    rep.info(f"{path}: {summary}{verdict}")
