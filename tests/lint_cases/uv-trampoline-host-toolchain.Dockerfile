# Pattern from astral-sh/uv (crates/uv-trampoline/Dockerfile): a stage every platform
# runs adds a component to the toolchain named by the x86-64 host triple (PA001); the
# Windows targets added beside it are for no Linux target and do not make the
# statement "every architecture".
# expect: PA001@8
FROM ubuntu:24.04 AS base
ARG RUST_NIGHTLY
RUN rustup component add rust-src --toolchain ${RUST_NIGHTLY}-x86_64-unknown-linux-gnu && \
    rustup target add --toolchain ${RUST_NIGHTLY} \
        x86_64-pc-windows-msvc \
        aarch64-pc-windows-msvc
CMD ["cargo", "xwin", "build"]
