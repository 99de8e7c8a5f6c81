# Pattern from astral-sh/uv (Dockerfile): a $BUILDPLATFORM stage fetches rustup-init for
# `uname -m` (run, then removed) and `cargo install`s a helper into CARGO_HOME: tools
# for the build machine; the binary copied out is built with --target from
# TARGETPLATFORM.
# expect: none
FROM --platform=$BUILDPLATFORM ubuntu:24.04 AS build
ARG TARGETPLATFORM
RUN case "$TARGETPLATFORM" in \
  "linux/arm64") echo aarch64-unknown-linux-musl > /triple ;; \
  "linux/amd64") echo x86_64-unknown-linux-musl > /triple ;; \
  esac
RUN curl -sSf "https://static.rust-lang.org/rustup/dist/$(uname -m)-unknown-linux-gnu/rustup-init" \
  -o rustup-init && chmod +x rustup-init && ./rustup-init -y && rm rustup-init
RUN cargo install --locked cargo-auditable
RUN cargo auditable build --release --target "$(cat /triple)" && \
  cp "target/$(cat /triple)/release/app" /app
FROM scratch
COPY --from=build /app /app
