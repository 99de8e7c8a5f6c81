# Pattern from AdguardTeam/AdGuardHome (docker/frontend.Dockerfile) and many web apps:
# npm work in a target stage whose only output is a JS bundle (movable: --fix).
# expect: PA003@7
FROM node:20 AS builder
WORKDIR /app
COPY . .
RUN npm ci && npm run build
FROM nginx:1.27-alpine
COPY --from=builder /app/build /usr/share/nginx/html
