"""The RUN-script tokenizer: commands, not package names; substitutions; case; sh -c."""

from __future__ import annotations

from polyarch.lint.arch import selected_ranges, source_re
from polyarch.lint.shell import simple_commands, tokenize


def names(script: str) -> list[str]:
    return [c.name for c in simple_commands(script)]


def test_package_lists_are_arguments_even_with_variables() -> None:
    script = ("apt-get update && apt-get install -y --no-install-recommends make g++ "
              "${BUILD_PACKAGES} $(cat extra.txt) build-essential && rm -rf /var/lib/apt/lists/*")
    assert names(script) == ["apt-get", "apt-get", "cat", "rm"]
    install = simple_commands(script)[1]
    assert install.packages == ("make", "g++", "${BUILD_PACKAGES}", "$(cat extra.txt)",
                                "build-essential")


def test_case_patterns_and_for_lists_are_not_commands() -> None:
    script = """case "$TARGETARCH" in
  amd64) A=x86_64 ;;
  arm64|aarch64) A=aarch64; make -C arm ;;
  *) echo unsupported; exit 1 ;;
esac
for pkg in gcc make; do echo "$pkg"; done"""
    assert names(script) == ["make", "echo", "exit", "echo"]


def test_substitutions_sh_c_and_prefixes() -> None:
    script = ('V=$(curl -s https://x/y | jq -r .v) && sudo -E env FOO=1 go build -o /a . '
              '&& sh -c "gcc -o b b.c" && `uname -m` && nice -n 5 cargo build')
    got = [(c.name, c.args[:1]) for c in simple_commands(script)]
    assert ("curl", ("-s",)) in got and ("jq", ("-r",)) in got and ("go", ("build",)) in got
    assert ("gcc", ("-o",)) in got and ("uname", ("-m",)) in got and ("cargo", ("build",)) in got


def test_assignments_quotes_and_comments() -> None:
    (c,) = simple_commands("CGO_ENABLED=0 GOOS='linux' go build -o \"/out/a b\" . # go build x")
    assert c.assigns == (("CGO_ENABLED", "0"), ("GOOS", "linux"))
    assert c.args == ("build", "-o", "/out/a b", ".")
    assert [t for t in tokenize("a;b&&c") if isinstance(t, str)] == [";", "&&"]


def test_selected_ranges_cover_case_and_if_on_arch() -> None:
    script = ('case "$TARGETARCH" in amd64) U=x86_64;; esac; '
              'if [ "$(uname -m)" = aarch64 ]; then U=arm64; fi; wget tool-amd64.tgz')
    ranges = selected_ranges(script, source_re(frozenset({"TARGETARCH"})))
    assert any(a <= script.index("x86_64") < b for a, b in ranges)
    assert any(a <= script.index("U=arm64") < b for a, b in ranges)
    assert not any(a <= script.index("tool-amd64") < b for a, b in ranges)
