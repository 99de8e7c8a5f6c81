# Pattern from dani-garcia/vaultwarden (docker/Dockerfile.debian): web assets taken
# from an image pinned to linux/amd64 (files only, fine) and a Rust build on
# $BUILDPLATFORM with xx (cross-compiles: fine).
# expect: none
FROM --platform=linux/amd64 vaultwarden/web-vault:v2024 AS vault
FROM --platform=$BUILDPLATFORM tonistiigi/xx:1.4 AS xx
FROM --platform=$BUILDPLATFORM rust:1.80 AS build
COPY --from=xx / /
ARG TARGETPLATFORM
RUN xx-apt-get install -y libssl-dev && xx-cargo build --release && \
    cp target/$(xx-cargo --print-target-triple)/release/app /app
FROM --platform=$TARGETPLATFORM debian:12-slim
COPY --from=vault /web-vault /web-vault
COPY --from=build /app /app
