"""PA001 hardcoded-arch: an architecture written literally where another target
platform builds the stage.

Error in a stage that runs on the target (the variant gets another architecture's
file); warning in a ``$BUILDPLATFORM`` stage (right on one kind of build machine only).
Words chosen per platform (``case "$TARGETARCH"``, ``if [ "$(uname -m)" = ...``), read
into a variable (``V=$(curl .../x86_64/APKINDEX...)``) or in stages only that
architecture builds (``FROM base-${TARGETARCH}``) are not reported.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator

from polyarch.lint.arch import (
    ARCH_FAMILY,
    ARCH_RE,
    FILE_EXT,
    IMAGE_ARCH_RE,
    RUNTIME_DETECT,
    SETTING_FAMILY,
    arch_vars,
    captured_ranges,
    case_branches,
    family,
    selected_ranges,
    source_re,
    word_around,
)
from polyarch.lint.context import LintContext
from polyarch.lint.graph import PLATFORM_ARGS
from polyarch.lint.model import Instruction, Severity, Stage, Text
from polyarch.lint.rules.common import arch_source, target_source
from polyarch.lint.rules.pa001_values import (
    OTHER_OS,
    pattern_families,
    toolchains,
    used_unguarded,
)
from polyarch.lint.shell import blank_comments, simple_commands, split_outside_quotes

HINT = (
    "declare `ARG TARGETARCH` in the stage and use ${TARGETARCH} (amd64, arm64, ...); where "
    "the download names architectures differently, map it: "
    "`case \"$TARGETARCH\" in amd64) A=x86_64;; arm64) A=aarch64;; esac`"
)
_ASSIGN = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z_]*ARCH|--arch|--cpu|--target-arch|--target)[= ]"
                     r"['\"]?([A-Za-z0-9_-]+)['\"]?", re.IGNORECASE)
#: A target triple (``aarch64-unknown-linux-musl``, ``x86_64-linux-gnu``).
_TRIPLE = re.compile(r"([A-Za-z0-9_]+)-(?:unknown|pc|linux|apple|none|w64|alpine)\b")


def _other_os(script: str, m: re.Match[str], word: str) -> bool:
    """Whether the architecture word at ``m`` names another OS's file or platform: the
    OS in the same path segment (``tool-windows-x64.zip``) or the one before it
    (``darwin/amd64``, ``winnt/x64/...``)."""
    start = script.find(word, max(0, m.start() - len(word)))
    at = m.start() - start if start >= 0 else 0
    segs = word.split("/")
    i = word[:at].count("/")
    near = segs[max(0, i - 1):i + 1]
    return any(OTHER_OS.search(s) for s in near)


_OTHER_OS_SETTING = re.compile(r"\bGOOS=['\"]?(?:darwin|windows|freebsd|openbsd|netbsd"
                               r"|solaris|illumos|plan9|js|wasip1|ios|android)\b")
_HEREDOC = re.compile(r"<<-?[\"']?[A-Za-z_][A-Za-z0-9_]*[\"']?")
_STMT = re.compile(r";;|;|\n")


def _short(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


def check(ctx: LintContext) -> None:
    for st in ctx.reachable_stages():
        reached = ctx.reached(st.index)
        kinds = {v.kind for _, v in reached}
        if kinds <= {"unknown"}:
            continue
        # The platforms this stage's files are made for (a pinned stage: its own).
        arches = {(g.platform.architecture, str(g.platform)) for g, v in reached
                  if v.kind != "fixed"}
        arches |= {(v.runs_on.architecture, str(v.runs_on)) for _, v in reached
                   if v.kind == "fixed" and v.runs_on is not None}
        build_only = kinds == {"build"}
        sev: Severity = "warning" if build_only else "error"
        own = {family(m.group(1)) for m in ARCH_RE.finditer(st.name or "")}
        _check_from(ctx, st)
        source = arch_source(ctx, st)
        target = target_source(ctx, st)
        every = _set_for_every_target(st, {a for a, _ in arches})
        collected = _copies_for_every_target(st, {a for a, _ in arches})
        for inst in st.instructions:
            for text, kind in _texts(inst):
                if kind == "paths" and id(inst) in collected:
                    continue
                _scan(ctx, st, inst, text, kind, own, arches, sev, source, every)
                if kind == "shell":
                    _branches(ctx, st, inst, text, target, arches, sev)
    in_from = {name for st in ctx.df.stages for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*",
                                                                   st.platform or "")}
    all_arches = {p.architecture for p in ctx.platforms}
    global_source = _global_source(ctx)
    for decl in ctx.df.global_args:
        if decl.default and decl.name not in PLATFORM_ARGS and decl.name not in in_from:
            m = ARCH_RE.search(decl.default)
            if m and not global_source.search(decl.default) and all_arches - {
                    family(m.group(1))} and used_unguarded(ctx, decl.name, family(m.group(1))):
                ctx.add("PA001", "error", decl.line,
                        f"global ARG {decl.name} defaults to architecture-specific "
                        f"{decl.default!r}, the same for every target platform", HINT, None)


def _global_source(ctx: LintContext) -> re.Pattern[str]:
    key = ("global-arch",)
    if key not in ctx.memo:
        texts = [f"{d.name}={d.default}" for d in ctx.df.global_args if d.default is not None]
        ctx.memo[key] = source_re(arch_vars(texts, set(PLATFORM_ARGS), False), False)
    rx: re.Pattern[str] = ctx.memo[key]
    return rx


def _check_from(ctx: LintContext, st: Stage) -> None:
    for g, v in ctx.reached(st.index):
        if v.parent is not None or v.kind != "target" or not v.image:
            continue
        if _global_source(ctx).search(st.image):
            continue  # chosen per platform: FROM img:${TARGETARCH}
        m = IMAGE_ARCH_RE.search(v.image.split("@", 1)[0])
        if m and ARCH_FAMILY[m.group(1)] != g.platform.architecture:
            ctx.add("PA001", "error", st.from_inst.line,
                    f"stage {st.label}: base image {v.image!r} names architecture "
                    f"{m.group(1)!r}, and {g.platform} builds on it",
                    "use the multi-platform tag (drop the architecture from the tag) or "
                    "choose it with ${TARGETARCH}", st)
            return


def _texts(inst: Instruction) -> Iterator[tuple[Text, str]]:
    if inst.keyword == "RUN":
        for t in inst.texts():
            yield t, "shell"
    elif inst.keyword in ("COPY", "ADD"):
        yield inst.args, "paths"
        for h in inst.heredocs:
            yield h.body, "shell"
    elif inst.keyword in ("ENV", "ARG"):
        yield inst.args, "values"
    elif inst.keyword in ("CMD", "ENTRYPOINT", "WORKDIR", "VOLUME"):
        yield inst.args, "shell"


def _settings(value: str) -> Iterator[tuple[str, str]]:
    """(setting name, architecture family) of every literal architecture setting."""
    for m in _ASSIGN.finditer(value):
        val = m.group(2).lower()
        if m.group(1).lower() == "--target":
            t = _TRIPLE.match(val)
            fam = ARCH_FAMILY.get(t.group(1)) if t else None
        else:
            fam = SETTING_FAMILY.get(val)
        if fam is not None:
            yield m.group(1).upper(), fam


def _set_for_every_target(st: Stage, targets: set[str]) -> set[str]:
    """Settings (``GOARCH``) the stage's RUN instructions give, between them, the value of
    every target architecture: the stage builds for each in turn (``RUN GOARCH=amd64 ...``,
    ``RUN GOARCH=arm64 ...``), so every variant gets the same, complete set."""
    seen: dict[str, set[str]] = {}
    for inst in st.instructions:
        if inst.keyword == "RUN":
            for t in inst.texts():
                for name, fam in _settings(blank_comments(t.value)):
                    seen.setdefault(name, set()).add(fam)
    return {n for n, fams in seen.items() if len(targets) > 1 and targets <= fams}


def _copies_for_every_target(st: Stage, targets: set[str]) -> set[int]:
    """COPY/ADD instructions of the stage that, between them, take the same file for every
    target's architecture (``ADD app_amd64.snap``, ``ADD app_arm64.snap``...): the stage
    collects them all, the same for every variant. Their ids."""
    groups: dict[str, list[Instruction]] = {}
    fams: dict[str, set[str]] = {}
    for inst in st.instructions:
        if inst.keyword not in ("COPY", "ADD"):
            continue
        words = list(ARCH_RE.finditer(inst.args.value))
        if not words:
            continue
        key = ARCH_RE.sub("\0", inst.args.value)
        groups.setdefault(key, []).append(inst)
        fams.setdefault(key, set()).update(family(m.group(1)) for m in words)
    return {id(i) for k, insts in groups.items()
            if len(insts) > 1 and len(targets) > 1 and targets <= fams[k] for i in insts}


def _scan(ctx: LintContext, st: Stage, inst: Instruction, text: Text, kind: str,
          own: set[str], arches: set[tuple[str, str]], sev: Severity,
          source: re.Pattern[str], every: Collection[str] = ()) -> None:
    script = blank_comments(text.value) if kind == "shell" else text.value
    if kind == "paths" and inst.json_args is None:
        script = _HEREDOC.sub(lambda m: " " * len(m.group(0)), script)
    skipped = (selected_ranges(script, source) + captured_ranges(script)) \
        if kind == "shell" else []
    # A statement (or ENV/ARG) naming the architecture of every target lists them all
    # (PKG_CONFIG_PATH with each architecture's directory, a cross toolchain per
    # architecture): every variant gets the same, complete list.
    targets = {a for a, _ in arches}
    for off, stmt in split_outside_quotes(script, _STMT) if kind == "shell" else [(0, script)]:
        # Another OS's triples and files (`rustup target add aarch64-pc-windows-msvc`)
        # are for no Linux target: they do not complete the list.
        fams = {family(m.group(1)) for m in ARCH_RE.finditer(stmt)
                if not any(a <= off + m.start() < b for a, b in skipped)
                and not _other_os(stmt, m, word_around(stmt, m.start(), m.end()))}
        if len(targets) > 1 and targets <= fams:
            skipped.append((off, off + len(stmt)))
    reported: set[int] = set()

    def skip(pos: int, family: str) -> bool:
        return family in own or any(a <= pos < b for a, b in skipped)

    def wrong_for(family: str) -> list[str]:
        return sorted({p for a, p in arches if a != family})

    if kind == "shell":
        for off, stmt in split_outside_quotes(script, _STMT):
            det = RUNTIME_DETECT.search(stmt)
            fams = {family(m.group(1)) for m in ARCH_RE.finditer(stmt)}
            if (det and re.search(r"\|\|\s*(?:exit|false|\(|\{)", stmt) and len(fams) == 1
                    and wrong_for(next(iter(fams)))):
                line = text.line_at(off + len(stmt) - len(stmt.lstrip()))
                reported.add(line)
                ctx.add("PA001", sev, line,
                        f"stage {st.label}: {inst.keyword} assumes one architecture from the "
                        f"machine's own report ({det.group(0)!r}); the build fails or differs "
                        "on every other platform",
                        "handle each target architecture (case on $TARGETARCH), or fail with "
                        "a clear message only for platforms you really do not support", st)
    for m in ARCH_RE.finditer(script):
        fam = family(m.group(1))
        if skip(m.start(), fam):
            continue
        word = word_around(script, m.start(), m.end())
        if _other_os(script, m, word):
            continue  # darwin/amd64, tool-windows-x64.zip: another OS's file, for no target
        value = word.split("=", 1)[1] if "=" in word and kind != "paths" else word
        if kind == "values":
            if inst.keyword == "ARG" and "=" not in word:
                continue  # `ARG TARGETARCH amd64`: two ARG names, no value (BuildKit)
            if word.split("=", 1)[0] in PLATFORM_ARGS or source.search(value):
                continue
            pathlike = True
        elif kind == "paths":
            pathlike = not word.startswith("--")
        else:
            pathlike = "/" in value or FILE_EXT.search(value) is not None
        wrong = wrong_for(fam)
        if not pathlike or not wrong:
            continue
        line = text.line_at(m.start())
        if line in reported:
            continue
        reported.add(line)
        what = "URL" if "://" in word else "path" if "/" in word else "file name" \
            if kind != "values" else "value"
        ctx.add("PA001", sev, line,
                f"stage {st.label}: {inst.keyword} hard-codes architecture {m.group(1)!r} in "
                f"{what} {_short(word)!r}: wrong for {', '.join(wrong)}", HINT, st)
    if kind == "shell":
        # Architecture settings of a build tool, each with its message and remedy.
        settings = [
            (pos, f"builds .NET for runtime {rid!r}: architecture {fam} for every platform",
             "use the target's: ARG TARGETARCH then `dotnet publish -a $TARGETARCH` "
             "(.NET 8+ takes amd64/arm64), or map it to a RID with case", fam)
            for pos, rid, fam in _dotnet_rids(script)]
        settings += [
            (pos, f"names toolchain {_short(name, 60)!r} for architecture {fam}: the same"
                  " for every platform",
             "name the toolchain without a host triple (rustup picks the machine's), or "
             "map the target to its triple with case on $TARGETARCH", fam)
            for pos, name, fam in toolchains(script)]
        for pos, said, remedy, fam in settings:
            line = text.line_at(pos)
            if skip(pos, fam) or not wrong_for(fam) or line in reported:
                continue
            reported.add(line)
            ctx.add("PA001", sev, line, f"stage {st.label}: {inst.keyword} {said}, wrong for "
                    f"{', '.join(wrong_for(fam))}", remedy, st)
    if kind in ("shell", "values"):
        for m in _ASSIGN.finditer(script):
            val = m.group(2).lower()
            setting: str | None
            if m.group(1).lower() == "--target":
                t = _TRIPLE.match(val)
                setting = ARCH_FAMILY.get(t.group(1)) if t else None
            else:
                setting = SETTING_FAMILY.get(val)
            if setting is None:
                continue
            if any(a <= m.start() < a + len(stmt) and _OTHER_OS_SETTING.search(stmt)
                   for a, stmt in split_outside_quotes(script, _STMT)):
                continue  # GOOS=darwin GOARCH=amd64: a build for another OS
            fam = setting
            if (skip(m.start(), fam) or m.group(1).upper() in PLATFORM_ARGS
                    or (inst.keyword == "RUN" and m.group(1).upper() in every)
                    or (inst.keyword == "ARG" and m.group(0)[len(m.group(1))] != "=")
                    or not wrong_for(fam)):
                continue
            line = text.line_at(m.start())
            if line in reported:
                continue
            reported.add(line)
            ctx.add("PA001", sev, line,
                    f"stage {st.label}: {inst.keyword} sets {m.group(0).strip()!r}: a fixed "
                    "architecture for every platform",
                    "use the target's value: ARG TARGETARCH then GOARCH=$TARGETARCH (or map it "
                    "with case for tools that name architectures differently)", st)


def _branches(ctx: LintContext, st: Stage, inst: Instruction, text: Text,
              target: re.Pattern[str], arches: set[tuple[str, str]], sev: Severity) -> None:
    """A ``case`` on the target's architecture whose branch for one architecture picks
    another's file (``arm64) A=x86_64 ;;``): wrong for the platforms reaching it."""
    script = blank_comments(text.value)
    branches = case_branches(script, target)
    for pattern, a, b in branches:
        fams = pattern_families(pattern)
        if pattern.strip("'\"") == "*":
            covered = {fa for p, _, _ in branches for fa in pattern_families(p)}
            fams = {fa for fa, _ in arches} - covered
            default = True
        else:
            default = False
        reaching = {(fa, p) for fa, p in arches if fa in fams}
        if not reaching:
            continue
        for m in ARCH_RE.finditer(script, a, b):
            fam = family(m.group(1))
            wrong = sorted(p for fa, p in reaching if fa != fam)
            if not wrong or (fam in fams and not default):
                continue
            word = word_around(script, m.start(), m.end())
            ctx.add("PA001", sev, text.line_at(m.start()),
                    f"stage {st.label}: the `case` branch `{_short(pattern, 30)})` maps "
                    f"{', '.join(wrong)} to architecture {m.group(1)!r} ({_short(word, 60)!r}): "
                    "that platform gets another architecture's file", HINT, st)
            break


#: The architecture part of a .NET runtime identifier (``linux-x64``, ``linux-musl-arm64``).
_RID_ARCH = {"x64": "amd64", "arm64": "arm64", "arm": "arm", "x86": "386"}


def _dotnet_rids(script: str) -> Iterator[tuple[int, str, str]]:
    """(offset, runtime identifier, architecture) of each literal ``-r``/``--runtime``
    (and ``-a``/``--arch``) a ``dotnet`` command is given."""
    for c in simple_commands(script):
        if c.name != "dotnet":
            continue
        args = list(c.args)
        for i, a in enumerate(args):
            flag, _, val = a.partition("=") if a.startswith("--") else a.partition(":")
            if flag in ("-r", "--runtime", "-a", "--arch") and not val and i + 1 < len(args):
                val = args[i + 1]
            elif flag not in ("-r", "--runtime", "-a", "--arch") or not val:
                continue
            fam = _RID_ARCH.get(val.rsplit("-", 1)[-1].lower()) if "$" not in val else None
            if fam is None:
                fam = ARCH_FAMILY.get(val.lower()) if "$" not in val else None
            if fam is None:
                continue
            pos = script.find(val, c.offset)
            yield (pos if pos >= 0 else c.offset), val, fam
