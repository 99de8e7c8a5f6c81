"""PA008 tells a build machine's tools from what reaches the image, and follows a target
value through a file."""

from __future__ import annotations

from polyarch.lint import lint
from polyarch.platforms import parse_platforms

TWO = parse_platforms("linux/amd64,linux/arm64")
STAGE = "FROM --platform=$BUILDPLATFORM rust:1 AS build\nARG TARGETARCH\n"


def found(text: str, rule: str) -> list[int]:
    return [f.line for f in lint(text, platforms=TWO)
            if f.rule == rule and f.severity in ("error", "warning")]


def test_cargo_install_into_the_toolchain_is_a_tool_unless_its_bin_is_copied() -> None:
    tool = STAGE + "RUN cargo install cargo-auditable\n"
    assert found(tool + "FROM scratch\nCOPY --from=build /out /out\n", "PA008") == []
    for src in ("/usr/local/cargo/bin/cargo-auditable", "/root/.cargo/bin", "/"):
        assert found(tool + f"FROM scratch\nCOPY --from=build {src} /bin/\n", "PA008") == [3], src
    rooted = STAGE + "RUN cargo install --root /opt/tools app\n"
    assert found(rooted + "FROM scratch\nCOPY --from=build /opt/tools/bin/app /\n",
                 "PA008") == [3]
    assert found(rooted + "FROM scratch\nCOPY --from=build /usr/local/cargo/bin/x /\n",
                 "PA008") == []


def test_go_install_follows_gobin_and_gopath() -> None:
    stage = "FROM --platform=$BUILDPLATFORM golang:1.22 AS b\nENV GOBIN=/tools\n" \
        "RUN go install example.com/tool@v1\n"
    assert found(stage + "FROM scratch\nCOPY --from=b /tools/tool /\n", "PA008") == [3]
    assert found(stage + "FROM scratch\nCOPY --from=b /go/bin/tool /\n", "PA008") == []


def test_a_download_for_uname_m_is_a_tool_when_run_and_removed_or_piped_to_a_shell() -> None:
    tail = "FROM scratch\nCOPY --from=build /usr/local/bin /usr/local/bin\n"
    kept = STAGE + 'RUN curl -fsSL "https://example.com/dl/tool-$(uname -m)" ' \
        "-o /usr/local/bin/tool && chmod +x /usr/local/bin/tool\n"
    assert found(kept + tail, "PA008") == [3]
    removed = STAGE + 'RUN curl -fsSL "https://example.com/dl/$(uname -m)/init" -o init && ' \
        "./init -y && rm init\n"
    assert found(removed + tail, "PA008") == []
    piped = STAGE + 'RUN curl -fsSL "https://example.com/$(uname -m)/install.sh" | sh\n'
    assert found(piped + tail, "PA008") == []


def test_a_value_passed_through_a_file_follows_what_was_written() -> None:
    def pa008(write: str, read: str) -> list[int]:
        return found("FROM --platform=$BUILDPLATFORM golang:1.22 AS b\nARG TARGETARCH\n"
                     f"RUN {write}\nRUN GOARCH={read} go build -o /app\n"
                     "FROM scratch\nCOPY --from=b /app /app\n", "PA008")
    assert pa008('echo "$TARGETARCH" > /tmp/goarch', "$(cat /tmp/goarch)") == []
    assert pa008("printf %s $TARGETARCH | tee goarch", '"$(cat /src/goarch)"') == []
    assert pa008("uname -m > /tmp/goarch", "$(cat /tmp/goarch)") == [4]
    assert pa008('echo "$TARGETARCH" > /tmp/goarch', "$(cat /tmp/other)") == [4]


def test_a_tool_carried_through_scratch_into_a_build_stage_is_not_target_output() -> None:
    head = "FROM --platform=$BUILDPLATFORM golang:1.22 AS tb\nRUN go build -o /out/tool .\n" \
        "FROM scratch AS carry\nCOPY --from=tb /out/tool /tool\n"
    native = head + "FROM --platform=$BUILDPLATFORM golang:1.22 AS run\n" \
        "COPY --from=carry /tool /usr/bin/tool\nRUN tool > /report\n" \
        "FROM alpine\nCOPY --from=run /report /report\n"
    assert found(native, "PA008") == []
    # Carried on into the image that runs for the target: the build machine's binary.
    shipped = head + "FROM alpine\nCOPY --from=carry /tool /usr/bin/tool\n"
    assert found(shipped, "PA008") == [2]
