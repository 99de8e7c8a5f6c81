# Pattern from jellyfin/jellyfin-packaging (docker/Dockerfile): a global ARG whose default
# names arm64 is used only in a branch that runs when a build argument says arm64, so no
# other architecture gets it (no PA001). The image stage takes its platform from a plain
# build argument: one platform for every variant, invalid when unset (PA002). `dotnet
# publish` in a builder on the target platform runs under emulation (PA003).
# expect: PA003@14 PA002@16
ARG LIB_VER=2.0-1_arm64
ARG PACKAGE_ARCH
ARG TARGET_ARCH

FROM debian:bookworm-slim AS server
ARG DOTNET_ARCH
COPY server .
RUN dotnet publish App.Server --arch ${DOTNET_ARCH} --output=/server --self-contained

FROM --platform=linux/${TARGET_ARCH} debian:bookworm-slim AS combined
ARG LIB_VER
ARG PACKAGE_ARCH
RUN if [ "${PACKAGE_ARCH}" = "arm64" ]; then \
      curl -LO https://example.org/releases/libgpu_${LIB_VER}.deb && apt-get install -y ./*.deb; \
    fi
COPY --from=server /server /app
ENTRYPOINT ["/app/app"]
