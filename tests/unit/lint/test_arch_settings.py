"""PA001 on architecture settings: RUNs and COPY/ADD lines that cover every target in
turn, `case` patterns read as the target's values, .NET runtime identifiers."""

from __future__ import annotations

from polyarch.lint import lint
from polyarch.platforms import parse_platforms

TWO = parse_platforms("linux/amd64,linux/arm64")


def found(text: str, rule: str) -> list[int]:
    return [f.line for f in lint(text, platforms=TWO)
            if f.rule == rule and f.severity in ("error", "warning")]


def test_goarch_set_for_every_target_in_turn_is_no_hard_code() -> None:
    each = "FROM golang:1.22\nRUN GOARCH=amd64 ./build.sh\nRUN GOARCH=arm64 ./build.sh\n"
    assert found(each, "PA001") == []
    assert found(each, "PA003") == [2]
    one = "FROM golang:1.22\nRUN GOARCH=amd64 ./build.sh\nRUN GOARCH=386 ./build.sh\n"
    assert found(one, "PA001") == [2, 3]  # arm64 never built: both are hard-codes


def test_case_branch_on_targetarch_values_maps_arm_to_another_architecture() -> None:
    three = parse_platforms("linux/amd64,linux/arm64,linux/arm/v7")
    text = ('FROM alpine\nARG TARGETARCH\nRUN case "$TARGETARCH" in amd64) A=x86_64;; '
            "arm64) A=aarch64;; arm) A=x86_64;; esac; wget https://x/t-$A.tgz\n")
    [f] = [f for f in lint(text, platforms=three) if f.rule == "PA001"]
    assert f.line == 3 and "linux/arm/v7" in f.message and "`arm)`" in f.message
    platform = ('FROM alpine\nARG TARGETPLATFORM\nRUN case "$TARGETPLATFORM" in '
                "linux/amd64) A=x86_64;; linux/arm64) A=aarch64;; 'linux/arm/v7') A=x86_64;; "
                "esac; wget https://x/t-$A.tgz\n")
    assert [f.line for f in lint(platform, platforms=three) if f.rule == "PA001"] == [3]
    fixed = text.replace("arm) A=x86_64", "arm) A=armv7")
    assert [f for f in lint(fixed, platforms=three) if f.rule == "PA001"] == []


def test_dotnet_runtime_identifier_is_an_architecture_setting() -> None:
    def pa001(run: str) -> list[int]:
        return found(f"FROM mcr.microsoft.com/dotnet/sdk:8.0\nARG TARGETARCH\nRUN {run}\n",
                     "PA001")
    for run in ("dotnet publish -c Release -r linux-x64 --self-contained -o /app",
                "dotnet publish --runtime=linux-musl-arm64 -o /app",
                "dotnet publish -a x64 -o /app"):
        assert pa001(run) == [3], run
    for run in ("dotnet publish -a $TARGETARCH -o /app", "dotnet publish -r \"$RID\" -o /app",
                'case "$TARGETARCH" in amd64) dotnet publish -r linux-x64 ;; '
                "arm64) dotnet publish -r linux-arm64 ;; esac",
                "dotnet publish -c Release -o /app"):
        assert pa001(run) == [], run


def test_copies_that_take_every_targets_file_are_no_hard_code() -> None:
    # A publishing stage collects each architecture's package (AdGuardHome's snapcraft
    # Dockerfile ADDs AdGuardHome_<arch>.snap for amd64, arm64, armhf and i386).
    each = "FROM alpine\n" + "".join(f"ADD app_{a}.snap /app/app_{a}.snap\n"
                                     for a in ("amd64", "arm64", "armhf"))
    assert found(each, "PA001") == []
    one = "FROM alpine\nADD app_amd64.snap /app/\nADD app_armhf.snap /app/\n"
    assert found(one, "PA001") == [2, 3]
    other = "FROM alpine\nADD app_amd64.snap /app/\nADD tool_arm64.tgz /opt/\n"
    assert found(other, "PA001") == [2, 3]


def test_another_operating_systems_file_or_build_is_no_linux_hard_code() -> None:
    # moby/buildkit's parser test files keep docker's old DOCKER_CROSSPLATFORMS list.
    for text in ("FROM golang:1.22\nENV CROSS linux/386 darwin/amd64 freebsd/amd64\n",
                 "FROM alpine\nRUN wget https://x/tool-windows-x64.zip https://x/t_darwin_amd64.tgz\n",
                 "FROM golang:1.22\nRUN GOOS=darwin GOARCH=amd64 go build -o /out/mac .\n"):
        assert found(text, "PA001") == [], text
    for text in ("FROM golang:1.22\nRUN GOOS=linux GOARCH=amd64 go build -o /out/app .\n",
                 "FROM alpine\nRUN wget https://x/tool-linux-x64.zip\n"):
        assert found(text, "PA001") == [2], text


def test_an_os_name_elsewhere_in_a_url_does_not_hide_a_linux_hard_code() -> None:
    text = "FROM alpine\nRUN wget https://x/windows-and-linux/v1/tool-linux-amd64.tgz\n"
    assert found(text, "PA001") == [2]
