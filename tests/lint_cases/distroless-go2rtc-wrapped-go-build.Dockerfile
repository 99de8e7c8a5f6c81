# Pattern from 11notes/docker-distroless (go2rtc.dockerfile): `go build` run through a
# wrapper script in a builder every platform runs under emulation.
# expect: PA003@6
FROM golang:1.24-alpine AS build
COPY . /go/src
RUN cd /go/src && eleven go build app main.go
FROM scratch
COPY --from=build /go/src/app /usr/local/bin/app
ENTRYPOINT ["/usr/local/bin/app"]
