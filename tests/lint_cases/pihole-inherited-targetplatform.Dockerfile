# Pattern from pi-hole/docker-pi-hole (src/Dockerfile): ARG TARGETPLATFORM declared in
# the base stage is inherited by the stage built FROM it; the final stage is chosen by
# a global ARG default (remote), so local-install is never built.
# expect: none
ARG SOURCE=remote
FROM alpine:3.20 AS base
ARG TARGETPLATFORM
RUN apk add --no-cache curl
FROM base AS remote-install
RUN if [ "$TARGETPLATFORM" = "linux/amd64" ]; then A=amd64; \
    elif [ "$TARGETPLATFORM" = "linux/arm64" ]; then A=arm64; fi \
    && curl -sSL "https://example.com/ftl-${A}" -o /usr/bin/ftl
FROM base AS local-install
COPY ftl-x86_64 /usr/bin/ftl
FROM ${SOURCE}-install AS final
ENTRYPOINT ["/usr/bin/ftl"]
