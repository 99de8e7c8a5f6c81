# Pattern from Ajmat1234/Instagram-dm (Dockerfile): chromedriver_linux64.zip, the
# x86-64 build under the name Chrome for Testing uses, downloaded for every platform.
# expect: PA001@6
FROM python:3.12-slim
RUN apt-get update && apt-get install -y wget unzip
RUN wget -q "https://storage.example.com/${CHROME_VERSION}/chromedriver_linux64.zip" -O d.zip && \
    unzip d.zip && mv chromedriver /usr/local/bin/
