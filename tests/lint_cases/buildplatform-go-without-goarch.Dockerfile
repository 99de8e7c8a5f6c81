# Pattern seen in public Go service Dockerfiles: the builder was moved to
# $BUILDPLATFORM for speed but GOARCH was never set, so every image gets the build
# machine's binary.
# expect: PA008@8
FROM --platform=$BUILDPLATFORM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -o /out/app ./cmd/app
FROM gcr.io/distroless/static
COPY --from=build /out/app /app
