# Pattern from docker/buildx (Dockerfile): the final stage is FROM binaries-$TARGETOS;
# only the linux stage is built, and test stages are never reached.
# expect: none
FROM --platform=$BUILDPLATFORM golang:1.22-alpine AS gobase
COPY --from=tonistiigi/xx:1.4 / /
FROM gobase AS build
ARG TARGETPLATFORM
RUN xx-go build -o /usr/bin/app ./cmd/app && xx-verify /usr/bin/app
FROM gobase AS test
RUN go test ./... && make lint
FROM scratch AS binaries-linux
COPY --from=build /usr/bin/app /app
FROM scratch AS binaries-windows
COPY --from=build /usr/bin/app /app.exe
FROM binaries-$TARGETOS
