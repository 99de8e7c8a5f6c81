# Pattern from astral-sh/uv (Dockerfile, as of 063a9be): a case on TARGETPLATFORM writes
# the Rust target triple to a file, and a later RUN reads it back for `cargo zigbuild
# --target "$(cat rust_target.txt)"`: the value follows the target through the file.
# expect: none
FROM --platform=$BUILDPLATFORM rust:1 AS builder
ARG TARGETPLATFORM
RUN case "${TARGETPLATFORM}" in \
    linux/arm64) CARGO_BUILD_TARGET=aarch64-unknown-linux-musl ;; \
    linux/amd64) CARGO_BUILD_TARGET=x86_64-unknown-linux-musl ;; \
    *) exit 1 ;; \
  esac; \
  echo "${CARGO_BUILD_TARGET}" > rust_target.txt
RUN cargo zigbuild --release --target "$(cat rust_target.txt)" && \
    cp "target/$(cat rust_target.txt)/release/app" /app
FROM scratch
COPY --from=builder /app /app
