"""podman's plain-HTTP registries for one build: a registries.conf of the build's own,
layered over the user's, never a change to the user's files."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from polyarch.engines import BuildRequest
from polyarch.engines.podman import PodmanEngine
from polyarch.engines.podman_registries import effective_conf, loopback_hosts, write_conf
from polyarch.errors import EnvironmentProblem
from polyarch.platforms import parse_platforms

# Debian 12's /etc/containers/registries.conf is all comments; a user's typical additions.
USER_CONF = """\
unqualified-search-registries = ["registry.example.com"]

[[registry]]
location = "registry.example.com"

[[registry]]
location = "127.0.0.1:6000"
insecure = true

[aliases]
"app" = "registry.example.com/team/app"
"""


def test_loopback_hosts_are_whole_registry_names() -> None:
    text = ("ARG BASE=127.0.0.1:5000/polyarch/busybox:latest\nFROM ${BASE}\n"
            "FROM localhost:5001/x AS a\nFROM [::1]:5002/y\n"
            "FROM 127.0.0.10.example.com/z\nFROM localhost.example.com/w\nFROM 1127.0.0.1/v\n")
    assert loopback_hosts([text, "127.0.0.2"]) == {
        "127.0.0.1:5000", "localhost:5001", "[::1]:5002", "127.0.0.2"}
    assert loopback_hosts(["ghcr.io/o/app:1", "registry.lan:5000/x"]) == set()


def test_the_conf_keeps_the_users_and_adds_the_plain_http_registries(tmp_path: Path) -> None:
    user = tmp_path / "registries.conf"
    user.write_text(USER_CONF)
    before = user.read_bytes()
    out = write_conf({"127.0.0.1:5000", "127.0.0.1:6000", "registry.lan:5000"},
                     tmp_path / "build.conf", source=user)
    assert out is not None
    doc = tomllib.loads(out.read_text())
    assert doc["unqualified-search-registries"] == ["registry.example.com"]
    assert doc["aliases"] == {"app": "registry.example.com/team/app"}
    regs = {r["location"]: r.get("insecure", False) for r in doc["registry"]}
    # What the user declared stays as declared (and is not declared twice).
    assert regs == {"registry.example.com": False, "127.0.0.1:6000": True,
                    "127.0.0.1:5000": True, "registry.lan:5000": True}
    assert user.read_bytes() == before


def test_nothing_to_add_writes_nothing(tmp_path: Path) -> None:
    user = tmp_path / "registries.conf"
    user.write_text(USER_CONF)
    assert write_conf(set(), tmp_path / "a.conf", source=user) is None
    assert write_conf({"127.0.0.1:6000"}, tmp_path / "a.conf", source=user) is None
    # No file at all: the additions alone.
    out = write_conf({"localhost:5000"}, tmp_path / "b.conf", source=tmp_path / "missing")
    assert out is not None
    assert tomllib.loads(out.read_text())["registry"] == [
        {"location": "localhost:5000", "insecure": True}]
    # The old (v1) format cannot take [[registry]] tables: left as it is.
    v1 = tmp_path / "v1.conf"
    v1.write_text('[registries.search]\nregistries = ["docker.io"]\n')
    assert write_conf({"localhost:5000"}, tmp_path / "c.conf", source=v1) is None


def test_a_broken_user_conf_is_an_environment_problem(tmp_path: Path) -> None:
    bad = tmp_path / "registries.conf"
    bad.write_text("[[registry]\n")
    with pytest.raises(EnvironmentProblem, match="not valid TOML") as e:
        write_conf({"localhost:5000"}, tmp_path / "out.conf", source=bad)
    assert e.value.exit_code == 3


def test_the_conf_podman_reads(tmp_path: Path) -> None:
    assert effective_conf({"CONTAINERS_REGISTRIES_CONF": "/srv/r.conf"}, tmp_path) == Path(
        "/srv/r.conf")
    assert effective_conf({}, tmp_path) == Path("/etc/containers/registries.conf")
    user = tmp_path / ".config/containers/registries.conf"
    user.parent.mkdir(parents=True)
    user.write_text("")
    assert effective_conf({}, tmp_path) == user


def test_the_build_env_names_the_plain_http_registries(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "user.conf"
    user.write_text("")
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(user))
    df = tmp_path / "Dockerfile"
    df.write_text("ARG BASE=127.0.0.1:5000/polyarch/busybox:latest\nFROM ${BASE}\n")
    req = BuildRequest(context=tmp_path, dockerfile=df, platforms=parse_platforms("linux/amd64"),
                       build_args={"EXTRA": "localhost:5001/x/y:1"})
    eng = PodmanEngine(insecure_registries=["http://Registry.LAN:5000/"])
    env = eng.build_env(req, tmp_path)
    conf = tomllib.loads(Path(env["CONTAINERS_REGISTRIES_CONF"]).read_text())
    assert {r["location"] for r in conf["registry"]} == {
        "127.0.0.1:5000", "localhost:5001", "registry.lan:5000"}
    assert PodmanEngine().build_env(
        BuildRequest(context=tmp_path, dockerfile=tmp_path / "none",
                     platforms=parse_platforms("linux/amd64")), tmp_path) == {}
    # The dry run shows it.
    cmd = eng.build_commands(req, tmp_path / "metadata.json")[0]
    assert cmd[:2] == ["env", f"CONTAINERS_REGISTRIES_CONF={tmp_path / 'registries.conf'}"]
