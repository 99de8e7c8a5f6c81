"""--fix: which stages are rewritten, and how (the engine tests prove the results)."""

from __future__ import annotations

from polyarch.lint import fix, parse
from polyarch.lint.context import LintContext
from polyarch.platforms import parse_platforms

TWO = parse_platforms("linux/amd64,linux/arm64")


def rewrite(text: str, platforms: str = "linux/amd64,linux/arm64") -> tuple[list[str], str]:
    df = parse(text)
    fixes = fix.rewrites(LintContext(df, "Dockerfile", parse_platforms(platforms)))
    return [f.kind for f in fixes], "\n".join(fix.apply(df.lines, fixes))


GO = """\
FROM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN go mod download
RUN CGO_ENABLED=0 go build -trimpath -o /out/app ./cmd/app
FROM gcr.io/distroless/static
COPY --from=build /out/app /app
"""


def test_go_build_is_cross_compiled_on_the_build_platform() -> None:
    kinds, after = rewrite(GO)
    assert kinds == ["go-cross"]
    assert after.splitlines()[:2] == ["FROM --platform=$BUILDPLATFORM golang:1.22 AS build",
                                      "ARG TARGETOS TARGETARCH"]
    assert ("RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -o "
            "/out/app ./cmd/app") in after
    # Applying twice changes nothing more: the stage is on $BUILDPLATFORM now.
    assert rewrite(after)[0] == []


def test_go_rewrites_refused_when_not_provably_safe() -> None:
    cgo = GO.replace("CGO_ENABLED=0", "CGO_ENABLED=1")
    runs_it = GO.replace("./cmd/app\n", "./cmd/app && /out/app --version\n")
    no_o = GO.replace("-o /out/app ", "")
    more_out = GO + "COPY --from=build /src/config.yaml /etc/app.yaml\n"
    c_pkgs = GO.replace("RUN go mod download", "RUN apt-get install -y gcc && go mod download")
    final = "FROM golang:1.22\nRUN go build -o /app .\n"
    one_platform = GO
    for text in (cgo, runs_it, no_o, more_out, c_pkgs, final):
        assert rewrite(text)[0] == [], text
    assert rewrite(one_platform, "linux/amd64")[0] == []


def test_npm_install_without_scripts_gets_the_target_platform() -> None:
    text = """\
FROM node:20-alpine AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --omit=dev
FROM node:20-alpine
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
"""
    kinds, after = rewrite(text)
    assert kinds == ["npm-target"]
    assert "RUN npm ci --ignore-scripts --os=$TARGETOS --cpu=$(case" in after
    assert "--libc=musl --omit=dev" in after
    assert rewrite(text.replace(" --ignore-scripts", ""))[0] == []


def test_assets_stage_moves_and_others_stay() -> None:
    text = """\
FROM node:20 AS web
WORKDIR /app
RUN npm ci && npm run build
FROM node:20 AS api
WORKDIR /srv
RUN npm ci --omit=dev
FROM node:20-slim
COPY --from=web /app/dist /srv/public
COPY --from=api /srv /srv
"""
    kinds, after = rewrite(text)
    assert kinds == ["assets"]
    assert "FROM --platform=$BUILDPLATFORM node:20 AS web" in after
    assert "FROM node:20 AS api" in after


def test_diff_is_unified() -> None:
    df = parse(GO)
    fixes = fix.rewrites(LintContext(df, "svc/Dockerfile", TWO))
    d = fix.diff("svc/Dockerfile", df.lines, fixes)
    assert d.startswith("--- a/svc/Dockerfile\n+++ b/svc/Dockerfile\n@@")
    assert "+ARG TARGETOS TARGETARCH\n" in d
