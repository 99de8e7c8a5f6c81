# Pattern from ev-smoke/devops (Dockerfile): GOARCH=${ARCH} from a plain `ARG ARCH`
# (no value, not the target) on $BUILDPLATFORM: the name says "arch", the value is empty.
# expect: PA008@8
FROM --platform=$BUILDPLATFORM golang:1.23 AS builder
ARG OS
ARG ARCH
COPY . /src
RUN cd /src && CGO_ENABLED=0 GOOS=${OS} GOARCH=${ARCH} go build -o /out/app .
FROM scratch
COPY --from=builder /out/app /app
ENTRYPOINT ["/app"]
