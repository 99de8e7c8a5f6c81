# Pattern from syncthing/syncthing (Dockerfile): `go run build.go` compiles in a
# target stage.
# expect: PA003@8
FROM golang:1.22 AS builder
ARG TARGETARCH
COPY . .
RUN if [ ! -f app-linux-$TARGETARCH ]; then \
    go run build.go -no-upgrade build app ; \
    mv app app-linux-$TARGETARCH ; \
  fi
FROM alpine:3.20
ARG TARGETARCH
COPY --from=builder /app-linux-$TARGETARCH /bin/app
