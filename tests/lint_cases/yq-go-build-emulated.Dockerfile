# Pattern from mikefarah/yq (Dockerfile): go build in a stage that runs on every
# target platform (emulated: slow, not wrong).
# expect: PA003@6
FROM golang:1.22 AS builder
COPY . .
RUN CGO_ENABLED=0 go build -ldflags "-s -w" -o /yq .
FROM alpine:3.20
COPY --from=builder /yq /usr/bin/yq
