"""polyarch doctor: can this machine build every platform asked for?"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from polyarch.commands._common import build_options, load_options, reporter

if TYPE_CHECKING:
    from polyarch.config import Options
    from polyarch.engines import Plan


@click.command("doctor")
@build_options("doctor")
def command(json_mode: bool, **kw: Any) -> int:
    """Check engine, buildx, builder, emulation per platform, inputs and registry access."""
    from polyarch.pipeline.plan import registry_push_check, run_preflight
    from polyarch.session import Session

    rep = reporter(json_mode)
    opts = load_options(kw)
    # Without a context argument, check the build inputs only when there are some here.
    inputs = kw.get("context") is not None or opts.dockerfile.exists() or opts.file is not None
    with Session(opts, rep) as s:
        plan = run_preflight(opts, build_engine=s.engine, need_push=bool(opts.tags),
                             allow_create=False, check_inputs=inputs,
                             registry_check=lambda o: registry_push_check(o, s.client))
    if json_mode:
        rep.emit_json(document(plan, opts))
    else:
        from polyarch.commands import _render

        _render.doctor(rep, plan, opts)
    bad = plan.first_failure()
    if bad is not None:
        assert bad.error is not None
        if not json_mode:
            rep.error(f"{bad.name}: {bad.detail}")
        return bad.error.exit_code
    return 0


def document(plan: Plan, opts: Options) -> dict[str, Any]:
    """``doctor --json`` (docs/json.md, "doctor")."""
    return {
        "schema": 1,
        "ok": plan.ok,
        # Where each option not left at its default came from, by file key.
        "sources": {name.replace("_", "-"): origin for name, origin in opts.sources.items()},
        "checks": [
            {"name": c.name, "ok": c.ok, "detail": c.detail, "remedy": c.remedy or None,
             "blocking": c.error is not None}
            for c in plan.checks
        ],
    }
