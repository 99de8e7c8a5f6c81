"""The option table: every option of polyarch, declared once.

From each :class:`Opt` come the config-file key (kebab case, in ``polyarch.toml`` or
``[tool.polyarch]``), the ``POLYARCH_*`` environment variable, the click option of each
command that takes it (``polyarch.commands._common``), the keys an ``[[image]]`` entry
may set, the table in docs/configuration.md, and, for a build option the engine takes
as it is, the engine's flag (:class:`EngineFlag`). Adding an option means adding one
entry here, and the field of the same name to :class:`~polyarch.config.Options` where
polyarch itself reads the value (a passthrough build option needs none: its value is
in ``Options.engine_options`` and reaches the engine from here).

``SETTINGS`` are the settings of the run that modules far below the options read (the
deadlines, the cache directory, ...): each is a ``POLYARCH_*`` variable only, resolved
once at start-up into :class:`polyarch.settings.Settings`, which has a field of the
same name and default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polyarch.config import build_kinds as bk
from polyarch.config import kinds as k
from polyarch.config import setting_kinds as sk
from polyarch.config.kinds import Kind
from polyarch.platforms import DEFAULT_PLATFORMS, parse_platforms

ENV_PREFIX = "POLYARCH_"

#: Commands that build (and take the buildx-named build options).
BUILD = frozenset({"publish", "build", "doctor"})
#: Commands that verify an image.
VERIFY = frozenset({"publish", "build", "merge", "verify"})
#: Commands that move tags (and sign what they tag).
SIGN = frozenset({"publish", "merge"})


@dataclass(frozen=True)
class Unsupported:
    """An engine has no such option: what it lacks, as the error names it."""

    reason: str


@dataclass(frozen=True)
class EngineFlag:
    """How a build option reaches each engine: the engine's flag, given once per value
    (``--ulimit A --ulimit B``), once per KEY=VALUE of a table, or alone for a true
    bool; or :class:`Unsupported`, which refuses the option on that engine (exit 2)."""

    buildx: str | Unsupported  # docker buildx build (the docker engine)
    podman: str | Unsupported  # podman build

    def spellings(self) -> tuple[tuple[str, str | Unsupported], ...]:
        """(engine name, as --engine names it; its spelling) for every engine."""
        return (("docker", self.buildx), ("podman", self.podman))


def same(flag: str) -> EngineFlag:
    """The option under the same flag on every engine."""
    return EngineFlag(flag, flag)


@dataclass(frozen=True)
class Opt:
    name: str  # the Options field
    kind: Kind
    default: Any
    help: str
    #: CLI flags; empty: no command-line flag (file and environment only).
    flags: tuple[str, ...] = ()
    #: "value", "multiple" (repeatable), "flag" (--x, sets true), "pair" (--x/--no-x),
    #: "argument" (the positional argument, named by ``metavar``), "pair-value" (--x,
    #: --no-x, or --x=VALUE as buildx's --provenance: a value only after '=').
    cli: str = "value"
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    commands: frozenset[str] = BUILD
    #: An ``[[image]]`` entry may set it (it is about one image, not the run).
    per_image: bool = True
    #: Other file keys meaning the same.
    aliases: tuple[str, ...] = ()
    #: Per-command help where the option means something narrower there.
    help_for: tuple[tuple[str, str], ...] = ()
    #: A build option the engines take as it is: their flags for it.
    engine: EngineFlag | None = None

    @property
    def key(self) -> str:
        return self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def help_in(self, command: str) -> str:
        return dict(self.help_for).get(command, self.help)


_NOT_GIVEN_BUILD = "buildx default when not given"

OPTIONS: tuple[Opt, ...] = (
    Opt("tags", k.TAGS, (), "Image reference to publish (repeatable).", ("-t", "--tag"),
        "multiple", "REF", commands=BUILD | {"merge"}, per_image=False),
    # -- what to build ---------------------------------------------------------------
    Opt("platforms", k.PLATFORMS, parse_platforms(DEFAULT_PLATFORMS),
        "Target platforms, comma separated (repeatable). Default linux/amd64,linux/arm64.",
        ("--platform",), "multiple", "LIST", commands=BUILD | {"merge", "verify", "lint"},
        help_for=(("verify", "Expected platforms, comma separated (repeatable). Default: the"
                             " configured platforms, else linux/amd64,linux/arm64."),
                  ("lint", "Target platforms, comma separated (repeatable). Default: the"
                           " configured platforms, else linux/amd64,linux/arm64."),
                  ("merge", "Expected platforms, comma separated (repeatable). Default: the"
                            " configured platforms, else linux/amd64,linux/arm64."))),
    Opt("context", k.STR, ".", "Build context directory (default .).", ("CONTEXT",),
        "argument", "CONTEXT"),
    Opt("file", k.OPT_STR, None, "Dockerfile (default: CONTEXT/Dockerfile).",
        ("-f", "--file"), metavar="PATH", aliases=("dockerfile",)),
    Opt("target", k.OPT_STR, None, "Build this stage.", ("--target",), metavar="STAGE",
        commands=BUILD | {"lint"}, engine=same("--target"),
        help_for=(("lint", "The stage being built (as `docker build --target`). Default: the"
                           " configured target, else the last stage."),)),
    Opt("build_args", k.MAPPING, {}, "Build argument (repeatable).", ("--build-arg",),
        "multiple", "KEY=VALUE"),
    Opt("build_contexts", bk.CONTEXTS, {},
        "Named build context, as buildx takes it: NAME=docker-image://REF,"
        " NAME=oci-layout://PATH, a directory or a URL (repeatable). Substitutes a base"
        " image: FROM NAME uses it.", ("--build-context",), "multiple", "NAME=VALUE"),
    Opt("labels", k.MAPPING, {}, "Image label (repeatable).", ("--label",), "multiple",
        "KEY=VALUE"),
    Opt("annotations", bk.ANNOTATIONS, (),
        "OCI annotation, as buildx takes it: [TYPE:]KEY=VALUE with TYPE manifest (default),"
        " index, manifest-descriptor or index-descriptor (repeatable).", ("--annotation",),
        "multiple", "[TYPE:]KEY=VALUE"),
    Opt("secrets", bk.SECRETS, (), "Build secret, as buildx takes it (id=npmrc,src=$HOME/.npmrc).",
        ("--secret",), "multiple", "SPEC", engine=same("--secret")),
    Opt("ssh", bk.SSH, (), "SSH agent socket or keys for RUN --mount=type=ssh, as buildx"
        " takes it: default|ID[=SOCKET|KEY[,KEY]] (repeatable).", ("--ssh",), "multiple",
        "SPEC", engine=same("--ssh")),
    Opt("network", bk.NETWORK, None, "Network mode of RUN steps (default, none, host).",
        ("--network",), metavar="MODE", engine=same("--network")),
    Opt("shm_size", bk.SIZE, None, "Size of /dev/shm in RUN steps (64m, 2g).", ("--shm-size",),
        metavar="SIZE", engine=same("--shm-size")),
    Opt("ulimits", bk.ULIMITS, (), "Resource limit of RUN steps, as buildx takes it"
        " (nofile=1024:2048; repeatable).", ("--ulimit",), "multiple", "NAME=SOFT[:HARD]",
        engine=same("--ulimit")),
    Opt("entitlements", bk.ENTITLEMENT_LIST, (),
        "Extra privilege for the build, buildx's --allow (network.host, security.insecure;"
        " repeatable).", ("--allow-entitlement",), "multiple", "ENTITLEMENT",
        engine=EngineFlag("--allow", Unsupported("entitlements"))),
    Opt("add_host", k.STR_LIST, (), "Add a HOST:IP line to /etc/hosts of RUN steps"
        " (repeatable).", ("--add-host",), "multiple", "HOST:IP", engine=same("--add-host")),
    # -- attestations and cache -------------------------------------------------------
    Opt("provenance", bk.BOOL_OR_SPEC, None,
        f"Attach provenance attestations ({_NOT_GIVEN_BUILD}): --provenance, --no-provenance"
        " or buildx's options, --provenance=mode=max.", ("--provenance",), "pair-value",
        "VALUE"),
    Opt("sbom", bk.BOOL_OR_SPEC, None,
        f"Attach an SBOM attestation: true, false or buildx's options (generator=IMAGE;"
        f" {_NOT_GIVEN_BUILD}).", ("--sbom",), metavar="VALUE"),
    Opt("attest", bk.ATTEST, (), "Attestation, as buildx takes it (type=provenance,mode=max;"
        " type=sbom,generator=IMAGE; repeatable).", ("--attest",), "multiple", "SPEC",
        engine=EngineFlag("--attest", Unsupported("attestations"))),
    Opt("cache", k.choice("none", "registry", "inline"), "none",
        "Build cache: 'registry' keeps it in REPO:buildcache-* (default none).", ("--cache",),
        choices=("none", "registry", "inline")),
    Opt("cache_from", bk.CACHE_FROM, (), "Cache source, as buildx takes it"
        " (type=registry,ref=REF; repeatable).", ("--cache-from",), "multiple", "SPEC"),
    Opt("cache_to", bk.CACHE_TO, (), "Cache destination, as buildx takes it"
        " (type=registry,ref=REF,mode=max; repeatable).", ("--cache-to",), "multiple", "SPEC"),
    Opt("no_cache", k.BOOL, False, "Build without cache.", ("--no-cache",), "flag",
        engine=same("--no-cache")),
    Opt("pull", k.BOOL, False, "Always pull base images.", ("--pull",), "flag",
        engine=EngineFlag("--pull", "--pull=always")),
    # -- where and with what ----------------------------------------------------------
    Opt("engine", k.choice("docker", "podman", "auto"), "docker",
        "Build engine (default docker; auto: docker when it answers, else podman).",
        ("--engine",), choices=("docker", "podman", "auto"), per_image=False),
    Opt("builder", k.OPT_STR, None, "buildx builder to use.", ("--builder",), metavar="NAME",
        per_image=False),
    Opt("docker_context", k.OPT_STR, None, "Docker context to use.", ("--context",),
        metavar="NAME", per_image=False),
    Opt("nodes", k.NODES, (), "Builder nodes: which machine builds which platform"
        " (docs/split-builds.md).", per_image=False),
    Opt("insecure_registries", k.HOSTS, (),
        "Allow plain HTTP to this registry (loopback registries always are).",
        ("--insecure-registry",), "multiple", "HOST[:PORT]",
        commands=BUILD | {"merge", "verify", "inspect"}, per_image=False),
    Opt("docker_config", k.OPT_STR, None,
        "Directory of config.json with credentials (default: $DOCKER_CONFIG).",
        ("--docker-config",), metavar="DIR", commands=frozenset({"verify", "inspect"}),
        per_image=False),
    # -- names and tags ---------------------------------------------------------------
    Opt("images", k.STR_LIST, (),
        "Image name (no tag) to tag from git state with --tag-spec (repeatable).",
        ("--image",), "multiple", "NAME", commands=BUILD | {"merge", "tags"},
        help_for=(("tags", "Image name to prefix each tag with (repeatable)."),)),
    Opt("tag_specs", k.LINES, (),
        "Tag rule in docker/metadata-action syntax for --image names (repeatable).",
        ("--tag-spec",), "multiple", "SPEC", commands=BUILD | {"merge", "tags"}),
    Opt("flavor", k.LINES, (), "latest=auto|true|false, prefix=P, suffix=S[,onlatest=true] (repeatable).",
        ("--flavor",), "multiple", "F", commands=BUILD | {"merge", "tags"}),
    Opt("tag_labels", k.LINES, (), "An extra label; {{expressions}} allowed (repeatable).",
        ("--label",), "multiple", "KEY=VALUE", commands=frozenset({"tags"}), per_image=False),
    Opt("tag_annotations", k.LINES, (),
        "An extra index annotation; {{expressions}} allowed (repeatable).", ("--annotation",),
        "multiple", "KEY=VALUE", commands=frozenset({"tags"}), per_image=False),
    Opt("meta", k.MAPPING, {}, "OCI label values the tags step sets (title, description,"
        " ...)."),
    Opt("repository", k.REPOSITORY, None,
        "Publish name-from images to this registry (HOST[:PORT]: same path there) or"
        " repository (HOST/PATH), keeping their tags.", ("--repository",),
        metavar="REGISTRY[/PATH]", commands=frozenset({"publish"}), per_image=False),
    # -- verification -----------------------------------------------------------------
    Opt("verify", k.BOOL, True, "Verify the image before anything leaves the machine"
        " (default: on).", ("--verify",), "pair",
        commands=frozenset({"publish", "build", "merge"})),
    Opt("smoke", k.SMOKE, None,
        "Also run CMD in every platform's image (arguments to its ENTRYPOINT, as docker run"
        " takes them) and check 'uname -m' inside; '' checks uname only.", ("--smoke",), metavar="CMD",
        commands=VERIFY,
        help_for=(("verify", "Run CMD in each platform's image (expect exit 0) and check"
                             " 'uname -m' inside; --smoke '' checks uname only."),)),
    Opt("smoke_entrypoint", k.OPT_STR, None,
        "Entrypoint for the smoke run, replacing the image's ENTRYPOINT.",
        ("--smoke-entrypoint",), metavar="PATH", commands=VERIFY),
    Opt("smoke_timeout", k.SECONDS, 300.0,
        "Deadline of each smoke run (seconds; emulated start-up is slow).",
        ("--smoke-timeout",), metavar="SECONDS", commands=VERIFY),
    Opt("allow", bk.ALLOW, (),
        "Known exception for the binaries and secrets checks: PATH_GLOB, or"
        " PLATFORM=PATH_GLOB for one platform only (repeatable).", ("--allow",), "multiple",
        "[PLATFORM=]PATH_GLOB", commands=VERIFY),
    # -- signing (docs/signing.md) -------------------------------------------------------
    Opt("sign_key", k.OPT_STR, None,
        "Sign the index (and attest its verification) with this cosign private key before"
        " any tag moves; its password comes from COSIGN_PASSWORD.", ("--sign-key",),
        metavar="PATH", commands=SIGN, per_image=False),
    Opt("sign", k.BOOL, False,
        "Sign keyless (cosign's OIDC identity of GitHub Actions or GitLab CI, certificate"
        " from Fulcio) before any tag moves.", ("--sign",), "flag", commands=SIGN,
        per_image=False),
    Opt("attest_verification", k.BOOL, False,
        "Attach the verification attestation, unsigned, as an OCI referrer of the index"
        " (signing always attaches it, signed).", ("--attest-verification",), "flag",
        commands=SIGN, per_image=False),
    Opt("tlog", k.OPT_BOOL, None,
        "Upload the signature to (or, with verify, require it in) the transparency log"
        " (default: only for keyless signing).", ("--tlog",), "pair",
        commands=SIGN | {"verify"}, per_image=False),
    Opt("require_signature", k.OPT_STR, None,
        "Fail (exit 5) unless the index is signed with this cosign public key, or 'keyless'"
        " with --certificate-identity and --certificate-oidc-issuer.",
        ("--require-signature",), metavar="KEY|keyless", commands=frozenset({"verify"}),
        per_image=False),
    Opt("certificate_identity", k.OPT_STR, None,
        "Keyless signer required by --require-signature keyless (the workflow's identity,"
        " e.g. https://github.com/ORG/REPO/.github/workflows/release.yml@refs/heads/main).",
        ("--certificate-identity",), metavar="IDENTITY", commands=frozenset({"verify"}),
        per_image=False),
    Opt("certificate_oidc_issuer", k.OPT_STR, None,
        "OIDC issuer required by --require-signature keyless (e.g."
        " https://token.actions.githubusercontent.com).", ("--certificate-oidc-issuer",),
        metavar="URL", commands=frozenset({"verify"}), per_image=False),
    Opt("require_attestation", k.BOOL, False,
        "Fail (exit 5) unless polyarch's verification attestation is attached to the index"
        " (signed, with --require-signature).", ("--require-attestation",), "flag",
        commands=frozenset({"verify"}), per_image=False),
    # -- the run ----------------------------------------------------------------------
    Opt("skip_prebuild", k.BOOL, False, "Do not run the [[image]] entries' prebuild commands"
        " (their output is already there).", ("--skip-prebuild",), "flag",
        commands=frozenset({"publish"}), per_image=False),
    Opt("dry_run", k.BOOL, False, "Print the commands that would run; change nothing.",
        ("--dry-run",), "flag", commands=frozenset({"publish", "build", "merge"}),
        per_image=False,
        help_for=(("merge", "Resolve the sources and show the index; push nothing."),)),
    Opt("force", k.BOOL, False, "Overwrite an existing --output-file.", ("--force",), "flag",
        commands=frozenset({"publish"}), per_image=False),
)

def setting(name: str, kind: Kind, default: Any, help: str) -> Opt:
    """A setting of the run (:class:`polyarch.settings.Settings`): its ``POLYARCH_*``
    variable only (no file key, no command-line flag), resolved once at start-up by
    :func:`polyarch.config.load_settings` and read where it is used from
    :func:`polyarch.settings.current`."""
    return Opt(name, kind, default, help, commands=frozenset(), per_image=False)


#: Settings of the run that modules far below the options read (deadlines, directories,
#: git state given by hand, ...): every command, from the environment only. The field
#: of the same name in :class:`polyarch.settings.Settings` has the same default.
SETTINGS: tuple[Opt, ...] = (
    setting("command_timeout", sk.deadline(10**7), 60.0,
            "Deadline of every short command polyarch runs (docker info, inspect, git, a"
            " credential helper), seconds; one past it is stopped (exit 3)."),
    setting("idle_timeout", sk.deadline(10**7), 600.0,
            "Inactivity deadline of a long command (a build, a push by the engine, a"
            " prebuild command): it is stopped after this many seconds without output."),
    setting("registry_timeout", sk.deadline(86400), 60.0,
            "Deadline of one registry operation (a request with its retries), seconds,"
            " unless bytes keep flowing (docs/registries.md)."),
    setting("certs_d", sk.PATH, Path("/etc/docker/certs.d"),
            "docker's TLS directory for registries: HOST:PORT/ca.crt, client.cert and"
            " client.key (docs/registries.md)."),
    setting("cache_dir", sk.PATH, None,
            "The cache directory polyarch owns: build layouts, verification and smoke"
            " results, engine answers (docs/engines.md). Default:"
            " $XDG_CACHE_HOME/polyarch, else ~/.cache/polyarch."),
    setting("dotenv", sk.PATH, None,
            "Write the dotenv report of publish and merge here (docs/ci.md). Default:"
            " polyarch.env under GitLab CI, none elsewhere."),
    setting("git_ref", sk.GIT_REF, None,
            "The ref being built, instead of the CI's or the working tree's (docs/tags.md)."),
    setting("git_sha", k.OPT_STR, None,
            "The commit being built, with or instead of POLYARCH_GIT_REF (default: the"
            " working tree's HEAD)."),
    setting("base_ref", k.OPT_STR, None,
            "The target branch of the pull request being built (with POLYARCH_GIT_REF)."),
    setting("default_branch", k.OPT_STR, None,
            "The repository's default branch (type=edge, {{is_default_branch}}; default:"
            " the CI's, else origin/HEAD, main or master)."),
    setting("short_sha_length", sk.POSITIVE_INT, None,
            "Length of the short commit hash ({{sha}}, type=sha). Default:"
            " $DOCKER_METADATA_SHORT_SHA_LENGTH, else 7."),
    setting("debug", k.BOOL, False,
            "An internal error (exit 70) shows its traceback instead of one line."),
)

BY_NAME: dict[str, Opt] = {o.name: o for o in OPTIONS}
#: file key (and alias) -> option
BY_KEY: dict[str, Opt] = {key: o for o in OPTIONS for key in (o.key, *o.aliases)}
SETTINGS_BY_NAME: dict[str, Opt] = {o.name: o for o in SETTINGS}


def for_command(command: str) -> tuple[Opt, ...]:
    """The options that ``command`` takes on its command line, in table order."""
    return tuple(o for o in OPTIONS if o.flags and command in o.commands)


def run_keys() -> tuple[str, ...]:
    """File keys that are about the whole run (engine, builder, ...), not one image."""
    return tuple(key for o in OPTIONS if not o.per_image for key in (o.key, *o.aliases))


def image_keys() -> tuple[str, ...]:
    """File keys an ``[[image]]`` entry may set (with the meaning they have at the top)."""
    return tuple(key for o in OPTIONS if o.per_image for key in (o.key, *o.aliases))
