# Pattern from solenopsys/sc-bm-publications-api-invicta (Dockerfile): the only stage,
# the image itself, is FROM --platform=$BUILDPLATFORM; the binary is cross-compiled but
# every variant's base image is the build machine's.
# expect: PA002@5
FROM --platform=$BUILDPLATFORM golang:1.22
ARG TARGETARCH
COPY . /app
RUN cd /app && GOOS=linux GOARCH=$TARGETARCH go build -o /usr/local/bin/svc .
CMD ["/usr/local/bin/svc"]
