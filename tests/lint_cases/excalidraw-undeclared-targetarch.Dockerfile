# Pattern from excalidraw/excalidraw (Dockerfile): $TARGETARCH used in a
# $BUILDPLATFORM stage that never declares it (it is empty there).
# expect: PA004@6
FROM --platform=${BUILDPLATFORM} node:20 AS build
WORKDIR /app
RUN npm_config_target_arch=${TARGETARCH} yarn --frozen-lockfile
RUN yarn build
FROM nginx:1.27-alpine
COPY --from=build /app/build /usr/share/nginx/html
