# Pattern from many public Dockerfiles: global ARG defaults built from other ARGs.
# BuildKit expands them, so the FROM resolves and nothing is wrong.
# expect: none
ARG REGISTRY=ghcr.io
ARG OWNER=example
ARG BASE=${REGISTRY}/${OWNER}/base:1
ARG B=${BASE}
FROM ${B}
RUN true
