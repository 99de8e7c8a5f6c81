"""Rewrites of the image stage's ``--platform`` for ``polyarch lint --fix``.

* ``image-on-target``: the image is built ``FROM --platform=$BUILDPLATFORM <base>``, so
  every variant is the build machine's base (PA002). Dropping the flag makes each
  variant its own platform's base; everything the stage runs then runs for that
  platform (where it runs now, natively, for the build machine's own platform: that
  variant does not change). Refused for ``scratch`` and when the stage fixes an
  architecture or reads ``$BUILD*`` (it would then not follow the target).
* ``unpin-image``: the image is pinned to a literal platform (``--platform=linux/amd64``)
  and a target of another architecture builds it (PA002). The flag is dropped only when
  the stage adds nothing that depends on the architecture: no ``RUN``, files from the
  build context whose names say they are assets or configuration (``build/``, ``*.conf``,
  ``*.html``...), no URL, and files of stages that the same fix makes per target (a Go
  builder pinned to the same platform that ``go-cross`` moves). The pinned platform's
  own variant does not change.
"""

from __future__ import annotations

import re

from polyarch.lint.context import LintContext
from polyarch.lint.fix_go import Refused, plan
from polyarch.lint.model import Stage
from polyarch.lint.rules.common import ASSET_PATH, commands, output_paths

_META = {"ENV", "LABEL", "EXPOSE", "CMD", "ENTRYPOINT", "USER", "WORKDIR", "VOLUME",
         "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER"}
_CONFIG = re.compile(r"\.(?:conf|cfg|ini|toml|ya?ml|json|txt|md|properties|xml|env|pem|crt)$"
                     r"|(?:^|/)(?:conf|config|etc|templates?)(?:/|$)", re.IGNORECASE)
_FLAG = re.compile(r"--platform=(\S+)\s+", re.IGNORECASE)
_ARCH_WORD = re.compile(r"\b(?:amd64|x86_64|x86-64|x64|aarch64|arm64|armhf|armv7l?|i[36]86"
                        r"|ppc64le|s390x|riscv64)\b", re.IGNORECASE)
_BUILD_VAR = re.compile(r"\$\{?BUILD(?:PLATFORM|OS|ARCH|VARIANT)\b")


def drop_flag(line: str) -> str:
    return _FLAG.sub("", line, count=1)


def image_on_target(ctx: LintContext, st: Stage) -> dict[int, str]:
    """Edits dropping ``--platform=$BUILDPLATFORM`` from an image stage, or raise."""
    if st.image.strip().lower() == "scratch":
        raise Refused("a scratch image holds only what is copied in")
    for inst in st.instructions:
        text = inst.full_text()
        if inst.keyword in ("RUN", "ENV", "ARG") and _ARCH_WORD.search(text):
            raise Refused(f"line {inst.line} names an architecture: on the target it "
                          "would no longer match the machine")
        if _BUILD_VAR.search(text):
            raise Refused(f"line {inst.line} uses $BUILD*, which is meant for the build "
                          "machine")
    for _, c in commands(st):
        goarch = dict(c.assigns).get("GOARCH")
        if goarch is not None and goarch not in ("$TARGETARCH", "${TARGETARCH}"):
            raise Refused(f"GOARCH={goarch} is fixed")
    idx = st.from_inst.line - 1
    return {idx: drop_flag(ctx.df.lines[idx])}


def unpin_image(ctx: LintContext, st: Stage) -> tuple[dict[int, str], list[Stage]]:
    """Edits dropping a literal ``--platform`` from an image stage (and moving the pinned
    Go builders it copies from), with those builders; or raise."""
    if st.image.strip().lower() == "scratch":
        raise Refused("a scratch image holds only what is copied in")
    edits: dict[int, str] = {}
    builders: list[Stage] = []
    by_name = {s.name.lower(): s for s in ctx.df.stages if s.name}
    for inst in st.instructions:
        kw = inst.keyword
        if kw in _META or (kw == "ARG" and not _ARCH_WORD.search(inst.args.value)):
            continue
        if kw not in ("COPY", "ADD"):
            raise Refused(f"line {inst.line}: {kw} in a pinned image: it would run for "
                          "each target")
        src = inst.flags.get("from")
        words = inst.json_args if inst.json_args is not None else inst.args.value.split()
        paths = [w for w in words[:-1] if not w.startswith("--")]
        if src is None:
            for p in paths:
                if "://" in p or p.startswith("git@"):
                    raise Refused(f"line {inst.line}: {kw} of a URL")
                if not (ASSET_PATH.search(p) or _CONFIG.search(p)):
                    raise Refused(f"line {inst.line}: {p} from the build context may be a "
                                  "binary for the pinned platform")
            continue
        b = by_name.get(src.lower()) or (ctx.df.stages[int(src)] if src.isdigit()
                                         and int(src) < len(ctx.df.stages) else None)
        if b is None or b.platform != st.platform:
            raise Refused(f"line {inst.line}: files from {src}, which the fix does not make "
                          "per target")
        if any(cons is not st for cons, _, _ in output_paths(ctx, b)):
            raise Refused(f"line {inst.line}: other stages take files from {src} too")
        go = plan(ctx, b)
        if b not in builders:
            builders.append(b)
            idx = b.from_inst.line - 1
            line = _FLAG.sub("--platform=$BUILDPLATFORM ", ctx.df.lines[idx], count=1)
            edits.update(go.edits)
            edits[idx] = line + (f"\n{go.arg_line}" if go.arg_line else "")
    idx = st.from_inst.line - 1
    edits[idx] = drop_flag(ctx.df.lines[idx])
    return edits, builders
