"""PA005 base-missing-platform (error) and PA006 base-not-checked (note): an image
pulled for a target platform (FROM, ``COPY --from=<image>``) that does not provide that
platform. Needs a lookup (the registry); without one, or when it fails, a note."""

from __future__ import annotations

from polyarch.lint.context import LintContext
from polyarch.lint.model import LookupFailed, PlatformLookup, Stage
from polyarch.lint.shellwords import try_expand
from polyarch.platforms import Platform
from polyarch.refs import ReferenceError, parse_ref


def external_images(ctx: LintContext
                    ) -> list[tuple[Stage, int, str, str | None, tuple[Platform, ...]]]:
    """(stage, line, image, unresolved-reason, platforms it is pulled for) of every image
    a target platform pulls for itself."""
    found: dict[tuple[int, str], tuple[Stage, str | None, list[Platform]]] = {}
    for g in ctx.graphs:
        for i in sorted(g.reachable):
            v = g.views[i]
            if v.kind != "target":
                continue
            st = v.stage
            cands: list[tuple[int, str, str | None]] = []
            if v.parent is None:
                why = (f"uses ${', $'.join(sorted(v.unresolved))} which has no default"
                       if v.unresolved else None)
                cands.append((st.from_inst.line, v.image or st.image, why))
            for inst in st.instructions:
                src = inst.flags.get("from") if inst.keyword in ("COPY", "ADD") else None
                if not src:
                    continue
                e = try_expand(src, g.global_env, escape=ctx.df.escape)
                value = e.result if e is not None else src
                if ctx.df.stage_named(value.lower()) is None:
                    cands.append((inst.line, value, None))
            for line, image, why in cands:
                if image.lower() == "scratch" or ctx.df.stage_named(image.lower()):
                    continue
                found.setdefault((line, image), (st, why, []))[2].append(g.platform)
    return [(st, line, value, why, tuple(plats))
            for (line, value), (st, why, plats) in found.items()]


def check(ctx: LintContext, lookup: PlatformLookup) -> None:
    cache: dict[str, list[Platform] | str] = {}
    for st, line, image, unresolved, wanted in external_images(ctx):
        if unresolved:
            ctx.add("PA006", "note", line, f"base image {image!r} not checked: it {unresolved}",
                    "give the ARG a default, or check the image with `polyarch inspect`", st)
            continue
        try:
            ref = parse_ref(image)
        except ReferenceError as e:
            ctx.add("PA000", "error", line, f"invalid image reference {image!r}: {e}",
                    "fix the image name", st)
            continue
        if image not in cache:
            try:
                got = lookup(ref)
                cache[image] = got if got is not None else "the registry gave no answer"
            except LookupFailed as e:
                cache[image] = str(e) or "lookup failed"
            except Exception as e:  # noqa: BLE001 - any lookup failure is only a note
                cache[image] = f"{type(e).__name__}: {e}"
        res = cache[image]
        if isinstance(res, str):
            ctx.add("PA006", "note", line, f"base image {image} not checked: {res}",
                    "run again with registry access (and credentials) to check its platforms",
                    st)
            continue
        missing = [p for p in wanted
                   if not any(p.matches(q.os, q.architecture, q.variant or None) for q in res)]
        if missing:
            has = ", ".join(str(q) for q in res) or "none"
            ctx.add("PA005", "error", line,
                    f"base image {image} does not provide "
                    f"{', '.join(str(p) for p in missing)} (it has: {has})",
                    "pick a tag or digest whose index covers every target platform (a digest of "
                    "one platform's manifest pins that platform), or build only for the "
                    "platforms it has", st)
