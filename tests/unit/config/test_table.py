"""The option table against everything generated from it: Options, the config file,
the environment, every command's click options, [[image]] keys, and bad input.

Every option needs an entry in SAMPLES: a value as the file, the environment and the
command line write it, and the Options value all three must give.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

import click
import pytest

from polyarch import config
from polyarch.cli import run
from polyarch.commands._common import cli_values
from polyarch.config.table import BY_KEY, OPTIONS, Opt
from polyarch.errors import ConfigError
from polyarch.nodespec import NodeSpec
from polyarch.platforms import parse_platforms
from polyarch.refs import parse_ref

# name -> (file value, environment string, command-line values, expected Options value)
SAMPLES: dict[str, tuple[Any, str, list[str], Any]] = {
    "tags": (["localhost:5000/a/b:1"], "localhost:5000/a/b:1", ["localhost:5000/a/b:1"],
             (parse_ref("localhost:5000/a/b:1"),)),
    "platforms": (["linux/arm64", "linux/arm/v7"], "linux/arm64,linux/arm/v7",
                  ["linux/arm64,linux/arm/v7"], parse_platforms("linux/arm64,linux/arm/v7")),
    "context": ("ctx", "ctx", ["ctx"], "ctx"),
    "file": ("Dockerfile.x", "Dockerfile.x", ["Dockerfile.x"], "Dockerfile.x"),
    "target": ("runtime", "runtime", ["runtime"], "runtime"),
    "build_args": ({"A": "1", "B": "x=y"}, "A=1,B=x=y", ["A=1", "B=x=y"], {"A": "1", "B": "x=y"}),
    "build_contexts": ({"base": "docker-image://127.0.0.1:5000/b@sha256:" + "a" * 64},
                       "base=docker-image://127.0.0.1:5000/b@sha256:" + "a" * 64,
                       ["base=docker-image://127.0.0.1:5000/b@sha256:" + "a" * 64],
                       {"base": "docker-image://127.0.0.1:5000/b@sha256:" + "a" * 64}),
    "labels": ({"org.opencontainers.image.licenses": "MIT"},
               "org.opencontainers.image.licenses=MIT", ["org.opencontainers.image.licenses=MIT"],
               {"org.opencontainers.image.licenses": "MIT"}),
    "annotations": (["index:org.opencontainers.image.description=a, b", "x.y=1"],
                    "index:org.opencontainers.image.description=a, b\nx.y=1",
                    ["index:org.opencontainers.image.description=a, b", "x.y=1"],
                    ("index:org.opencontainers.image.description=a, b", "x.y=1")),
    "secrets": (["id=npmrc,src=.npmrc"], "id=npmrc,src=.npmrc", ["id=npmrc,src=.npmrc"],
                ("id=npmrc,src=.npmrc",)),
    "ssh": (["default", "gh=/k1,/k2"], "default\ngh=/k1,/k2", ["default", "gh=/k1,/k2"],
            ("default", "gh=/k1,/k2")),
    "network": ("host", "host", ["host"], "host"),
    "shm_size": ("2g", "2g", ["2g"], "2g"),
    "ulimits": (["nofile=1024:2048", "nproc=512"], "nofile=1024:2048,nproc=512",
                ["nofile=1024:2048", "nproc=512"], ("nofile=1024:2048", "nproc=512")),
    "entitlements": (["network.host"], "network.host", ["network.host"], ("network.host",)),
    "add_host": (["cache.lan:10.0.0.5", "db:10.0.0.6"], "cache.lan:10.0.0.5,db:10.0.0.6",
                 ["cache.lan:10.0.0.5", "db:10.0.0.6"], ("cache.lan:10.0.0.5", "db:10.0.0.6")),
    "provenance": ("mode=max", "mode=max", [], "mode=max"),  # CLI: --provenance (below)
    "sbom": ("generator=docker/buildkit-syft-scanner", "generator=docker/buildkit-syft-scanner",
             ["generator=docker/buildkit-syft-scanner"], "generator=docker/buildkit-syft-scanner"),
    "attest": (["type=provenance,mode=max"], "type=provenance,mode=max",
               ["type=provenance,mode=max"], ("type=provenance,mode=max",)),
    "cache": ("registry", "registry", ["registry"], "registry"),
    "cache_from": (["type=registry,ref=r/c:1"], "type=registry,ref=r/c:1",
                   ["type=registry,ref=r/c:1"], ("type=registry,ref=r/c:1",)),
    "cache_to": (["type=local,dest=/tmp/c,mode=max"], "type=local,dest=/tmp/c,mode=max",
                 ["type=local,dest=/tmp/c,mode=max"], ("type=local,dest=/tmp/c,mode=max",)),
    "no_cache": (True, "true", [], True),
    "pull": (True, "yes", [], True),
    "engine": ("podman", "podman", ["podman"], "podman"),
    "builder": ("b1", "b1", ["b1"], "b1"),
    "docker_context": ("ctx1", "ctx1", ["ctx1"], "ctx1"),
    "nodes": ([{"platforms": ["linux/arm64"], "endpoint": "arm"}],
              '[{"platforms": ["linux/arm64"], "endpoint": "arm"}]', [],
              (NodeSpec("polyarch-0", parse_platforms("linux/arm64"), "arm"),)),
    "insecure_registries": (["reg.lan:5000"], "reg.lan:5000", ["reg.lan:5000"], ("reg.lan:5000",)),
    "docker_config": ("ci/docker", "ci/docker", ["ci/docker"], "ci/docker"),
    "images": (["ghcr.io/o/app"], "ghcr.io/o/app", ["ghcr.io/o/app"], ("ghcr.io/o/app",)),
    "tag_specs": (["type=semver,pattern={{major}}.{{minor}}"],
                  "type=semver,pattern={{major}}.{{minor}}",
                  ["type=semver,pattern={{major}}.{{minor}}"],
                  ("type=semver,pattern={{major}}.{{minor}}",)),
    "flavor": (["latest=false"], "latest=false", ["latest=false"], ("latest=false",)),
    "tag_labels": (["org.example.v={{version}}", "team=core, tools"],
                   "org.example.v={{version}}\nteam=core, tools",
                   ["org.example.v={{version}}", "team=core, tools"],
                   ("org.example.v={{version}}", "team=core, tools")),
    "tag_annotations": (["org.example.sha={{sha}}"], "org.example.sha={{sha}}",
                        ["org.example.sha={{sha}}"], ("org.example.sha={{sha}}",)),
    "meta": ({"title": "App"}, "title=App", [], {"title": "App"}),
    "repository": ("127.0.0.1:5000/mirror", "127.0.0.1:5000/mirror", ["127.0.0.1:5000/mirror"],
                   "127.0.0.1:5000/mirror"),
    "verify": (False, "false", [], False),
    "smoke": ("--version", "--version", ["--version"], "--version"),
    "smoke_entrypoint": ("/bin/sh", "/bin/sh", ["/bin/sh"], "/bin/sh"),
    "smoke_timeout": (45, "45", ["45"], 45.0),
    "allow": (["usr/lib/*.so", "linux/arm64=*/prebuilds/*"], "usr/lib/*.so,arm64=*/prebuilds/*",
              ["usr/lib/*.so", "arm64=*/prebuilds/*"],
              ("usr/lib/*.so", "linux/arm64=*/prebuilds/*")),
    "sign_key": ("ci/cosign.key", "ci/cosign.key", ["ci/cosign.key"], "ci/cosign.key"),
    "sign": (True, "true", [], True),
    "attest_verification": (True, "1", [], True),
    "tlog": (True, "true", [], True),
    "require_signature": ("cosign.pub", "cosign.pub", ["cosign.pub"], "cosign.pub"),
    "certificate_identity": ("https://github.com/o/r/.github/workflows/r.yml@refs/heads/main",
                             "https://github.com/o/r/.github/workflows/r.yml@refs/heads/main",
                             ["https://github.com/o/r/.github/workflows/r.yml@refs/heads/main"],
                             "https://github.com/o/r/.github/workflows/r.yml@refs/heads/main"),
    "certificate_oidc_issuer": ("https://token.actions.githubusercontent.com",
                                "https://token.actions.githubusercontent.com",
                                ["https://token.actions.githubusercontent.com"],
                                "https://token.actions.githubusercontent.com"),
    "require_attestation": (True, "yes", [], True),
    "skip_prebuild": (True, "1", [], True),
    "dry_run": (True, "true", [], True),
    "force": (True, "on", [], True),
}

# Flags without a value (click "flag" and "pair" kinds) are given as the flag itself.
FLAG_ARGS: dict[str, tuple[list[str], Any]] = {
    "provenance": (["--no-provenance"], False),
    "no_cache": (["--no-cache"], True),
    "pull": (["--pull"], True),
    "verify": (["--no-verify"], False),
    "sign": (["--sign"], True),
    "attest_verification": (["--attest-verification"], True),
    "tlog": (["--no-tlog"], False),
    "require_attestation": (["--require-attestation"], True),
    "skip_prebuild": (["--skip-prebuild"], True),
    "dry_run": (["--dry-run"], True),
    "force": (["--force"], True),
}

COMMANDS = ("publish", "build", "doctor", "merge", "verify", "tags", "inspect", "lint")


def _command(name: str) -> click.Command:
    cmd = importlib.import_module(f"polyarch.commands.{name}").command
    assert isinstance(cmd, click.Command)
    return cmd


def test_options_dataclass_matches_the_table() -> None:
    """A field per option polyarch reads; an option without one is a passthrough build
    option (the engines' flags for it come from the table)."""
    fields = {f.name: f for f in dataclasses.fields(config.Options)}
    assert set(fields) - {"source", "sources", "engine_options"} <= {o.name for o in OPTIONS}
    for o in OPTIONS:
        if o.name not in fields:
            assert o.engine is not None, f"{o.name}: no Options field and no engine flag"
            assert config.Options(platforms=()).value(o.name) == o.default
            continue
        f = fields[o.name]
        default = (f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else f.default)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            continue  # platforms: required field, the table has the default
        assert default == o.default, o.name


def test_every_option_has_a_sample() -> None:
    assert set(SAMPLES) == {o.name for o in OPTIONS}


@pytest.mark.parametrize("opt", OPTIONS, ids=lambda o: o.name)
def test_reachable_from_file_env_and_cli(opt: Opt, tmp_path: Path) -> None:
    file_value, env_value, cli_value, expected = SAMPLES[opt.name]

    import tomllib  # the sample must be expressible in TOML: write it and read it back
    (tmp_path / "polyarch.toml").write_text(_toml(opt.key, file_value))
    assert tomllib.loads((tmp_path / "polyarch.toml").read_text())[opt.key] == file_value
    o = config.load({}, env={}, cwd=tmp_path)
    assert o.value(opt.name) == expected
    assert o.origin(opt.name) == f"file {tmp_path / 'polyarch.toml'}"

    empty = tmp_path / "empty"
    empty.mkdir()
    o = config.load({}, env={opt.env: env_value}, cwd=empty)
    assert o.value(opt.name) == expected
    assert o.origin(opt.name) == f"environment {opt.env}"

    if not opt.flags:
        assert not any(opt.name in _params(c) for c in COMMANDS), opt.name
        return
    assert opt.commands, opt.name
    for name in COMMANDS:
        assert (opt.name in _params(name)) == (name in opt.commands), (opt.name, name)
    for name in sorted(opt.commands):
        if opt.name in FLAG_ARGS:
            args, want = FLAG_ARGS[opt.name]
        elif opt.cli == "argument":
            args, want = cli_value, expected
        else:
            args = [a for v in cli_value for a in (opt.flags[-1], v)]
            want = expected
        params = _parse(name, args)
        o = config.load(cli_values(params), env={}, cwd=empty)
        assert o.value(opt.name) == want, (opt.name, name)
        assert o.origin(opt.name) == "command line"


def _params(command: str) -> set[str]:
    return {p.name for p in _command(command).params if p.name}


def _parse(command: str, args: list[str]) -> dict[str, Any]:
    from polyarch.cli import bare_flags

    extra = ["ref"] if command in ("verify", "inspect") else []
    ctx = _command(command).make_context(command, bare_flags([*args, *extra]))
    return dict(ctx.params)


@pytest.mark.parametrize(("args", "want"), [
    (["--provenance=mode=max"], "mode=max"),
    (["--provenance"], True),
    (["--no-provenance"], False),
    (["--provenance=false"], False),
])
def test_provenance_takes_buildx_values_after_an_equals_sign(args: list[str], want: Any) -> None:
    o = config.load(cli_values(_parse("publish", args)), env={})
    assert o.provenance == want


def test_a_bare_provenance_flag_never_takes_the_context_as_its_value() -> None:
    params = _parse("publish", ["--provenance", "app"])
    assert params["context"] == "app"
    assert config.load(cli_values(params), env={}).provenance is True


def _toml(key: str, value: Any) -> str:
    def lit(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(lit(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{lit(k)} = {lit(x)}" for k, x in v.items()) + " }"
        raise AssertionError(v)

    return f"{lit(key)} = {lit(value)}\n"


def test_cli_beats_env_beats_file(tmp_path: Path) -> None:
    (tmp_path / "polyarch.toml").write_text('shm-size = "1g"\nnetwork = "none"\nssh = ["a"]\n')
    o = config.load({"network": "host"}, env={"POLYARCH_SHM_SIZE": "2g"}, cwd=tmp_path)
    assert (o.value("shm_size"), o.value("network"), o.ssh) == ("2g", "host", ("a",))
    assert o.origin("shm_size") == "environment POLYARCH_SHM_SIZE"
    assert o.origin("network") == "command line"
    assert o.origin("ssh").startswith("file ")
    assert o.origin("target") == "default"


@pytest.mark.parametrize("key", sorted(BY_KEY))
def test_unknown_key_did_you_mean(key: str, tmp_path: Path) -> None:
    typo = key + key[-1]  # one letter too many
    (tmp_path / "polyarch.toml").write_text(f'"{typo}" = 1\n')
    with pytest.raises(ConfigError) as e:
        config.load({}, env={}, cwd=tmp_path)
    assert f"unknown key {typo!r}" in e.value.line()
    assert e.value.hint is not None and e.value.hint.startswith("did you mean")
    suggested = e.value.hint.split("'")[1]
    assert suggested in BY_KEY  # a suggestion is itself a valid key
    assert e.value.exit_code == 2


def test_image_keys_are_the_per_image_options() -> None:
    keys = set(config.image_keys())
    assert {"build-contexts", "annotations", "ssh", "shm-size", "ulimits", "entitlements",
            "attest", "cache-from", "smoke-entrypoint", "dockerfile"} <= keys
    assert not keys & {"engine", "builder", "tags", "nodes", "repository", "force"}


# -- bad values: exit 2, one line, from each source --------------------------------------

BAD: list[tuple[str, Any, str]] = [
    # (file key, bad value, words of the message)
    ("build-contexts", {"base": ""}, "has no value"),
    ("annotations", ["nope"], "is not [TYPE:]KEY=VALUE"),
    ("annotations", ["manifst:a=b"], "unknown type 'manifst'"),
    ("annotations", ["manifest[linux/armz]:a=b"], "armz"),
    ("shm-size", "lots", "is not a size"),
    ("ulimits", ["nofile"], "is not NAME=SOFT[:HARD]"),
    ("ulimits", ["files=1:2"], "unknown limit 'files'"),
    ("entitlements", ["network.hots"], "is not one of"),
    ("sbom", "maybe", "neither true/false nor KEY=VALUE"),
    ("provenance", 3, "must be true, false or attestation options"),
    ("allow", ["network.host"], "use --allow-entitlement network.host"),
    ("allow", ["linux/arm46=*.so"], "before '=' comes a platform"),
    ("allow", ["linux/arm64="], "has no glob"),
    ("repository", "ghcr.io/o/app:1", "has a tag or digest"),
    ("repository", "not a registry", "neither a registry"),
    ("cache-from", 5, "must be a list of strings, not int 5"),
    ("ssh", {"a": 1}, "must be a list of strings"),
]


@pytest.mark.parametrize(("key", "value", "words"), BAD, ids=[f"{k}={v}" for k, v, _ in BAD])
def test_bad_value_in_file(key: str, value: Any, words: str, tmp_path: Path) -> None:
    (tmp_path / "polyarch.toml").write_text(_toml(key, value))
    with pytest.raises(ConfigError) as e:
        config.load({}, env={}, cwd=tmp_path)
    assert words in e.value.line() and f"'{key}'" in e.value.line()
    assert e.value.exit_code == 2


@pytest.mark.parametrize(("key", "value", "words"),
                         [b for b in BAD if isinstance(b[1], str | list)],
                         ids=[f"{k}={v}" for k, v, _ in BAD if isinstance(v, str | list)])
def test_bad_value_on_command_line(key: str, value: Any, words: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    opt = BY_KEY[key]
    command = "publish" if "publish" in opt.commands else sorted(opt.commands)[0]
    values = value if isinstance(value, list) else [value]
    code = run([command, *[a for v in values for a in (opt.flags[-1], v)],
                *(["ref"] if command == "verify" else [])])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("polyarch: error: ") and words in lines[0]


@pytest.mark.parametrize("content", [
    b'platforms = ["linux/amd64"]\nlabels = { a = "\xff\xfe" }\n',  # not UTF-8
    b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n",  # nested beyond the parser's recursion
    b"x = " + b"{a = " * 3000 + b"1" + b"}" * 3000 + b"\n",
    b"[tool\n",  # bad syntax
], ids=["invalid-utf8", "deep-arrays", "deep-tables", "syntax"])
def test_unreadable_toml_exit_2(content: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "polyarch.toml").write_bytes(content)
    monkeypatch.chdir(tmp_path)
    code = run(["publish", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("polyarch: error: ")
    assert "polyarch.toml" in lines[0]


def test_deep_nesting_in_a_value_is_a_type_error(tmp_path: Path) -> None:
    nested = "[" * 200 + '"x"' + "]" * 200  # parses, but no option takes it
    (tmp_path / "polyarch.toml").write_text(f"ssh = {nested}\n")
    with pytest.raises(ConfigError, match="'ssh' must be a list of strings"):
        config.load({}, env={}, cwd=tmp_path)


def test_allow_for_platform() -> None:
    o = config.load({"allow": ["usr/lib/*", "linux/arm64=*/prebuilds/*", "amd64=x86/*"]},
                    env={}, cwd=Path("/nonexistent"))
    assert o.allow_for("linux/arm64") == ("usr/lib/*", "*/prebuilds/*")
    assert o.allow_for(parse_platforms("amd64")[0]) == ("usr/lib/*", "x86/*")
    assert o.allow_for("linux/riscv64") == ("usr/lib/*",)


@pytest.mark.parametrize(("ref", "repository", "want"), [
    ("us-docker.pkg.dev/gemini-code-dev/gemini-cli/sandbox:0.1.1", "127.0.0.1:5000",
     "127.0.0.1:5000/gemini-code-dev/gemini-cli/sandbox:0.1.1"),
    ("us-docker.pkg.dev/gemini-code-dev/gemini-cli/sandbox:0.1.1", "ghcr.io/me/sandbox",
     "ghcr.io/me/sandbox:0.1.1"),
    ("ghcr.io/o/app", "localhost:5000/mirror/app", "localhost:5000/mirror/app"),
])
def test_rehome_moves_a_reference_to_another_repository(ref: str, repository: str, want: str) -> None:
    assert str(config.rehome(parse_ref(ref, default_tag=None), repository)) == want


ODD_VALUES: list[Any] = [
    0, -1, 1.5, float("nan"), True, False, "", " ", "\x00", "é=ü", "=", "a=", "=b", ",", "\n",
    "[linux/amd64]", "linux/amd64=", "docker-image://", [], [[]], [1], [None], [{"a": 1}], {},
    {"a": {"b": 1}}, {"a": [1]}, {"": ""}, {"platforms": 1},
    __import__("datetime").datetime(1979, 5, 27, 7, 32), __import__("datetime").date(1979, 5, 27),
    __import__("datetime").time(7, 32), [[[[[["deep"]]]]]] * 3,
]


@pytest.mark.parametrize("key", sorted(BY_KEY))
def test_odd_values_are_config_errors_never_crashes(key: str) -> None:
    """Whatever TOML (or the environment) holds, a key's parser either takes it or
    says why: a ConfigError (exit 2), never another exception (exit 70)."""
    for raw in ODD_VALUES:
        values: dict[str, Any] = {}
        try:
            config.apply(values, key, raw, "polyarch.toml")
        except ConfigError as e:
            assert e.exit_code == 2 and "\n" not in e.message.strip("\n").replace("\\n", ""), raw
