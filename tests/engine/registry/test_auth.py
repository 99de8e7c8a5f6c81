"""Authentication against real registries: htpasswd (Basic) and Bearer tokens."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultproxy import FaultProxy, LocalRegistry, TokenAuth, make_layer, push_index

from polyarch import proc
from polyarch.checks.verify import verify
from polyarch.cli import run as cli_run
from polyarch.errors import RegistryError
from polyarch.platforms import parse_platforms
from polyarch.refs import parse_ref
from polyarch.registry import RegistryClient

pytestmark = pytest.mark.engine

BOTH = parse_platforms("linux/amd64,linux/arm64")
USER, PASSWORD = "ci-bot", "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _no_stale_echo() -> Iterator[None]:
    yield
    proc.echo_hook = None


def login(config_dir: Path, registry: str, user: str = USER, password: str = PASSWORD) -> None:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (config_dir / "config.json").write_text(json.dumps({"auths": {registry: {"auth": auth}}}))


def variants() -> list[tuple[str, list[tuple[bytes, str, str]]]]:
    layer = make_layer({"etc/motd": b"hello\n", "srv/data": b"d" * 200_000})
    return [("linux/amd64", [(*layer, "gzip")]), ("linux/arm64", [(*layer, "gzip")])]


@pytest.fixture
def htpasswd_registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path / "authreg", htpasswd={USER: PASSWORD}) as reg:
        yield reg


def test_htpasswd_registry_with_docker_config(
        htpasswd_registry: LocalRegistry, isolated_docker_config: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    addr = htpasswd_registry.address
    ref = f"{addr}/team/app:1"
    # No credentials: a clear exit 4.
    code = cli_run(["verify", ref])
    _, err = capsys.readouterr()
    assert code == 4
    assert f"no credentials for {addr}" in err and "docker login" in err
    # Logged in (config.json in DOCKER_CONFIG): push with the client, verify with the CLI.
    login(isolated_docker_config, addr)
    with RegistryClient() as client:
        digest = push_index(client, parse_ref(ref), variants())
        client.check_push_access(parse_ref(ref))
    code = cli_run(["verify", ref, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["index_digest"] == digest
    assert PASSWORD not in out + err
    # Wrong password: rejected, exit 4, the password never shown.
    login(isolated_docker_config, addr, password="wrong-password-123")
    code = cli_run(["verify", ref])
    _, err = capsys.readouterr()
    assert code == 4
    assert "were rejected" in err and "wrong-password-123" not in err


def test_bearer_tokens_cached_per_scope(registry: str, repo: str, tmp_path: Path) -> None:
    auth = TokenAuth(users={USER: PASSWORD})
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    with FaultProxy(registry, auth=auth) as proxy:
        login(cfg, proxy.address)
        name = repo.split("/", 1)[1]
        ref = parse_ref(f"{proxy.address}/{name}:1")
        with RegistryClient(docker_config=cfg) as client:
            push_index(client, ref, variants())
            pushes = auth.token_requests
            assert pushes >= 1
            report = verify(ref, BOTH, client=client)
            assert report.ok, report.to_json()
            # Every read is one scope (pull on one repository): one more token at most.
            assert auth.token_requests - pushes <= 1
            verify(ref, BOTH, client=client)
            assert auth.token_requests - pushes <= 1
        # Anonymous: the token service refuses, exit 4.
        with RegistryClient(docker_config=tmp_path) as anon, \
                pytest.raises(RegistryError, match="refused anonymous access") as ei:
            anon.get_manifest(ref)
        assert ei.value.exit_code == 4


def test_identity_token_refresh_grant(registry: str, repo: str, tmp_path: Path) -> None:
    auth = TokenAuth(users={USER: PASSWORD}, refresh_tokens={"rt-0123456789": USER})
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    with FaultProxy(registry, auth=auth) as proxy:
        (cfg / "config.json").write_text(json.dumps(
            {"auths": {proxy.address: {"identitytoken": "rt-0123456789"}}}))
        ref = parse_ref(f"{proxy.address}/{repo.split('/', 1)[1]}:1")
        with RegistryClient(docker_config=cfg) as client:
            push_index(client, ref, variants())
            assert verify(ref, BOTH, client=client).ok
        token_posts = [r for r in proxy.log if r.path.startswith("/token") and r.method == "POST"]
        assert token_posts and all(r.outcome == "token 200" for r in token_posts)


def test_redirect_does_not_leak_authorization(registry: str, repo: str, tmp_path: Path) -> None:
    auth = TokenAuth(users={USER: PASSWORD})
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    with FaultProxy(registry) as storage, \
            FaultProxy(registry, auth=auth, redirect_blobs_to=storage.public_url) as front:
        login(cfg, front.address)
        ref = parse_ref(f"{front.address}/{repo.split('/', 1)[1]}:1")
        with RegistryClient(docker_config=cfg) as client:
            push_index(client, ref, variants())
            report = verify(ref, BOTH, client=client)
        assert report.ok, report.to_json()
        redirected = [r for r in front.log if r.outcome == "307"]
        fetched = [r for r in storage.log if "/blobs/" in r.path and r.method == "GET"]
        assert redirected and len(fetched) == len(redirected)
        assert all("Authorization" not in r.headers for r in storage.log)
        # The front door did get credentials: they were needed there.
        assert any(r.headers.get("Authorization", "").startswith("Bearer ") for r in front.log)


def test_parallel_push_shares_one_token_per_scope(registry: str, repo: str,
                                                  tmp_path: Path) -> None:
    import os

    from faultproxy import write_oci_layout

    from polyarch.registry import OCILayout, push_layout

    auth = TokenAuth(users={USER: PASSWORD})
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    layers = [make_layer({f"bin/{i}": os.urandom(50_000)}, "none") for i in range(6)]
    lay = OCILayout(write_oci_layout(tmp_path / "lay", [
        ("linux/amd64", [(*layer, "none") for layer in layers[:3]]),
        ("linux/arm64", [(*layer, "none") for layer in layers[3:]])]))
    with FaultProxy(registry, auth=auth) as proxy:
        login(cfg, proxy.address)
        ref = parse_ref(f"{proxy.address}/{repo.split('/', 1)[1]}")
        with RegistryClient(docker_config=cfg) as client:
            res = push_layout(client, lay, ref, jobs=4)
            assert res.blobs_uploaded == 8
            # HEADs need pull, uploads and manifests pull,push: two scopes, two tokens,
            # however many threads asked at once.
            assert auth.token_requests <= 2
            assert client.token_requests == auth.token_requests
            again = push_layout(client, lay, ref, jobs=4)
            assert again.blobs_skipped == 8 and auth.token_requests <= 2
