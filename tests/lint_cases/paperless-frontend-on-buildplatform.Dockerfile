# Pattern from paperless-ngx/paperless-ngx (Dockerfile): the frontend is built on
# $BUILDPLATFORM (only static files leave: right), ${RUNTIME_PACKAGES} and
# build-essential are apt package lists, not commands.
# expect: none
FROM --platform=$BUILDPLATFORM node:20 AS compile-frontend
COPY ./src-ui /src/src-ui
WORKDIR /src/src-ui
RUN corepack enable && pnpm install && ./node_modules/.bin/ng build --configuration production
FROM python:3.12-slim
ARG BUILD_PACKAGES="build-essential pkg-config"
RUN apt-get update && apt-get install --yes ${BUILD_PACKAGES} make gcc && \
    pip install -r requirements.txt && apt-get purge --yes ${BUILD_PACKAGES}
COPY --from=compile-frontend /src/src/documents/static/frontend/ /app/static/
