# Pattern from ymktmk/addmission-webhook-replicas-validation (Dockerfile): builder and
# image both pinned to linux/x86_64. The image is wrong for arm64 (PA002 error); the
# builder's output matches the pinned image, so it is no PA008.
# expect: PA002@5 PA002@8
FROM --platform=linux/x86_64 golang:1.20 AS builder
COPY . /src
RUN cd /src && CGO_ENABLED=0 GOOS=linux go build -o /main main.go
FROM --platform=linux/x86_64 alpine:3.20
COPY --from=builder /main /main
