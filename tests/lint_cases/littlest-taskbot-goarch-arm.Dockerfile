# Pattern from FaithWelton/LittlestTaskBot (Dockerfile): GOARCH=arm (Go's own word for
# 32-bit ARM) written literally in a builder that every platform runs, under emulation.
# expect: PA001@6 PA003@6
FROM golang:1.21 AS builder
WORKDIR /app
RUN CGO_ENABLED=0 GOOS=linux GOARCH=arm go build -o app main.go
FROM alpine:3.18
COPY --from=builder /app/app /app
CMD ["/app"]
