# Pattern from docker-library/redis (7.2/debian/Dockerfile): the image stage itself
# compiles C from source, choosing per-architecture flags with a dpkgArch case. It
# cannot move to $BUILDPLATFORM (PA003 is only info there).
# expect: none
FROM debian:bookworm-slim
RUN set -eux; \
    apt-get update; apt-get install -y gcc make libc6-dev; \
    dpkgArch="$(dpkg --print-architecture)"; \
    case "${dpkgArch##*-}" in \
        amd64 | i386) flags='--with-lg-page=12' ;; \
        *) flags='--with-lg-page=16' ;; \
    esac; \
    ./configure $flags && make -j "$(nproc)" && make install
CMD ["redis-server"]
