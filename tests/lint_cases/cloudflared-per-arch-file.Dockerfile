# Pattern from cloudflare/cloudflared (Dockerfile.arm64): a per-architecture Dockerfile
# with GOARCH and an arch-tagged base image, built for several platforms.
# expect: PA001@7 PA003@7 PA001@8
FROM golang:1.22 AS builder
ENV CGO_ENABLED=0
COPY . .
RUN GOOS=linux GOARCH=arm64 make app
FROM gcr.io/distroless/base-debian12:nonroot-arm64
COPY --from=builder /app /usr/local/bin/
