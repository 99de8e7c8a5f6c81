# Pattern from gethomepage/homepage (Dockerfile): pnpm install and a Next.js build in a
# target builder; the runtime runs `node server.js` and installs nothing, so the
# standalone output carries the builder's node_modules: it must stay on the target.
# expect: none
FROM node:22-slim AS builder
WORKDIR /app
COPY . .
RUN corepack enable && pnpm install --frozen-lockfile && pnpm run build
FROM node:22-alpine
WORKDIR /app
COPY --from=builder /app/.next/standalone/ ./
COPY --from=builder /app/.next/static/ ./.next/static
CMD ["node", "server.js"]
