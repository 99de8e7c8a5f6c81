# Pattern from google-gemini/gemini-cli (.gcp/Dockerfile.development): tool downloads
# that name x86-64 in a multi-platform image; `make`/`g++` are package names here.
# expect: PA001@7 PA001@9
FROM node:20-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
  make g++ ${EXTRA_PACKAGES} build-essential \
  && curl -sSLo /tmp/actionlint.tar.gz https://github.com/rhysd/actionlint/releases/download/v1.7.7/actionlint_1.7.7_linux_amd64.tar.gz \
  && tar -xzf /tmp/actionlint.tar.gz -C /usr/local/bin actionlint \
  && curl -sSLo /tmp/sc.tar.xz https://github.com/koalaman/shellcheck/releases/download/v0.11.0/shellcheck-v0.11.0.linux.x86_64.tar.xz
