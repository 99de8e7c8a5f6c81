"""The stage graph per target platform."""

from __future__ import annotations

from polyarch.lint import build_graph, parse
from polyarch.lint.graph import stage_args
from polyarch.platforms import parse_platform

AMD, ARM = parse_platform("linux/amd64"), parse_platform("linux/arm64")


def test_global_defaults_use_other_args_and_platform_args() -> None:
    df = parse("""\
ARG REGISTRY=ghcr.io
ARG IMAGE=${REGISTRY}/team/base:1
ARG FLAVOR=${TARGETARCH}
FROM ${IMAGE} AS base
FROM scratch AS amd64
FROM scratch AS arm64
FROM ${FLAVOR} AS pick
FROM base
COPY --from=pick / /
""")
    for p, picked in ((AMD, 1), (ARM, 2)):
        g = build_graph(df, p)
        assert g.views[0].image == "ghcr.io/team/base:1"
        assert g.views[3].parent == picked
        assert g.reachable == {0, 3, 4, picked}


def test_modes_and_reachability_with_target() -> None:
    df = parse("""\
FROM --platform=$BUILDPLATFORM golang AS build
FROM --platform=linux/amd64 alpine AS pinned
FROM build AS child
FROM alpine AS test
RUN --mount=from=pinned,target=/p true
FROM scratch
COPY --from=child /x /x
""")
    g = build_graph(df, ARM)
    assert [v.kind for v in g.views] == ["build", "fixed", "build", "target", "target"]
    assert g.reachable == {0, 2, 4}
    assert build_graph(df, ARM, target="test").reachable == {1, 3}


def test_stage_args_are_inherited_by_stages_built_from_them() -> None:
    df = parse("""\
FROM alpine AS base
ARG TARGETPLATFORM
ARG VERSION=1.2
FROM base AS child
RUN echo $TARGETPLATFORM $VERSION
""")
    g = build_graph(df, ARM)
    env, declared = stage_args(df, g, 1)
    assert {"TARGETPLATFORM", "VERSION"} <= declared
    assert env["TARGETPLATFORM"] == "linux/arm64" and env["VERSION"] == "1.2"


def test_overridden_build_platform_is_not_the_build_mode() -> None:
    df = parse("ARG BUILDPLATFORM=linux/s390x\nFROM --platform=$BUILDPLATFORM alpine\n")
    v = build_graph(df, ARM).views[0]
    assert v.kind == "fixed" and v.pinned == "linux/s390x"
