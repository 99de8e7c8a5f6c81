# Pattern from google-gemini/gemini-cli (Dockerfile): the builder packs the CLI, but
# the runtime stage copies the tarball from the build context, so BuildKit never runs
# the builder and the tarball must come from the host.
# expect: PA010@12
FROM node:20-slim AS builder
WORKDIR /build
COPY . .
RUN npm ci --ignore-scripts && npm run build && \
    npm pack -w packages/cli --pack-destination packages/cli/dist/
FROM node:20-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ git
COPY packages/cli/dist/cli-*.tgz /tmp/cli.tgz
RUN npm install -g /tmp/cli.tgz
