# Pattern from castai/spot-handler (Dockerfile): `ARG TARGETARCH amd64` declares two ARG
# names without values (BuildKit), so TARGETARCH keeps the builder's value (a PA009 info).
# expect: none
FROM alpine:3.16
ARG TARGETARCH amd64
COPY bin/spot-handler-$TARGETARCH /usr/local/bin/spot-handler
CMD ["spot-handler"]
