# Pattern from linuxserver/docker-nginx: an arch-prefixed base tag (wrong for other
# platforms) and an x86_64 URL read only to learn a version number (fine).
# expect: PA001@4
FROM ghcr.io/linuxserver/baseimage-alpine:arm64v8-3.20
RUN V=$(curl -sL "http://dl-cdn.alpinelinux.org/alpine/v3.20/main/x86_64/APKINDEX.tar.gz" | tar -xzO APKINDEX | head -1) && \
    apk add --no-cache nginx
