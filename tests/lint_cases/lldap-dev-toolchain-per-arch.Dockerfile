# Pattern from lldap/lldap (.github/workflows/Dockerfile.dev): PATH lists the cross
# toolchain directory of every architecture and one RUN fetches each: every variant gets
# the same complete set, nothing is hard-coded for one platform.
# expect: none
FROM rust:1.91-slim-bookworm
ENV PATH="/opt/aarch64-linux-musl-cross/bin:/opt/x86_64-linux-musl-cross/bin:$PATH"
RUN wget -c https://example.com/x86_64-linux-musl-cross.tgz && \
    tar zxf ./x86_64-linux-musl-cross.tgz -C /opt && \
    wget -c https://example.com/aarch64-linux-musl-cross.tgz && \
    tar zxf ./aarch64-linux-musl-cross.tgz -C /opt
RUN rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl
