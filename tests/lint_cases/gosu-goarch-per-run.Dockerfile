# Pattern from tianon/gosu (Dockerfile): the image stage runs one Go build per
# architecture, each RUN giving GOARCH to a build script: the RUNs name every target
# between them (no hard-code), and the builds run under emulation.
# expect: PA003@7
FROM golang:1.24
COPY . /src
RUN ARCH=amd64 GOARCH=amd64 build-and-test.sh
RUN ARCH=armhf GOARCH=arm GOARM=6 build-and-test.sh
RUN ARCH=arm64 GOARCH=arm64 build-and-test.sh
RUN ARCH=s390x GOARCH=s390x build-and-test.sh
