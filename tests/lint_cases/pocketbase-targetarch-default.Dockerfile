# Pattern seen in public Dockerfiles (PocketBase deployment examples): a default on
# TARGETARCH "for local builds" overrides the builder, so every variant downloads amd64.
# expect: PA009@6
FROM alpine:3.20
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ADD https://example.com/pocketbase_${TARGETOS}_${TARGETARCH}.zip /tmp/pb.zip
