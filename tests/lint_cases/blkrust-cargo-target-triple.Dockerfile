# Pattern from yasuomaidana/Python-and-Rust-Practice (blkrust-cli/keep.dockerfile):
# cargo's --target names aarch64 for every platform; the build runs in the image stage
# itself (PA003 only as info there).
# expect: PA001@8
FROM rust:1-alpine3.20
RUN apk add --no-cache musl-dev
COPY . /app
RUN cd /app && cargo build --release --target aarch64-unknown-linux-musl
