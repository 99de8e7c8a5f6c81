# Pattern from docker/buildx (hack/dockerfiles/lint.Dockerfile): golangci-lint is built
# on $BUILDPLATFORM without a target and carried through a scratch stage (picked by an
# ARG) into a $BUILDPLATFORM stage that runs it: a tool for the build machine, never in
# a target's image. (The final stage on $BUILDPLATFORM is PA002's.)
# expect: PA002@7
ARG FROM_SOURCE=true
FROM --platform=$BUILDPLATFORM golang:1.26-alpine AS base
FROM base AS tool-build
RUN go build -o /out/golangci-lint ./cmd/golangci-lint
FROM scratch AS tool-true
COPY --from=tool-build /out/golangci-lint golangci-lint
FROM tool-${FROM_SOURCE} AS tool
FROM base AS lint
COPY --from=tool / /usr/bin/
RUN golangci-lint run
