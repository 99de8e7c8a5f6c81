# Pattern from docker/metadata-action (dev.Dockerfile): many scratch export stages;
# the default target is the last one.
# expect: none
FROM node:20-alpine AS base
RUN apk add --no-cache git
FROM base AS deps
RUN --mount=type=bind,target=.,rw yarn install --immutable && mkdir /vendor
FROM deps AS test
RUN --mount=type=bind,target=.,rw yarn run test --coverage.reportsDirectory=/tmp/coverage
FROM scratch AS test-coverage
COPY --from=test /tmp/coverage /
