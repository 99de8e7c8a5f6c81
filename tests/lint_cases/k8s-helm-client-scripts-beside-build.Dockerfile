# Pattern from elijah688/k8s-helm-kmnr (client/client.dockerfile): npm ci and a build
# in a stage every platform runs under emulation; its build output and a directory of
# another name (not node_modules, not the WORKDIR) go to a stage that runs no Node.
# expect: PA003@8
FROM node:20-alpine AS build
WORKDIR /client
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build
FROM nginx:1.27
COPY --from=build /client/build /client/scripts ./
