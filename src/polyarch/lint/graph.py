"""The stage graph of one target platform.

For each target platform the builder sets the automatic ARGs (``TARGETPLATFORM``,
``TARGETOS``, ``TARGETARCH``, ``TARGETVARIANT`` and the ``BUILD*`` ones). With them
this module resolves every ``FROM`` (image name and ``--platform``, global ``ARG``
defaults expanded with BuildKit's lexer, defaults that refer to other ARGs included),
decides where each stage runs (on the target, on the build machine, or pinned), and
follows ``FROM <stage>``, ``COPY/ADD --from`` and ``RUN --mount=from=`` from the
target stage (``--target`` or the last one) to find the stages that platform really
builds. Rules lint only those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from polyarch.lint.model import Dockerfile, Instruction, Stage
from polyarch.lint.parser import parse_arg, parse_env
from polyarch.lint.shellwords import (
    MAX_EXPANSION,
    ExpandError,
    ExpansionTooLarge,
    expand,
    split_raw,
)
from polyarch.platforms import Platform, parse_platform

TARGET_VARS = ("TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT")
BUILD_VARS = ("BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT")
PLATFORM_ARGS = TARGET_VARS + BUILD_VARS

#: The build machine assumed where its platform matters (it is not known when linting).
DEFAULT_BUILD = Platform("linux", "amd64")


def auto_args(target: Platform, build: Platform) -> dict[str, str]:
    return {
        "TARGETPLATFORM": str(target), "TARGETOS": target.os,
        "TARGETARCH": target.architecture, "TARGETVARIANT": target.variant or "",
        "BUILDPLATFORM": str(build), "BUILDOS": build.os,
        "BUILDARCH": build.architecture, "BUILDVARIANT": build.variant or "",
    }


@dataclass
class StageView:
    """One stage as one target platform builds it."""

    stage: Stage
    #: The image name after expansion (``None`` when it uses an ARG without a value).
    image: str | None
    unresolved: set[str]
    #: Index of the stage this one is built FROM, if any.
    parent: int | None
    #: ``target`` (runs on the target platform, emulated where not native), ``build``
    #: ($BUILDPLATFORM: native), ``fixed`` (a literal platform) or ``unknown``.
    kind: str
    runs_on: Platform | None
    #: The literal --platform value of a pinned stage.
    pinned: str | None = None


@dataclass
class Use:
    """Stage ``consumer`` takes files from stage ``source`` (COPY/ADD --from, RUN --mount)."""

    consumer: int
    source: int
    inst: Instruction
    #: Source paths for COPY/ADD; empty for a mount.
    paths: list[str]


@dataclass
class PlatformGraph:
    platform: Platform
    build: Platform
    global_env: dict[str, str]
    views: list[StageView]
    target: int
    reachable: set[int] = field(default_factory=set)
    uses: list[Use] = field(default_factory=list)

    def lineage(self, index: int | None = None) -> list[int]:
        """``index`` (default: the target) and the stages it is built FROM."""
        out = []
        cur: int | None = self.target if index is None else index
        while cur is not None and cur not in out:
            out.append(cur)
            cur = self.views[cur].parent
        return out

    def consumers(self, source: int) -> list[Use]:
        """Uses of ``source`` or of any stage built FROM it, by reachable stages."""
        family = {source}
        for v in self.views[source + 1:]:
            if v.parent in family and v.stage.index in self.reachable:
                family.add(v.stage.index)
        return [u for u in self.uses if u.source in family and u.consumer in self.reachable]


def _expand(word: str, env: dict[str, str], escape: str, df: Dockerfile | None = None,
            line: int = 0) -> tuple[str | None, set[str], set[str]]:
    try:
        e = expand(word, env, escape=escape)
    except ExpansionTooLarge as exc:
        if df is not None:
            problem = (line, f"{exc}: variables that refer to each other grow past "
                             f"{MAX_EXPANSION} characters (each `ARG A2=${{A1}}${{A1}}` doubles "
                             "the last); polyarch stops expanding them")
            if problem not in df.problems:
                df.problems.append(problem)
        return None, set(), set()
    except ExpandError:
        return None, set(), set()
    return e.result, e.unset, e.used


def global_env(df: Dockerfile, target: Platform, build: Platform) -> dict[str, str]:
    env = auto_args(target, build)
    for decl in df.global_args:
        if decl.default is None:
            continue
        value, _, _ = _expand(decl.default, env, df.escape, df, decl.line)
        if value is not None:
            env[decl.name] = value
    return env


def stage_args(df: Dockerfile, graph: PlatformGraph, index: int,
               upto: Instruction | None = None) -> tuple[dict[str, str], set[str]]:
    """(values of ARG/ENV names visible in stage ``index`` before ``upto``, names
    declared there or in the stages it is built FROM). Stage ARGs are inherited by a
    stage built FROM that stage, as BuildKit does."""
    chain = list(reversed(graph.lineage(index)))
    env: dict[str, str] = {}
    declared: set[str] = set()
    for i in chain:
        for inst in df.stages[i].instructions:
            if inst is upto:
                return env, declared
            if inst.keyword == "ARG":
                for a in parse_arg(inst, df.escape):
                    declared.add(a.name)
                    if a.default is not None:
                        v, _, _ = _expand(a.default, env, df.escape, df, a.line)
                        if v is not None:
                            env[a.name] = v
                    elif a.name in graph.global_env:
                        env[a.name] = graph.global_env[a.name]
            elif inst.keyword == "ENV":
                for k, raw in parse_env(inst, df.escape):
                    declared.add(k)
                    v, _, _ = _expand(raw, env, df.escape, df, inst.line)
                    env[k] = v if v is not None else raw
    return env, declared


def _mount_sources(inst: Instruction) -> list[str]:
    out = []
    for m in inst.flag_values("mount"):
        for part in m.split(","):
            k, _, v = part.partition("=")
            if k.strip().lower() == "from" and v:
                out.append(v.strip())
    return out


def build_graph(df: Dockerfile, platform: Platform, build: Platform = DEFAULT_BUILD,
                target: str | None = None) -> PlatformGraph:
    """The stage graph ``platform`` builds (``target``: a stage name, default the last)."""
    genv = global_env(df, platform, build)
    views: list[StageView] = []
    for st in df.stages:
        image, unresolved, _ = _expand(st.image, genv, df.escape, df, st.from_inst.line)
        parent_stage = df.stage_named(image.lower(), before=st.index) if image else None
        parent = parent_stage.index if parent_stage is not None else None
        kind: str = "target"
        runs_on: Platform | None = platform
        pinned: str | None = None
        if st.platform is not None:
            value, missing, used = _expand(st.platform, genv, df.escape)
            overridden = any(d.name in used and d.default is not None for d in df.global_args)
            if value is None or missing or not value:
                kind, runs_on = "unknown", None
            elif used & set(BUILD_VARS) and not overridden:
                kind, runs_on = "build", build
            elif used & set(TARGET_VARS) and not overridden:
                kind, runs_on = "target", platform
            else:
                try:
                    runs_on = parse_platform(value)
                    kind, pinned = "fixed", value
                except ValueError:
                    kind, runs_on = "unknown", None
        elif parent is not None:
            pv = views[parent]
            kind, runs_on, pinned = pv.kind, pv.runs_on, pv.pinned
        views.append(StageView(st, image if not unresolved else None, unresolved, parent,
                               kind, runs_on, pinned))
    graph = PlatformGraph(platform, build, genv, views, 0)
    if not df.stages:
        return graph
    tgt = df.stage_named(target) if target else None
    graph.target = tgt.index if tgt is not None else len(df.stages) - 1
    for st in df.stages:
        for inst in st.instructions:
            refs: list[tuple[str, list[str]]] = []
            if inst.keyword in ("COPY", "ADD") and inst.flags.get("from"):
                words = inst.json_args if inst.json_args is not None else split_raw(
                    _strip_heredocs(inst.args.value), df.escape)
                refs.append((str(inst.flags["from"]), words[:-1]))
            if inst.keyword == "RUN":
                refs.extend((s, []) for s in _mount_sources(inst))
            for ref, paths in refs:
                val, _, _ = _expand(ref, genv, df.escape)
                src = df.stage_named((val or ref).lower())
                if src is not None and src.index != st.index:
                    graph.uses.append(Use(st.index, src.index, inst, paths))
    todo = [graph.target]
    while todo:
        i = todo.pop()
        if i in graph.reachable:
            continue
        graph.reachable.add(i)
        parent = views[i].parent
        if parent is not None:
            todo.append(parent)
        todo.extend(u.source for u in graph.uses if u.consumer == i)
    return graph


_HEREDOC_MARK = re.compile(r"<<-?[\"']?[A-Za-z_][A-Za-z0-9_]*[\"']?")


def _strip_heredocs(s: str) -> str:
    return _HEREDOC_MARK.sub(" ", s)
