"""Options shared by several subcommands, and turning CLI values into Options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from polyarch import config, proc, redact
from polyarch.config import Options
from polyarch.output import Reporter

F = TypeVar("F", bound=Callable[..., Any])


def build_options(f: F) -> F:
    """The buildx-named options of publish/build/doctor."""
    decorators = [
        click.argument("context", required=False),
        click.option("-t", "--tag", "tags", multiple=True, metavar="REF",
                     help="Image reference to publish (repeatable)."),
        click.option("-f", "--file", "file", metavar="PATH",
                     help="Dockerfile (default: CONTEXT/Dockerfile)."),
        click.option("--platform", "platforms", multiple=True, metavar="LIST",
                     help="Target platforms, comma separated (repeatable). Default linux/amd64,linux/arm64."),
        click.option("--build-arg", "build_args", multiple=True, metavar="KEY=VALUE"),
        click.option("--label", "labels", multiple=True, metavar="KEY=VALUE"),
        click.option("--target", metavar="STAGE", help="Build this stage."),
        click.option("--secret", "secrets", multiple=True, metavar="SPEC",
                     help="Build secret, as buildx takes it (id=npmrc,src=$HOME/.npmrc)."),
        click.option("--builder", metavar="NAME", help="buildx builder to use."),
        click.option("--context", "docker_context", metavar="NAME", help="Docker context to use."),
        click.option("--engine", type=click.Choice(["docker", "podman", "auto"]), default=None,
                     help="Build engine (default docker; auto: docker when it answers, else"
                          " podman)."),
        click.option("--provenance/--no-provenance", default=None,
                     help="Attach provenance attestations (buildx default when not given)."),
        click.option("--cache", "cache", type=click.Choice(["none", "registry", "inline"]),
                     default=None, help="Build cache: 'registry' keeps it in REPO:buildcache-*"
                     " (default none)."),
        click.option("--no-cache", "no_cache", is_flag=True, default=None, help="Build without cache."),
        click.option("--pull", is_flag=True, default=None, help="Always pull base images."),
        click.option("--insecure-registry", "insecure_registries", multiple=True, metavar="HOST[:PORT]",
                     help="Allow plain HTTP to this registry (loopback registries always are)."),
        click.option("--image", "images", multiple=True, metavar="NAME",
                     help="Image name (no tag) to tag from git state with --tag-spec (repeatable)."),
        click.option("--tag-spec", "tag_specs", multiple=True, metavar="SPEC",
                     help="Tag rule in docker/metadata-action syntax for --image names (repeatable)."),
        click.option("--flavor", "flavor", multiple=True, metavar="F",
                     help="latest=auto|true|false, prefix=P, suffix=S (repeatable)."),
        click.option("--config", "config_path", type=click.Path(path_type=Path), metavar="PATH",
                     help="Config file (default: ./polyarch.toml or [tool.polyarch] in ./pyproject.toml)."),
        click.option("--json", "json_mode", is_flag=True, help="Print one JSON document on stdout."),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def load_options(kw: dict[str, Any]) -> Options:
    cli: dict[str, Any] = {
        "context": kw.get("context"),
        "tags": kw.get("tags"),
        "file": kw.get("file"),
        "platforms": kw.get("platforms"),
        "build-args": kw.get("build_args"),
        "labels": kw.get("labels"),
        "target": kw.get("target"),
        "secrets": kw.get("secrets"),
        "builder": kw.get("builder"),
        "docker-context": kw.get("docker_context"),
        "engine": kw.get("engine"),
        "provenance": kw.get("provenance"),
        "no-cache": kw.get("no_cache"),
        "cache": kw.get("cache"),
        "pull": kw.get("pull"),
        "insecure-registries": kw.get("insecure_registries"),
        "images": kw.get("images"),
        "tag-specs": kw.get("tag_specs"),
        "flavor": kw.get("flavor"),
    }
    for extra in ("verify", "smoke", "allow"):
        if extra in kw:
            cli[extra] = kw[extra]
    opts = config.load(cli, config_path=kw.get("config_path"))
    # Secret-looking values are masked in everything printed from here on.
    redact.register_build_args(opts.build_args)
    redact.register_url_passwords(str(t) for t in opts.tags)
    for spec in opts.secrets:
        redact.REDACTOR.add_secret_spec(spec)
    return opts


def reporter(json_mode: bool) -> Reporter:
    rep = Reporter(json_mode=json_mode)
    proc.echo_hook = rep.command
    return rep
