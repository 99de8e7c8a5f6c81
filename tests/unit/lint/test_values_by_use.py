"""Values judged by what they are and where they are used: a global ARG naming one
architecture used only in that architecture's branch, a platform taken from a plain
build argument, a toolchain named by its host triple, .NET builds under emulation."""

from __future__ import annotations

from polyarch.lint import lint
from polyarch.platforms import parse_platforms

TWO = parse_platforms("linux/amd64,linux/arm64")


def found(text: str, rule: str) -> list[tuple[str, int]]:
    return [(f.severity, f.line) for f in lint(text, platforms=TWO)
            if f.rule == rule and f.severity in ("error", "warning")]


GLOBAL = """\
ARG PKG=libgpu_1.9-1_arm64.deb
ARG PACKAGE_ARCH
FROM debian:bookworm-slim
ARG PKG
ARG PACKAGE_ARCH
RUN {run}
"""


def test_global_arch_default_used_only_in_its_own_architectures_branch_is_not_reported() -> None:
    inside = 'if [ "$PACKAGE_ARCH" = arm64 ]; then curl -LO https://x/$PKG; fi'
    assert found(GLOBAL.format(run=inside), "PA001") == []
    case = 'case "$PACKAGE_ARCH" in aarch64|arm64) curl -LO https://x/${PKG} ;; esac'
    assert found(GLOBAL.format(run=case), "PA001") == []


def test_global_arch_default_used_outside_its_branch_is_reported() -> None:
    for run in ("curl -LO https://x/$PKG",
                'if [ "$PACKAGE_ARCH" = amd64 ]; then curl -LO https://x/$PKG; fi',
                'if [ "$PACKAGE_ARCH" = arm64 ]; then true; else curl -LO https://x/$PKG; fi'):
        assert found(GLOBAL.format(run=run), "PA001") == [("error", 1)], run
    # Used in a FROM line: every target's stage gets it (and the base tag is reported).
    base = "ARG TAG=3.20-arm64\nFROM example/alpine:${TAG}\nRUN true\n"
    assert found(base, "PA001") == [("error", 1), ("error", 2)]


def test_platform_from_a_plain_build_argument_is_pinned() -> None:
    image = "ARG TARGET_ARCH\nFROM --platform=linux/${TARGET_ARCH} debian:bookworm-slim\nRUN true\n"
    [f] = [f for f in lint(image, platforms=TWO) if f.rule == "PA002"]
    assert (f.severity, f.line) == ("error", 2) and "TARGET_ARCH" in f.message
    helper = ("ARG P\nFROM --platform=$P golang:1.22 AS tools\nRUN go build -o /t ./tool\n"
              "FROM alpine\nCOPY --from=tools /t /t\n")
    assert found(helper, "PA002") == [("warning", 2)]


def test_platform_from_the_target_or_a_value_following_it_is_not_pinned() -> None:
    for text in ("FROM --platform=$TARGETPLATFORM alpine\nRUN true\n",
                 "ARG P=$TARGETPLATFORM\nFROM --platform=$P alpine\nRUN true\n",
                 "ARG P=linux/amd64\nFROM --platform=$BUILDPLATFORM alpine AS b\nRUN true\n"
                 "FROM scratch\nCOPY --from=b /etc/ssl /etc/ssl\n"):
        assert found(text, "PA002") == [], text


def test_toolchain_named_by_a_linux_host_triple_is_an_architecture_setting() -> None:
    def pa001(run: str) -> list[tuple[str, int]]:
        return found(f"FROM ubuntu:24.04\nARG N\nRUN {run}\n", "PA001")
    assert pa001("rustup component add rust-src --toolchain ${N}-x86_64-unknown-linux-gnu") \
        == [("error", 3)]
    assert pa001("rustup toolchain install stable-aarch64-unknown-linux-gnu") == [("error", 3)]
    assert pa001("cargo +nightly-x86_64-unknown-linux-gnu build") == [("error", 3)]
    # No triple, another OS's triple, or the target's own: no setting of one architecture.
    assert pa001("rustup component add rust-src --toolchain ${N}") == []
    assert pa001("rustup toolchain install stable-x86_64-pc-windows-msvc") == []
    assert pa001("rustup target add x86_64-pc-windows-msvc aarch64-pc-windows-msvc && "
                 "rustup component add clippy --toolchain ${N}-x86_64-unknown-linux-gnu") \
        == [("error", 3)]


def test_dotnet_publish_on_the_target_platform_is_an_emulated_build() -> None:
    builder = ("FROM mcr.microsoft.com/dotnet/sdk:8.0 AS build\nCOPY . .\n"
               "RUN dotnet publish -c Release -o /out\n"
               "FROM mcr.microsoft.com/dotnet/aspnet:8.0\nCOPY --from=build /out /app\n")
    assert found(builder, "PA003") == [("warning", 3)]
    native = builder.replace("AS build", "AS build\nARG TARGETARCH").replace(
        "FROM mcr.microsoft.com/dotnet/sdk", "FROM --platform=$BUILDPLATFORM "
        "mcr.microsoft.com/dotnet/sdk").replace("-o /out", "-a $TARGETARCH -o /out")
    assert found(native, "PA003") == [] and found(native, "PA008") == []
    image = "FROM mcr.microsoft.com/dotnet/sdk:8.0\nCOPY . .\nRUN dotnet build\n"
    assert found(image, "PA003") == []  # the image stage itself: info only
