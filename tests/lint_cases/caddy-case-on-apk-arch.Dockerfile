# Pattern from caddyserver/caddy-docker (alpine/Dockerfile): the download is chosen
# by `case` on the machine's own architecture (right in a target stage).
# expect: none
FROM alpine:3.20
RUN set -eux; \
	apkArch="$(apk --print-arch)"; \
	case "$apkArch" in \
		x86_64)  binArch='amd64' ;; \
		aarch64) binArch='arm64' ;; \
		*) echo >&2 "unsupported architecture ($apkArch)"; exit 1 ;;\
	esac; \
	wget -O /tmp/caddy.tar.gz "https://example.com/caddy_linux_${binArch}.tar.gz"
