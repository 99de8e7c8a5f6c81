"""The images a Dockerfile's stages are built FROM: the repositories whose blobs a push
can mount instead of uploading."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from polyarch.platforms import Platform
from polyarch.refs import ImageRef, ReferenceError, parse_ref


def dockerfile_bases(dockerfile: Path, platforms: Sequence[Platform],
                     build_args: Mapping[str, str]) -> list[ImageRef]:
    """The images the Dockerfile's stages are built ``FROM`` (not other stages), their
    ARGs expanded for each platform; what cannot be read or resolved is left out (it
    only means those blobs are uploaded instead of mounted)."""
    from polyarch.lint.graph import global_env
    from polyarch.lint.parser import parse
    from polyarch.lint.shellwords import try_expand

    try:
        text = dockerfile.read_text(encoding="utf-8")[:1_000_000]
        df = parse(text)
    except (OSError, ValueError):
        return []
    declared = {a.name for a in df.global_args}
    out: list[ImageRef] = []
    for platform in platforms:
        env = global_env(df, platform, platform)
        env.update({k: v for k, v in build_args.items() if k in declared})
        for st in df.stages:
            e = try_expand(st.image, env, escape=df.escape)
            name = e.result if e is not None and not e.unset else None
            if not name or name.lower() == "scratch" or df.stage_named(name.lower(), st.index):
                continue
            try:
                ref = parse_ref(name)
            except ReferenceError:
                continue
            if ref not in out:
                out.append(ref)
    return out[:16]
