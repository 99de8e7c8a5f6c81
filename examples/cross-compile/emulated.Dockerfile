# cross-compile, the slow way (for comparison, see benchmarks/cross_compile.py): the
# toolchain is installed and the program compiled inside the target platform's
# image, so for a foreign platform every step runs under QEMU emulation.
ARG BASE=127.0.0.1:5000/polyarch/debian:bookworm

FROM ${BASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY hello.c .
RUN mkdir -p /out && gcc -O2 -static -o /out/hello hello.c

FROM scratch
COPY --from=build /out/hello /hello
ENTRYPOINT ["/hello"]
