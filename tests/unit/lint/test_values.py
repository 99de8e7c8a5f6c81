"""Which values follow the platform is decided by what variables are assigned, never by
their names; the words that name architectures; the image on $BUILDPLATFORM; ARG
expansion stays bounded."""

from __future__ import annotations

from polyarch.lint import Finding, lint
from polyarch.platforms import parse_platforms

TWO = parse_platforms("linux/amd64,linux/arm64")


def got(text: str) -> list[tuple[str, int]]:
    return [(f.rule, f.line) for f in lint(text, platforms=TWO)
            if f.severity in ("error", "warning")]


def only(text: str, rule: str) -> Finding:
    (f,) = [f for f in lint(text, platforms=TWO) if f.rule == rule]
    return f


def test_a_variable_named_like_arch_does_not_choose_the_architecture() -> None:
    for name in ("elasticsearch8_version", "search", "monarch_ver"):
        text = (f"FROM debian:12\nARG {name}=8.1\n"
                f"RUN curl -O https://example.com/dl/tool-${{{name}}}-linux-amd64.tar.gz\n")
        assert got(text) == [("PA001", 3)], name


def test_variables_assigned_from_the_target_or_detection_choose_it() -> None:
    assigned = ("FROM debian:12\nARG TARGETARCH\nARG FLAVOUR=${TARGETARCH}\n"
                'RUN [ "$FLAVOUR" = amd64 ] && curl -O https://x/tool-amd64.tgz || true\n')
    assert got(assigned) == []
    detected = ('FROM debian:12\nRUN a="$(dpkg --print-architecture)"; '
                'if [ "$a" = amd64 ]; then curl -O https://x/tool-amd64.tgz; fi\n')
    assert got(detected) == []


def test_goarch_from_a_plain_arg_names_no_target_whatever_its_name() -> None:
    for name in ("ARCH", "GA"):
        text = (f"FROM --platform=$BUILDPLATFORM golang:1.22 AS b\nARG {name}\n"
                f"RUN GOARCH=${{{name}}} go build -o /app .\n"
                "FROM alpine\nCOPY --from=b /app /app\n")
        assert got(text) == [("PA008", 3)], name
    follows = ("FROM --platform=$BUILDPLATFORM golang:1.22 AS b\nARG TARGETARCH\n"
               "ARG GA=${TARGETARCH}\nRUN GOARCH=$GA go build -o /app .\n"
               "FROM alpine\nCOPY --from=b /app /app\n")
    assert got(follows) == []


def test_detection_on_the_build_machine_is_not_the_target_but_xx_info_is() -> None:
    base = ("FROM --platform=$BUILDPLATFORM golang:1.22 AS b\nRUN GOARCH={} go build -o /app .\n"
            "FROM alpine\nCOPY --from=b /app /app\n")
    assert got(base.format("$(dpkg --print-architecture)")) == [("PA008", 2)]
    assert got(base.format("$(xx-info arch)")) == []


def test_target_args_on_separate_lines_reach_make_but_not_go() -> None:
    make = ("FROM --platform=$BUILDPLATFORM golang:1.22 AS b\nARG TARGETOS\nARG TARGETARCH\n"
            "RUN make build\nFROM alpine\nCOPY --from=b /src/bin/app /app\n")
    assert got(make) == []
    go = make.replace("RUN make build", "RUN go build -o /src/bin/app .")
    assert got(go) == [("PA008", 4)]
    passed = make.replace("RUN make build", "RUN make GOARCH=$TARGETARCH build") \
        .replace("ARG TARGETOS\nARG TARGETARCH\n", "ARG TARGETARCH\n")
    assert got(passed) == []


def test_a_list_of_every_target_architecture_is_not_a_hard_code() -> None:
    every = ("FROM debian:12\nENV PKG_CONFIG_PATH=/usr/lib/x86_64-linux-gnu/pkgconfig:"
             "/usr/lib/aarch64-linux-gnu/pkgconfig\n")
    assert got(every) == []
    one = "FROM debian:12\nENV PKG_CONFIG_PATH=/usr/lib/x86_64-linux-gnu/pkgconfig\n"
    assert got(one) == [("PA001", 2)]


def test_architecture_words_in_any_casing_and_spelling() -> None:
    for word in ("X86_64", "Linux64", "AARCH64", "x64", "armv7l", "ARMHF"):
        text = f"FROM debian:12\nRUN curl -O https://example.com/tool-{word}.zip\n"
        assert got(text) == [("PA001", 2)], word


def test_a_case_branch_mapping_one_architecture_to_another_is_reported_for_it() -> None:
    text = ("FROM debian:12\nARG TARGETARCH\n"
            'RUN case "$TARGETARCH" in \\\n'
            "      amd64) A=x86_64 ;; \\\n"
            "      arm64) A=x86_64 ;; \\\n"
            "    esac; curl -O https://example.com/tool-$A.tgz\n")
    f = only(text, "PA001")
    assert (f.line, f.severity) == (5, "error")
    assert "linux/arm64" in f.message and "linux/amd64" not in f.message
    default = text.replace("      arm64) A=x86_64 ;; \\\n", "      *) A=x86_64 ;; \\\n")
    f = only(default, "PA001")
    assert f.line == 5 and "linux/arm64" in f.message
    right = text.replace("arm64) A=x86_64", "arm64) A=aarch64")
    assert got(right) == []


def test_arg_name_pairs_are_not_defaults() -> None:
    text = "FROM alpine\nARG TARGETARCH amd64\nCOPY bin/tool-$TARGETARCH /usr/bin/tool\n"
    assert got(text) == []
    note = only(text, "PA009")
    assert note.severity == "info" and "two ARGs" in note.message


def test_the_image_on_buildplatform_is_an_error_naming_the_build_machine() -> None:
    text = ("FROM --platform=$BUILDPLATFORM mcr.microsoft.com/dotnet/sdk:8.0 AS build\n"
            "ARG TARGETARCH\nRUN dotnet publish -a $TARGETARCH -o /app\n"
            "FROM --platform=$BUILDPLATFORM mcr.microsoft.com/dotnet/aspnet:8.0\n"
            "COPY --from=build /app /app\n")
    f = only(text, "PA002")
    assert (f.line, f.severity) == (4, "error") and "build machine" in f.message


def test_messages_say_where_a_stage_runs_and_what_kind_of_command() -> None:
    pinned = ("FROM --platform=linux/arm64 golang:1.22 AS b\nRUN go build -o /app .\n"
              "FROM alpine\nCOPY --from=b /app /app\n")
    f = only(pinned, "PA008")
    assert "pinned to --platform=linux/arm64" in f.message and "build machine" not in f.message
    make = ("FROM --platform=$BUILDPLATFORM python:3.12 AS docs\nRUN make docs-deps\n"
            "FROM alpine\nCOPY --from=docs /src/bin /bin\n")
    f = only(make, "PA008")
    assert "Makefile build" in f.message and "C/C++" not in f.message


def test_arg_chains_that_double_stop_with_pa000() -> None:
    lines = ["ARG A0=xx"] + [f"ARG A{i}=${{A{i - 1}}}${{A{i - 1}}}" for i in range(1, 60)]
    text = "\n".join([*lines, "FROM alpine", "ARG A59", "RUN echo $A59"]) + "\n"
    findings = lint(text, platforms=TWO)
    pa000 = [f for f in findings if f.rule == "PA000"]
    assert pa000 and pa000[0].severity == "error" and "16384" in pa000[0].message
    assert all(len(f.message) < 2000 for f in findings)
