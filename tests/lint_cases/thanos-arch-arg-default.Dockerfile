# Pattern from thanos-io/thanos (Dockerfile.multi-arch): the binary is picked by an
# ARG whose default names one architecture, so a multi-platform build ships it to all.
# expect: PA001@6
FROM busybox:1.36
ARG OS="linux"
ARG ARCH="amd64"
COPY .build/${OS}-${ARCH}/app /bin/app
ENTRYPOINT ["/bin/app"]
