"""--fix: which stages are rewritten, and how (the engine tests prove the results)."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

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
    final = "FROM golang:1.22\nRUN go build -o /app .\n"
    one_platform = GO
    for text in (cgo, runs_it, no_o, more_out, final):
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


@pytest.mark.parametrize(("change", "why"), [
    ("RUN npm ci && npm run build && npx pkg . --out-path dist", "`pkg` makes executables"),
    ("RUN npm ci && npm run build && uname -m > dist/arch", "`uname` reports"),
])
def test_assets_refused_when_the_output_may_be_the_machines(change: str, why: str) -> None:
    text = "FROM node:20 AS web\nWORKDIR /app\n" + change + \
        "\nFROM nginx:1.27\nCOPY --from=web /app/dist /srv\n"
    assert rewrite(text)[0] == []
    assert any(why in r for r in refusals(text)), refusals(text)
    native = "FROM node:20 AS web\nWORKDIR /app\nRUN npm ci && npm run build\n" \
        "FROM node:20-slim\nCOPY --from=web /app/build/Release/addon.node /srv/\n"
    assert rewrite(native)[0] == []
    assert refusals(native) == ["assets: /app/build/Release/addon.node is compiled for the "
                                "machine that builds it"]


def test_diff_is_unified() -> None:
    df = parse(GO)
    fixes = fix.rewrites(LintContext(df, "svc/Dockerfile", TWO))
    d = fix.diff("svc/Dockerfile", df.lines, fixes)
    assert d.startswith("--- a/svc/Dockerfile\n+++ b/svc/Dockerfile\n@@")
    assert "+ARG TARGETOS TARGETARCH\n" in d


def refusals(text: str, platforms: str = "linux/amd64,linux/arm64") -> list[str]:
    df = parse(text)
    return [f"{r.kind}: {r.reason}" for r in
            fix.plan(LintContext(df, "Dockerfile", parse_platforms(platforms)))[1]]


# -- go-cross: what it cannot prove, it does not rewrite ------------------------------

NO_CGO_FLAG = GO.replace("CGO_ENABLED=0 ", "")


@pytest.mark.parametrize(("text", "why"), [
    # Debian's golang image has gcc: natively cgo is on, cross it is off.
    (NO_CGO_FLAG, "without CGO_ENABLED=0"),
    (NO_CGO_FLAG.replace("golang:1.22", "golang:1.22-alpine").replace(
        "RUN go mod download", "RUN apk add gcc musl-dev && go mod download"),
     "without CGO_ENABLED=0"),
    (NO_CGO_FLAG.replace("golang:1.22", "golang:1.19-alpine"), "without CGO_ENABLED=0"),
    (GO.replace("./cmd/app", "-ldflags \"-X main.arch=$(uname -m)\" ./cmd/app"), "uname"),
    (GO.replace("./cmd/app", "-ldflags \"-X main.v=$(go env GOARCH)\" ./cmd/app"),
     "build machine's platform"),
    (GO.replace("RUN go mod download", "RUN ./scripts/gen.sh"), "gen.sh` runs"),
    (GO.replace("RUN CGO_ENABLED=0 go build", "RUN CGO_ENABLED=0 exec go build"),
     "another command"),
    (GO.replace("RUN CGO_ENABLED=0 go build -trimpath -o /out/app ./cmd/app",
                'RUN ["go", "build", "-o", "/out/app", "./cmd/app"]'), "exec form"),
    (GO.replace("RUN go mod download", "RUN go install ./cmd/tool"), "go install"),
    (GO.replace("RUN go mod download", "RUN go generate ./..."), "go generate"),
    (GO.replace("RUN CGO_ENABLED=0 go build", "RUN CGO_ENABLED=0 GOARCH=arm go build"),
     "GOARCH=arm is fixed"),
    (GO.replace("RUN go mod download", "ARG TARGETARCH=amd64"), "TARGETARCH=amd64"),
    (GO.replace("-o /out/app", "-o bin/app").replace("RUN CGO_ENABLED",
                                                     "RUN cd cmd && CGO_ENABLED"), "after `cd`"),
    (GO + "FROM build AS test\nRUN go test ./...\nFROM gcr.io/distroless/static\n"
          "COPY --from=build /out/app /app\nCOPY --from=test /src/go.mod /x\n", "built FROM"),
    (GO.replace("-o /out/app", "-o /out/$NAME"), "computed at build time"),
])
def test_go_cross_refuses_with_the_reason(text: str, why: str) -> None:
    assert rewrite(text)[0] == [], text
    assert any(why in r for r in refusals(text)), refusals(text)


def test_go_cross_refuses_targets_whose_native_build_picks_settings() -> None:
    # linux/arm/v6 natively gets GOARM=6 from the image's Go, cross-compiled the default 7.
    assert rewrite(GO, "linux/amd64,linux/arm/v6")[0] == []
    assert any("GOARM" in r for r in refusals(GO, "linux/amd64,linux/arm/v6"))
    assert rewrite(GO, "linux/amd64,linux/arm64,linux/s390x")[0] == ["go-cross"]


def test_go_cross_takes_cgo_off_from_env_or_a_compilerless_alpine_go() -> None:
    env = NO_CGO_FLAG.replace("WORKDIR /src", "WORKDIR /src\nENV CGO_ENABLED=0")
    assert rewrite(env)[0] == ["go-cross"]
    alpine = NO_CGO_FLAG.replace("golang:1.22", "golang:1.22-alpine3.20")
    assert rewrite(alpine)[0] == ["go-cross"]
    # CGO_ENABLED=0 makes an installed C compiler irrelevant.
    gcc = GO.replace("RUN go mod download", "RUN apt-get install -y gcc && go mod download")
    assert rewrite(gcc)[0] == ["go-cross"]


def test_go_cross_prefixes_every_go_build_of_a_line() -> None:
    two = GO.replace("RUN CGO_ENABLED=0 go build -trimpath -o /out/app ./cmd/app",
                     "RUN CGO_ENABLED=0 go build -o /out/a ./a && CGO_ENABLED=0 go build "
                     "-o /out/b ./b").replace("COPY --from=build /out/app /app",
                                              "COPY --from=build /out/a /out/b /bin/")
    kinds, after = rewrite(two)
    assert kinds == ["go-cross"]
    assert ("RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/a ./a && "
            "CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/b ./b") in after
    echo = two.replace("RUN CGO_ENABLED=0 go build -o /out/a", "RUN echo go build && "
                       "CGO_ENABLED=0 go build -o /out/a")
    assert rewrite(echo)[0] == []


def test_go_cross_keeps_target_settings_and_adds_only_what_is_missing() -> None:
    text = """\
FROM golang:1.17.1 as builder
WORKDIR /app
COPY . .
ARG TARGETOS
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -o main .
FROM alpine:3.14.0
COPY --from=0 /app/main /app/main
"""
    kinds, after = rewrite(text)
    assert kinds == ["go-cross"]
    assert after.splitlines() == ["FROM --platform=$BUILDPLATFORM golang:1.17.1 as builder",
                                  *text.splitlines()[1:]]
    linux = GO.replace("CGO_ENABLED=0 go build", "CGO_ENABLED=0 GOOS=linux go build")
    kinds, after = rewrite(linux)
    assert "ARG TARGETARCH" in after.splitlines() and "ARG TARGETOS TARGETARCH" not in after
    assert "GOOS=linux GOARCH=$TARGETARCH go build" in after


def test_go_build_of_files_writes_the_first_files_name() -> None:
    text = GO.replace("-trimpath -o /out/app ./cmd/app", "main.go util.go").replace(
        "COPY --from=build /out/app /app", "COPY --from=build /src/main /app")
    assert rewrite(text)[0] == ["go-cross"]
    other = text.replace("COPY --from=build /src/main /app", "COPY --from=build /src/util /app")
    assert rewrite(other)[0] == []


# -- the image stage's platform ---------------------------------------------------------

def test_image_on_buildplatform_is_moved_to_the_target() -> None:
    text = """\
FROM --platform=$BUILDPLATFORM golang:1.22
ARG TARGETARCH
COPY . /app
RUN cd /app && GOOS=linux GOARCH=$TARGETARCH go build -o /usr/local/bin/svc .
CMD ["/usr/local/bin/svc"]
"""
    kinds, after = rewrite(text)
    assert kinds == ["image-on-target"]
    assert after.splitlines()[0] == "FROM golang:1.22"
    assert after.splitlines()[1:] == text.splitlines()[1:]
    for bad, why in ((text.replace("$TARGETARCH go", "amd64 go"), "names an architecture"),
                     (text.replace("GOARCH=$TARGETARCH", "GOARCH=$BUILDARCH"), "$BUILD"),
                     ("FROM --platform=$BUILDPLATFORM scratch\nCOPY dist/ /www/\n", "scratch")):
        assert rewrite(bad)[0] == [], bad
        assert any(why in r for r in refusals(bad)), refusals(bad)


PINNED_SITE = """\
FROM --platform=linux/amd64 nginx:alpine
COPY nginx.conf /etc/nginx/conf.d/default.conf
COPY ./build /usr/share/nginx/html
EXPOSE 8001
CMD ["nginx", "-g", "daemon off;"]
"""


def test_pinned_image_that_adds_only_assets_is_unpinned() -> None:
    kinds, after = rewrite(PINNED_SITE)
    assert kinds == ["unpin-image"]
    assert after.splitlines() == ["FROM nginx:alpine", *PINNED_SITE.splitlines()[1:]]
    # Every target of the pinned architecture: nothing to fix.
    assert rewrite(PINNED_SITE, "linux/amd64")[0] == []


@pytest.mark.parametrize(("line", "why"), [
    ("RUN apk add curl", "RUN in a pinned image"),
    ("COPY bin/server /usr/local/bin/server", "may be a binary"),
    ("ADD https://example.com/tool.tar.gz /opt/", "URL"),
    ("COPY --from=docker.io/library/busybox /bin/busybox /bin/", "does not make per target"),
])
def test_pinned_image_keeps_its_pin_when_something_may_be_that_platforms(
        line: str, why: str) -> None:
    text = PINNED_SITE.replace("EXPOSE 8001", line)
    assert rewrite(text)[0] == [], text
    assert any(why in r for r in refusals(text)), refusals(text)


WEBHOOK = """\
FROM --platform=linux/x86_64 golang:1.20 AS builder
WORKDIR /go/src/go-app
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build main.go
FROM --platform=linux/x86_64 alpine:latest
COPY --from=builder /go/src/go-app/main ./
"""


def test_pinned_image_and_its_pinned_go_builder_move_together() -> None:
    kinds, after = rewrite(WEBHOOK)
    assert kinds == ["unpin-image"]
    assert after.splitlines() == [
        "FROM --platform=$BUILDPLATFORM golang:1.20 AS builder", "ARG TARGETARCH",
        "WORKDIR /go/src/go-app", "COPY . .",
        "RUN CGO_ENABLED=0 GOOS=linux GOARCH=$TARGETARCH go build main.go",
        "FROM alpine:latest", "COPY --from=builder /go/src/go-app/main ./"]
    # A builder that cannot be moved keeps both pins.
    cgo = WEBHOOK.replace("CGO_ENABLED=0 ", "")
    assert rewrite(cgo)[0] == []
    assert any("CGO_ENABLED" in r for r in refusals(cgo))


def test_a_rewrite_that_would_add_an_error_is_dropped() -> None:
    # Pinned to amd64, the amd64 path is consistent; unpinned, the arm64 variant would
    # name it too (PA001). Only linting the rewritten file sees that.
    text = PINNED_SITE.replace("EXPOSE 8001", "ENV TOOL=/opt/tool-linux-amd64")
    assert rewrite(text)[0] == []
    assert refusals(text) == ["unpin-image: the rewritten file would have a new error (PA001)"]


# -- the reduced real cases (tests/data/lint_fix) ---------------------------------------

CASES = Path(__file__).resolve().parents[2] / "data" / "lint_fix"


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_fix_makes_the_reviewed_file_and_changes_only_its_lines(case: str) -> None:
    original = (CASES / case / "Dockerfile").read_text()
    want = (CASES / case / "Dockerfile.fixed").read_text()
    kinds, after = rewrite(original)
    assert kinds, case
    assert after.rstrip("\n") == want.rstrip("\n")
    # Only FROM lines and `go build` commands change; ARG lines may be added.
    for line in difflib.ndiff(original.splitlines(), want.splitlines()):
        if line.startswith("- "):
            assert line[2:].startswith("FROM ") or "go build" in line, line
        elif line.startswith("+ "):
            assert line[2:].startswith(("FROM ", "ARG TARGET")) or "go build" in line, line
    # Applying it again finds nothing more to do.
    assert rewrite(want)[0] == []
