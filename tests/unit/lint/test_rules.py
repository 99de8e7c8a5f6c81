"""polyarch lint: every rule on small Dockerfiles, the parser's structure, base-image
lookups with a stub."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from polyarch.lint import Finding, LookupFailed, build_graph, lint, parse
from polyarch.platforms import Platform, parse_platforms
from polyarch.refs import ImageRef

TWO = parse_platforms("linux/amd64,linux/arm64")
AMD64 = parse_platforms("linux/amd64")


def everywhere(ref: ImageRef) -> list[Platform]:
    """A lookup stub: every image has every platform we build for."""
    return list(parse_platforms("linux/amd64,linux/arm64,linux/arm/v7"))


def rules(findings: list[Finding]) -> list[tuple[str, int]]:
    return [(f.rule, f.line) for f in findings]


# ---------------------------------------------------------------------------
# Clean, real-world-looking multi-arch Dockerfiles: no finding at all.
# ---------------------------------------------------------------------------

CLEAN: dict[str, str] = {
    "go-cross-compile": """\
# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/root/.cache/go-build \\
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \\
    go build -trimpath -o /out/app ./cmd/app

FROM alpine:3.20
RUN apk add --no-cache ca-certificates tzdata
COPY --from=build /out/app /usr/local/bin/app
USER 65534
ENTRYPOINT ["/usr/local/bin/app"]
""",
    "node-service-with-builder": """\
FROM node:20-bookworm AS deps
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \\
    && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# bcrypt is a native module: it must be compiled for the target platform.
RUN npm ci --omit=dev

FROM --platform=$BUILDPLATFORM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
CMD ["node", "dist/server.js"]
""",
    "frontend-assets-on-build-platform": """\
FROM --platform=$BUILDPLATFORM node:20-alpine AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build

FROM nginx:1.27-alpine
COPY --from=assets /app/dist /usr/share/nginx/html
""",
    "download-with-case-on-targetarch": """\
FROM debian:12-slim
ARG TARGETARCH
ARG KUBECTL_VERSION=1.30.2
# Downloads for amd64 and arm64 below are chosen by TARGETARCH.
RUN set -eux; \\
    case "${TARGETARCH}" in \\
      amd64) arch=x86_64 ;; \\
      arm64) arch=aarch64 ;; \\
      *) echo "unsupported architecture: $TARGETARCH" >&2; exit 1 ;; \\
    esac; \\
    curl -fsSLo /usr/local/bin/kubectl \\
      "https://dl.k8s.io/release/v${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl"; \\
    curl -fsSL "https://github.com/example/tool/releases/download/v1.0/tool-linux-${arch}.tar.gz" \\
      | tar -xz -C /usr/local/bin; \\
    ARCH2=$(echo "$TARGETARCH" | sed -e s/amd64/x86_64/ -e s/arm64/aarch64/); \\
    echo "$ARCH2" > /etc/arch
""",
    "heredoc-with-if-on-targetarch": """\
# syntax=docker/dockerfile:1.7
FROM ubuntu:24.04
ARG TARGETARCH
RUN <<EOF
set -eux
if [ "$TARGETARCH" = "arm64" ]; then
  url=https://example.com/dl/tool-aarch64.tar.gz
else
  url=https://example.com/dl/tool-x86_64.tar.gz
fi
curl -fsSL "$url" | tar -xz -C /usr/local/bin
[ "$TARGETARCH" = amd64 ] && cp /opt/extra/amd64/helper /usr/local/bin/ || true
EOF
COPY <<-EOT /etc/motd
	built for every platform
EOT
""",
    "escape-backtick-directive": """\
# escape=`
FROM alpine:3.20
ARG TARGETARCH
RUN wget -O /usr/local/bin/tool `
      https://example.com/tool-linux-${TARGETARCH} && `
    chmod +x /usr/local/bin/tool
""",
    "rust-with-xx": """\
FROM --platform=$BUILDPLATFORM tonistiigi/xx:1.4.0 AS xx
FROM --platform=$BUILDPLATFORM rust:1.79-alpine AS build
COPY --from=xx / /
RUN apk add --no-cache clang lld
ARG TARGETPLATFORM
RUN xx-apk add --no-cache musl-dev gcc
WORKDIR /src
COPY . .
RUN xx-cargo build --release --target-dir /build && \\
    cp /build/$(xx-cargo --print-target-triple)/release/app /app && xx-verify /app

FROM alpine:3.20
COPY --from=build /app /usr/local/bin/app
ENTRYPOINT ["app"]
""",
    "c-cross-toolchain": """\
FROM --platform=$BUILDPLATFORM debian:12 AS build
ARG TARGETARCH
RUN apt-get update && apt-get install -y gcc make gcc-aarch64-linux-gnu gcc-x86-64-linux-gnu
WORKDIR /src
COPY . .
RUN case "$TARGETARCH" in \\
      amd64) CC=x86_64-linux-gnu-gcc ;; \\
      arm64) CC=aarch64-linux-gnu-gcc ;; \\
    esac; \\
    make CC=$CC

FROM scratch
COPY --from=build /src/hello /hello
ENTRYPOINT ["/hello"]
""",
    "stage-per-arch": """\
FROM alpine:3.20 AS base-amd64
ADD https://example.com/tool-linux-amd64.tar.gz /tmp/tool.tgz

FROM alpine:3.20 AS base-arm64
ADD https://example.com/tool-linux-arm64.tar.gz /tmp/tool.tgz

FROM base-${TARGETARCH}
RUN tar -xzf /tmp/tool.tgz -C /usr/local/bin && rm /tmp/tool.tgz
""",
    "dpkg-detected-arch": """\
FROM debian:12-slim
ENV GOSU_VERSION=1.17
RUN set -eux; \\
    dpkgArch="$(dpkg --print-architecture | awk -F- '{ print $NF }')"; \\
    curl -fsSLo /usr/local/bin/gosu \\
      "https://github.com/tianon/gosu/releases/download/$GOSU_VERSION/gosu-$dpkgArch"; \\
    chmod +x /usr/local/bin/gosu; \\
    ln -s /usr/lib/$(uname -m)-linux-gnu/libz.so.1 /usr/local/lib/libz.so.1
""",
    "node-tarball-mapped-from-dpkg-arch": """\
FROM debian:bookworm-slim
ENV NODE_VERSION=20.15.0
RUN ARCH= OPENSSL_ARCH= && dpkgArch="$(dpkg --print-architecture)" \
    && case "${dpkgArch##*-}" in \
      amd64) ARCH='x64' OPENSSL_ARCH='linux-x86_64';; \
      arm64) ARCH='arm64' OPENSSL_ARCH='linux-aarch64';; \
      armhf) ARCH='armv7l' OPENSSL_ARCH='linux-armv4';; \
      *) echo "unsupported architecture"; exit 1 ;; \
    esac \
    && curl -fsSLO "https://nodejs.org/dist/v$NODE_VERSION/node-v$NODE_VERSION-linux-$ARCH.tar.xz" \
    && tar -xJf "node-v$NODE_VERSION-linux-$ARCH.tar.xz" -C /usr/local --strip-components=1 \
    && rm "node-v$NODE_VERSION-linux-$ARCH.tar.xz"
CMD ["node"]
""",
    "python-binary-wheels": """\
FROM python:3.12-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
CMD ["python", "-m", "app"]
""",
    "hello-fixture": """\
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
RUN echo hello > /hello && uname -m > /built-on
CMD ["/bin/sh", "-c", "cat /hello /built-on"]
""",
    "php-fpm-base-and-node-builder": """\
ARG PHP_VERSION=8.3
FROM php:${PHP_VERSION}-fpm-bookworm AS base
RUN apt-get update && apt-get install -y --no-install-recommends nginx \\
    && rm -rf /var/lib/apt/lists/*
# Reading the machine's own architecture is right here: this stage runs on the target.
RUN echo "multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)" > /etc/php-arch

FROM node:20 AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build && npm prune --omit=dev

FROM base
COPY --from=assets /build/node_modules /var/www/node_modules
COPY --from=assets /build/public /var/www/public
""",
}


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_clean_dockerfiles_have_no_findings(name: str) -> None:
    findings = lint(CLEAN[name], platforms=TWO, platform_lookup=everywhere)
    assert findings == [], "\n".join(f"{f.line} {f.rule} {f.message}" for f in findings)


# ---------------------------------------------------------------------------
# One or more Dockerfiles per rule: (dockerfile, expected (rule, line) pairs).
# ---------------------------------------------------------------------------

BAD: dict[str, tuple[str, list[tuple[str, int]]]] = {
    "PA001 url on continuation line": ("""\
FROM debian:12-slim
RUN apt-get update && \\
    curl -fsSL https://go.dev/dl/go1.22.0.linux-amd64.tar.gz \\
    | tar -C /usr/local -xz
""", [("PA001", 3)]),
    "PA001 ADD download": ("""\
FROM alpine:3.20
ADD https://github.com/krallin/tini/releases/download/v0.19.0/tini-amd64 /tini
""", [("PA001", 2)]),
    "PA001 COPY of a per-arch file": ("""\
FROM alpine:3.20
COPY dist/app-linux-arm64 /usr/local/bin/app
""", [("PA001", 2)]),
    "PA001 ENV path": ("""\
FROM eclipse-temurin:21
ENV JAVA_HOME=/usr/lib/jvm/java-21-openjdk-amd64 \\
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
""", [("PA001", 2), ("PA001", 3)]),
    "PA001 ARG defaults": ("""\
ARG NODE_DIST=node-v20.11.1-linux-x64.tar.xz
FROM debian:12-slim
ARG PROTOC_ZIP=protoc-27.1-linux-aarch_64.zip TOOL_ARCH=arm64
ARG NODE_DIST
RUN curl -fsSLO https://nodejs.org/dist/v20.11.1/$NODE_DIST
""", [("PA001", 1), ("PA001", 3)]),
    "PA001 GOARCH set to a literal": ("""\
FROM golang:1.22 AS build
RUN CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -o /app .
FROM scratch
COPY --from=build /app /app
""", [("PA001", 2), ("PA003", 2)]),
    "PA001 dpkg guard": ("""\
FROM debian:12
RUN [ "$(dpkg --print-architecture)" = "amd64" ] || exit 1; \\
    apt-get install -y ./vendor.deb
""", [("PA001", 2)]),
    "PA001 in a heredoc script": ("""\
FROM ubuntu:24.04
RUN <<EOF
set -e
apt-get update
curl -fsSLo /tmp/x.deb https://example.com/pool/x_1.0_amd64.deb
dpkg -i /tmp/x.deb
EOF
""", [("PA001", 5)]),
    "PA001 escape directive": ("""\
# escape=`
FROM alpine:3.20
RUN wget -O /usr/local/bin/tool `
      https://example.com/tool-linux-amd64 && `
    chmod +x /usr/local/bin/tool
""", [("PA001", 4)]),
    "PA002 fixed platform for a helper stage": ("""\
FROM --platform=linux/amd64 alpine:3.20 AS fetch
RUN echo fetching
FROM alpine:3.20
COPY --from=fetch /etc/os-release /etc/fetched-os-release
""", [("PA002", 1)]),
    "PA002 fixed platform through an ARG default, final stage": ("""\
ARG PLATFORM=linux/arm64
FROM --platform=$PLATFORM alpine:3.20
RUN echo hi
""", [("PA002", 2)]),
    "PA003 go build under emulation": ("""\
FROM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN go build -o /out/app ./cmd/app
FROM gcr.io/distroless/static
COPY --from=build /out/app /app
""", [("PA003", 4)]),
    "PA003 cargo and make under emulation": ("""\
FROM rust:1.79 AS rs
RUN cargo build --release
FROM debian:12 AS c
RUN apt-get update && apt-get install -y build-essential
RUN ./configure --prefix=/usr && make -j"$(nproc)" && make install
FROM debian:12-slim
COPY --from=rs /target/release/app /usr/bin/app
COPY --from=c /usr/bin/tool /usr/bin/tool
""", [("PA003", 2), ("PA003", 5)]),
    "PA003 pip sdist under emulation": ("""\
FROM python:3.12
RUN pip install --no-binary :all: psycopg2==2.9.9
""", [("PA003", 2)]),
    "PA003 npm with native modules whose output is only assets": ("""\
FROM node:20-alpine AS web
RUN apk add --no-cache python3 make g++
WORKDIR /app
RUN npm ci && npm run build
FROM nginx:1.27
COPY --from=web /app/dist /usr/share/nginx/html
""", [("PA003", 4)]),
    "PA003 npm build under emulation whose output is only assets": ("""\
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build
FROM nginx:1.27
COPY --from=build /app/dist /usr/share/nginx/html
""", [("PA003", 4)]),
    "PA008 go build on BUILDPLATFORM without a target": ("""\
FROM --platform=$BUILDPLATFORM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN go build -o /out/app .
FROM alpine:3.20
COPY --from=build /out/app /usr/local/bin/app
""", [("PA008", 4)]),
    "PA002 image stage on BUILDPLATFORM with a native build": ("""\
FROM --platform=$BUILDPLATFORM rust:1.79
WORKDIR /src
COPY . .
RUN cargo build --release
""", [("PA002", 1)]),
    "PA008 npm native modules on BUILDPLATFORM copied into the image": ("""\
FROM --platform=$BUILDPLATFORM node:20 AS deps
WORKDIR /app
COPY package*.json ./
RUN npm ci --omit=dev && npm install bcrypt
FROM node:20-slim
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
""", [("PA008", 4)]),
    "PA008 download picked by uname on BUILDPLATFORM, copied into the image": ("""\
FROM --platform=$BUILDPLATFORM alpine:3.20 AS fetch
RUN wget -O /tool "https://example.com/tool-$(uname -m)"
FROM alpine:3.20
COPY --from=fetch /tool /tool
""", [("PA007", 2), ("PA008", 2)]),
    "PA009 default on TARGETARCH in a stage": ("""\
FROM alpine:3.20
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ADD https://example.com/tool_${TARGETOS}_${TARGETARCH}.zip /tmp/tool.zip
""", [("PA009", 3)]),
    "PA009 global BUILDPLATFORM default": ("""\
ARG BUILDPLATFORM=linux/amd64
FROM --platform=$BUILDPLATFORM golang:1.22 AS build
ARG TARGETOS TARGETARCH
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /app .
FROM scratch
COPY --from=build /app /app
""", [("PA009", 1)]),
    "PA010 builder never used, its npm pack output copied from the context": ("""\
FROM node:20-slim AS builder
WORKDIR /build
COPY . .
RUN npm ci && npm run build && \\
    npm pack -w packages/cli --pack-destination packages/cli/dist/
FROM node:20-slim
COPY packages/cli/dist/cli-*.tgz /tmp/cli.tgz
RUN npm install -g /tmp/cli.tgz
""", [("PA010", 7)]),
    "PA004 TARGETARCH not declared in the stage": ("""\
ARG TARGETARCH
FROM --platform=$BUILDPLATFORM alpine:3.20 AS fetch
RUN wget -O /tool https://example.com/tool-${TARGETARCH}
FROM alpine:3.20
COPY --from=fetch /tool /tool
""", [("PA004", 3)]),
    "PA004 used before the stage declares it; a parent's declaration counts": ("""\
FROM alpine:3.20 AS base
ARG TARGETPLATFORM
RUN echo "$TARGETPLATFORM" > /platform
FROM base
RUN echo "$TARGETPLATFORM"
COPY bin/${TARGETOS}/app /app
ARG TARGETOS
RUN echo "$TARGETOS $TARGETVARIANT"
""", [("PA004", 6), ("PA004", 8)]),
    "PA000 syntax problems": ("""\
RUN echo before from
FROM alpine:3.20
RUN <<EOF
echo never closed
""", [("PA000", 1), ("PA000", 3)]),
    "PA007 detection on BUILDPLATFORM": ("""\
FROM --platform=$BUILDPLATFORM alpine:3.20 AS gen
RUN echo "generated on $(uname -m)" > /notes.txt && protoc --version
FROM alpine:3.20
COPY --from=gen /notes.txt /notes.txt
""", [("PA007", 2)]),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_rule_triggers(name: str) -> None:
    text, expected = BAD[name]
    findings = lint(text, platforms=TWO, platform_lookup=everywhere)
    assert rules(findings) == expected, "\n".join(
        f"{f.line} {f.rule} {f.severity} {f.message}" for f in findings)
    for f in findings:
        assert f.message and f.hint
        assert f.severity in ("error", "warning", "info", "note")


def test_every_rule_has_a_trigger_in_the_table() -> None:
    seen = {rule for _, exp in BAD.values() for rule, _ in exp}
    assert {"PA000", "PA001", "PA002", "PA003", "PA004", "PA007", "PA008", "PA009",
            "PA010"} <= seen
    # PA005/PA006 need a lookup: tested below.


def one(text: str, rule: str, **kw: Any) -> Finding:
    found = [f for f in lint(text, **({"platforms": TWO} | kw)) if f.rule == rule]
    assert len(found) == 1, found
    return found[0]


# -- details per rule --------------------------------------------------------


def test_hardcoded_arch_is_fine_when_only_that_arch_is_built() -> None:
    text = BAD["PA001 ADD download"][0]
    assert lint(text, platforms=AMD64) == []
    f = one(text, "PA001")
    assert "linux/arm64" in f.message and "TARGETARCH" in f.hint
    assert f.severity == "error"


def test_single_platform_runs_do_not_report_a_default_for_that_platform() -> None:
    text = "FROM busybox\nARG ARCH=amd64\nARG TARGETARCH=amd64\nCOPY bin/linux-${ARCH}/app /app\n"
    assert lint(text, platforms=AMD64) == []
    assert sorted(f.rule for f in lint(text, platforms=TWO)) == ["PA001", "PA009"]


def test_arch_words_that_are_not_paths_are_not_flagged() -> None:
    text = """\
FROM --platform=$BUILDPLATFORM debian:12 AS build
ARG TARGETARCH
RUN dpkg --add-architecture arm64 && apt-get install -y crossbuild-essential-arm64 \\
    libc6-dev-arm64-cross && echo "building for amd64 and arm64"
FROM debian:12
"""
    assert lint(text, platforms=TWO) == []


def test_fixed_platform_severity_depends_on_the_final_image() -> None:
    helper = one(BAD["PA002 fixed platform for a helper stage"][0], "PA002")
    assert helper.severity == "warning" and helper.stage == "fetch"
    final = one(BAD["PA002 fixed platform through an ARG default, final stage"][0], "PA002")
    assert final.severity == "error"
    assert "linux/arm64" in final.message and "ARG" in final.message
    assert lint("FROM --platform=${TARGETPLATFORM} alpine:3.20\nRUN true\n", platforms=TWO) == []
    # The image itself on the build machine's platform: every variant is its base image.
    for build in ("$BUILDPLATFORM", "$BUILDOS/$BUILDARCH"):
        (f,) = lint(f"FROM --platform={build} alpine:3.20\nRUN true\n", platforms=TWO)
        assert (f.rule, f.severity, f.line) == ("PA002", "error", 1)
        assert "build machine" in f.message and "linux/arm64" in f.message
    # ... unless it is scratch holding only architecture-independent files.
    assets = ("FROM --platform=$BUILDPLATFORM node:20 AS web\nRUN npm ci && npm run build\n"
              "FROM --platform=$BUILDPLATFORM scratch\nCOPY --from=web /src/dist /www\n")
    assert [f.rule for f in lint(assets, platforms=TWO) if f.severity != "note"] == []
    binary = assets.replace("/src/dist /www", "/src/server /server")
    assert "PA002" in {f.rule for f in lint(binary, platforms=TWO)}
    # Pinned to the one platform being built: nothing wrong.
    assert lint("FROM --platform=linux/amd64 alpine\n", platforms=AMD64) == []


def test_emulated_build_messages_say_which_stage_and_whether_safe() -> None:
    go = one(BAD["PA003 go build under emulation"][0], "PA003")
    assert go.severity == "warning" and go.stage == "build"
    assert "emulation" in go.message and "safe to move" in go.message
    assert "GOARCH=$TARGETARCH" in go.hint
    cgo = one("FROM golang:1.22 AS b\nRUN CGO_ENABLED=1 go build -o /app .\n"
              "FROM scratch\nCOPY --from=b /app /app\n", "PA003")
    assert "cgo" in cgo.message
    pip = one(BAD["PA003 pip sdist under emulation"][0], "PA003")
    assert "not safe" in pip.message
    npm = one(BAD["PA003 npm with native modules whose output is only assets"][0], "PA003")
    assert "/app/dist" in npm.message and "safe to move" in npm.message
    wrong = one(BAD["PA008 go build on BUILDPLATFORM without a target"][0], "PA008")
    assert wrong.severity == "error" and "build machine" in wrong.message
    native = one(BAD["PA008 npm native modules on BUILDPLATFORM copied into the image"][0],
                 "PA008")
    assert native.severity == "error" and "node_modules" in native.message


def test_emulation_findings_need_more_than_one_platform() -> None:
    text = BAD["PA003 go build under emulation"][0]
    assert lint(text, platforms=AMD64) == []


def test_npm_install_in_the_final_image_stays_on_the_target() -> None:
    text = """\
FROM node:20-slim
WORKDIR /app
COPY package*.json ./
RUN npm ci --omit=dev
COPY . .
CMD ["node", "index.js"]
"""
    assert lint(text, platforms=TWO) == []


def test_undeclared_arg_details() -> None:
    f = one(BAD["PA004 TARGETARCH not declared in the stage"][0], "PA004")
    assert f.severity == "error"
    assert "global `ARG TARGETARCH` only reaches FROM lines" in f.message
    assert "ARG TARGETARCH" in f.hint
    # An ENV of the same name, a shell assignment, or an escaped $ are not uses of the ARG.
    text = """\
FROM alpine AS a
ENV TARGETARCH=amd64
FROM a
RUN echo $TARGETARCH
FROM alpine
RUN TARGETOS=linux; echo "$TARGETOS \\$BUILDPLATFORM"
"""
    assert [f.rule for f in lint(text, platforms=TWO)] == []


def test_findings_carry_path_and_are_sorted() -> None:
    text = BAD["PA003 cargo and make under emulation"][0]
    findings = lint(text, path="svc/Dockerfile", platforms=TWO)
    assert [f.line for f in findings] == sorted(f.line for f in findings)
    assert {f.path for f in findings} == {"svc/Dockerfile"}
    doc = findings[0].to_json()
    assert set(doc) == {"rule", "name", "severity", "path", "line", "stage", "message", "hint"}
    assert doc["name"] == "emulated-build"


# -- PA005 / PA006 with a lookup stub ----------------------------------------

BASES = """\
ARG ALPINE=alpine:3.20
ARG UNSET
FROM --platform=$BUILDPLATFORM golang:1.22 AS build
RUN echo build tools only
FROM ${ALPINE} AS one
FROM one AS two
FROM example.com/team/one-platform:1 AS three
COPY --from=busybox:1.36 /bin/busybox /bin/busybox
FROM scratch AS four
FROM ${UNSET} AS final
COPY --from=build /etc/hostname /x
COPY --from=two /etc/os-release /a
COPY --from=three /bin/busybox /b
FROM example.com/team/never-built:1 AS unused
"""


def recording(table: dict[str, list[Platform] | None | Exception]
              ) -> tuple[Callable[[ImageRef], list[Platform] | None], list[str]]:
    asked: list[str] = []

    def lookup(ref: ImageRef) -> list[Platform] | None:
        asked.append(str(ref))
        got = table[str(ref)]
        if isinstance(got, Exception):
            raise got
        return got

    return lookup, asked


def test_base_image_platforms_with_a_lookup() -> None:
    lookup, asked = recording({
        "docker.io/library/alpine:3.20": list(TWO),
        "example.com/team/one-platform:1": list(AMD64),
        "docker.io/library/busybox:1.36": None,
    })
    findings = lint(BASES, platforms=TWO, platform_lookup=lookup, target="final")
    got = [(f.rule, f.line, f.severity) for f in findings]
    assert got == [
        ("PA005", 7, "error"),
        ("PA006", 8, "note"),
        ("PA006", 10, "note"),
    ]
    assert "linux/arm64" in findings[0].message and "linux/amd64" in findings[0].message
    assert "UNSET" in findings[2].message
    # Stages, scratch, $BUILDPLATFORM stages and stages the target never builds are not
    # looked up; each image only once.
    assert sorted(asked) == sorted({"docker.io/library/alpine:3.20",
                                    "example.com/team/one-platform:1",
                                    "docker.io/library/busybox:1.36"})


@pytest.mark.parametrize("failure", [LookupFailed("no credentials for example.com"),
                                     RuntimeError("connection refused")])
def test_lookup_failures_are_notes(failure: Exception) -> None:
    lookup, _ = recording({"example.com/app/base:2": failure})
    findings = lint("FROM example.com/app/base:2\n", platforms=TWO, platform_lookup=lookup)
    assert [(f.rule, f.severity) for f in findings] == [("PA006", "note")]
    assert str(failure) in findings[0].message


def test_variant_defaults_match() -> None:
    lookup, _ = recording({"example.com/a:1": [Platform("linux", "amd64"),
                                                Platform("linux", "arm64", "v8")]})
    assert lint("FROM example.com/a:1\n", platforms=TWO, platform_lookup=lookup) == []


def test_per_platform_base_names_are_expanded() -> None:
    # FROM base-${TARGETARCH}: each image is pulled only for its own platform.
    lookup, asked = recording({"example.com/base-amd64:1": list(AMD64),
                               "example.com/base-arm64:1": [Platform("linux", "arm64")]})
    assert lint("FROM example.com/base-${TARGETARCH}:1\n", platforms=TWO,
                platform_lookup=lookup) == []
    assert sorted(asked) == ["example.com/base-amd64:1", "example.com/base-arm64:1"]
    lookup, _ = recording({"example.com/base-amd64:1": [Platform("linux", "arm64")],
                           "example.com/base-arm64:1": [Platform("linux", "arm64")]})
    findings = lint("FROM example.com/base-${TARGETARCH}:1\n", platforms=TWO,
                    platform_lookup=lookup)
    assert [(f.rule, f.severity) for f in findings] == [("PA005", "error")]
    assert "base-amd64" in findings[0].message


# -- parser ------------------------------------------------------------------


def test_parser_reads_directives_stages_continuations_and_heredocs() -> None:
    text = """\
# syntax=docker/dockerfile:1
# escape=\\
ARG BASE=alpine:3.20
ARG TARGETPLATFORM

# a comment
FROM --platform=$BUILDPLATFORM ${BASE} AS Build
RUN echo a \\
# a comment inside a continuation is dropped

    && echo b
COPY <<EOF <<-"EOT" /etc/
hello $HOME
EOF
\tliteral
\tEOT
CMD ["sh", "-c", "echo hi"]
FROM build
RUN ["echo", "exec form"]
"""
    df = parse(text)
    assert df.directives == {"syntax": "docker/dockerfile:1", "escape": "\\"}
    assert [(a.name, a.default) for a in df.global_args] == [("BASE", "alpine:3.20"),
                                                            ("TARGETPLATFORM", None)]
    s0, s1 = df.stages
    assert (s0.name, s0.image, s0.platform) == ("build", "${BASE}", "$BUILDPLATFORM")
    g = build_graph(df, TWO[1])
    assert g.views[0].kind == "build" and g.views[0].image == "alpine:3.20"
    assert (g.views[1].parent, g.views[1].kind) == (0, "build")
    assert g.reachable == {0, 1}
    run, copy, cmd = s0.instructions
    assert (run.keyword, run.line, run.end_line) == ("RUN", 8, 11)
    assert run.args.value == "echo a     && echo b"
    assert run.args.line_at(run.args.value.index("&&")) == 11
    assert [(h.name, h.quoted, h.strip_tabs) for h in copy.heredocs] == [
        ("EOF", False, False), ("EOT", True, True)]
    assert copy.heredocs[0].body.value == "hello $HOME"
    assert copy.heredocs[1].body.value == "literal"
    assert copy.heredocs[1].body.line_at(0) == 15
    assert (copy.line, copy.end_line) == (12, 16)
    assert cmd.json_args == ["sh", "-c", "echo hi"] and cmd.line == 17
    assert s1.instructions[0].json_args == ["echo", "exec form"]


def test_parser_reports_structural_problems() -> None:
    assert [f.rule for f in lint("# only a comment\n")] == ["PA000"]
    df = parse("FROM alpine AS a extra\nFOO bar\n")
    assert len(df.problems) == 2


