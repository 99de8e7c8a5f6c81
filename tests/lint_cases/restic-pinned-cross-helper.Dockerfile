# Pattern from restic/restic (docker/Dockerfile.release): a helper pinned to
# linux/amd64 that cross-compiles for $TARGETOS/$TARGETARCH (right on purpose).
# expect: none
FROM --platform=linux/amd64 golang:1.22 AS helper
ARG TARGETOS
ARG TARGETARCH
COPY . /src
RUN cd /src && GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app ./cmd/app
FROM alpine:3.20
COPY --from=helper /out/app /usr/bin/app
