# Pattern from ollama/ollama (Dockerfile): stages pinned per architecture and selected
# with FROM base-${TARGETARCH}; a global ARG default that refers to TARGETARCH picks the
# archive stage. Arch-named files in stages only that architecture builds are right.
# The native compiles run per target: slow, so warnings.
# expect: PA003@14
ARG FLAVOR=${TARGETARCH}
FROM --platform=linux/amd64 almalinux:8 AS base-amd64
RUN dnf install -y gcc
ENV LIBDIR=/usr/lib/x86_64-linux-gnu
FROM --platform=linux/arm64 almalinux:8 AS base-arm64
RUN dnf install -y clang
FROM base-${TARGETARCH} AS build
COPY . .
RUN cmake -S . -B out && cmake --build out
FROM --platform=linux/amd64 scratch AS amd64
COPY --from=build /out/lib /lib/app/
FROM --platform=linux/arm64 scratch AS arm64
COPY --from=build /out/lib /lib/app/
FROM ${FLAVOR} AS archive
FROM ubuntu:24.04
COPY --from=archive /lib/app /usr/lib/app
