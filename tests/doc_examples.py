"""The ``polyarch`` command examples of the README, docs/ and examples/, and what the
tests do with each.

:func:`extract` finds every example: a line of a shell or plain code block (``sh``,
``console``, no language) that runs ``polyarch COMMAND`` (``$ `` prompts dropped,
``\\`` continuations joined, a trailing ``  # comment`` cut). :data:`EXAMPLES` says,
for each, either how ``tests/engine/test_doc_examples.py`` runs it against the local
engine and registry, or why it is not run there. ``tests/unit/docs/test_examples.py``
fails when the two disagree (an example added or changed without a word here, or an
entry here whose example is gone), and checks the flags of every example, run or not,
against the command's real options.

Runnable examples of one page run in page order in one directory holding a small
build context (busybox trees and a Dockerfile), as a reader following the page would.
Placeholders are replaced, and nothing else: ``registry.example.com/team/app``,
``registry.example/app`` and ``127.0.0.1:5000/demo/app`` become a fresh repository of
the test registry; ``app:dev`` (a local engine name) becomes a fresh name; ``$E2`` is
the second engine's ``DOCKER_HOST``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = ("doctor", "publish", "build", "merge", "inspect", "verify", "tags", "lint")
_COMMAND = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*polyarch\s+(" + "|".join(COMMANDS)
                      + r")\b")
_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.S | re.M)
_SHELL_LANGS = {"", "sh", "console", "bash", "shell"}


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
            *sorted((ROOT / "examples").rglob("README.md"))]


def _commands_in(text: str) -> list[str]:
    out = []
    for m in _FENCE.finditer(text):
        if m.group(1) not in _SHELL_LANGS:
            continue
        body = re.sub(r"\\\n\s*", " ", m.group(2))
        for line in body.splitlines():
            line = re.sub(r"\s{2,}#\s.*$", "", line.strip().removeprefix("$ ")).strip()
            line = re.sub(r"\s+", " ", line)
            if _COMMAND.match(line):
                out.append(line)
    return out


def extract() -> list[tuple[str, str]]:
    """(page relative to the repository, command) for every example, in page order."""
    return [(str(p.relative_to(ROOT)), c) for p in pages() for c in _commands_in(p.read_text())]


def command_of(example: str) -> tuple[str, list[str]]:
    """The subcommand and the words after it (environment assignments dropped)."""
    m = _COMMAND.match(example)
    assert m is not None, example
    return m.group(1), example[m.end():].split()


@dataclass(frozen=True)
class Example:
    page: str
    command: str
    #: Why the engine test does not run it; empty: it runs.
    why: str = ""
    #: Commands run first in the same directory (placeholders replaced the same way).
    setup: tuple[str, ...] = ()
    #: Text the output must contain.
    expect: tuple[str, ...] = ()
    #: Commands run after it to check what it did (e.g. ``docker run`` of the image).
    then: tuple[tuple[str, str], ...] = ()  # (command, text its output must contain)
    needs: tuple[str, ...] = ()  # "engine2", "podman", "git-tag"

    @property
    def runs(self) -> bool:
        return not self.why


SYNOPSIS = "a synopsis ([OPTIONAL] words), not a command"
ELIDED = "arguments elided ('...')"
NODE = ("a Node.js build (npm under QEMU for arm64) on the make-base images; the same"
        " job runs in tests/engine/")

KEYLESS = "keyless signing needs a CI provider's OIDC identity, which this machine has not"
SIGNED = ("needs a cosign key pair; tests/engine/test_signing.py makes one and runs the same"
          " publish and verify")

EXAMPLES: tuple[Example, ...] = (
    Example("README.md", "polyarch doctor"),
    Example("README.md", "polyarch publish -t registry.example.com/team/app:1.2.0 .",
            then=(("polyarch inspect registry.example.com/team/app:1.2.0", "linux/arm64"),)),
    Example("README.md", "polyarch build -o oci:app.tar .", expect=("app.tar",)),
    Example("README.md", "polyarch build --load -t app:dev .",
            then=(("docker run --rm --platform linux/arm64 app:dev", "aarch64"),)),
    Example("README.md", "polyarch verify oci:app.tar", expect=("verified",)),
    Example("docs/ci.md",
            "polyarch verify ghcr.io/org/app:1.2.0 --require-signature keyless"
            " --certificate-identity https://github.com/org/app/.github/workflows/release.yml"
            "@refs/tags/v1.2.0 --certificate-oidc-issuer"
            " https://token.actions.githubusercontent.com --require-attestation --no-deep",
            why=KEYLESS),
    Example("docs/ci.md",
            "polyarch verify registry.example.com/team/app:1.2.0 --require-signature"
            " cosign.pub --require-attestation --no-deep", why=SIGNED),
    Example("docs/engines.md", "polyarch publish --engine podman -t registry.example/app:1.0 .",
            needs=("podman",),
            then=(("polyarch inspect registry.example/app:1.0", "linux/amd64"),)),
    Example("docs/engines.md", "POLYARCH_ENGINE=auto polyarch publish ...", why=ELIDED),
    Example("docs/lint.md", "polyarch lint [DOCKERFILE] [--platform LIST]... [--target STAGE]",
            why=SYNOPSIS),
    Example("docs/migrating-a-build-script.md",
            "polyarch publish --output-file final_image_uri.txt",
            why="needs the page's project (name and version from package.json, prebuild"
                " steps): that is examples/sandbox, " + NODE + "test_sandbox_example.py"),
    Example("docs/signing.md",
            "COSIGN_PASSWORD=... polyarch publish --sign-key cosign.key"
            " -t registry.example.com/team/app:1.2.0 .", why=SIGNED),
    Example("docs/signing.md",
            "polyarch verify registry.example.com/team/app:1.2.0 --require-signature"
            " cosign.pub --require-attestation", why=SIGNED),
    Example("docs/signing.md",
            "polyarch verify ghcr.io/org/app:1.2.0 --require-signature keyless"
            " --certificate-identity https://github.com/org/app/.github/workflows/release.yml"
            "@refs/tags/v1.2.0 --certificate-oidc-issuer"
            " https://token.actions.githubusercontent.com --require-attestation", why=KEYLESS),
    Example("docs/split-builds.md",
            "polyarch build --platform linux/arm64 --push -t registry.example.com/team/app"
            " [CONTEXT]", why=SYNOPSIS),
    Example("docs/split-builds.md",
            "polyarch merge -t registry.example.com/team/app:1.2.0 -t"
            " registry.example.com/team/app:latest polyarch-build-linux-amd64.json"
            " polyarch-build-linux-arm64.json",
            setup=("polyarch build --platform linux/amd64 --push -t"
                   " registry.example.com/team/app .",
                   "polyarch build --platform linux/arm64 --push -t"
                   " registry.example.com/team/app ."),
            then=(("docker run --rm --pull always --platform linux/arm64"
                   " registry.example.com/team/app:latest uname -m", "aarch64"),)),
    Example("docs/split-builds.md",
            "polyarch build --platform linux/amd64 --push -t 127.0.0.1:5000/demo/app .",
            expect=("polyarch-build-linux-amd64.json",)),
    Example("docs/split-builds.md",
            "DOCKER_HOST=$E2 polyarch build --platform linux/arm64 --push -t"
            " 127.0.0.1:5000/demo/app .", needs=("engine2",),
            expect=("polyarch-build-linux-arm64.json",)),
    Example("docs/split-builds.md",
            "polyarch merge -t 127.0.0.1:5000/demo/app:1 polyarch-build-linux-*.json",
            needs=("engine2",),
            then=(("docker run --rm --pull always --platform linux/arm64"
                   " 127.0.0.1:5000/demo/app:1 uname -m", "aarch64"),
                  ("docker run --rm --pull always --platform linux/amd64"
                   " 127.0.0.1:5000/demo/app:1 uname -m", "x86_64"))),
    Example("docs/tags.md",
            "polyarch tags --image ghcr.io/acme/app --tag-spec 'type=semver,pattern={{version}}'"
            " --tag-spec 'type=semver,pattern={{major}}.{{minor}}' --tag-spec"
            " 'type=ref,event=branch' --tag-spec 'type=sha'", needs=("git-tag",),
            expect=("refs/tags/v1.2.3", "ghcr.io/acme/app:1.2.3\n", "ghcr.io/acme/app:1.2\n",
                    "ghcr.io/acme/app:latest\n", "latest: yes")),
    Example("docs/tags.md", "polyarch tags [--tag-spec SPEC ...] [--flavor F ...] [--image"
            " NAME ...]", why=SYNOPSIS),
    Example("examples/base-and-service/README.md", "polyarch publish",
            why=NODE + "test_examples.py::test_base_and_service_project"),
    Example("examples/base-and-service/README.md", "polyarch publish service",
            why=NODE + "test_examples.py::test_base_and_service_project"),
    Example("examples/base-and-service/README.md",
            "polyarch publish -t 127.0.0.1:5000/demo/app-base:0.1.0 --output-file base.txt"
            " base-and-service/base",
            why=NODE + "test_examples.py::test_base_and_service_by_hand"),
    Example("examples/cross-compile/README.md",
            "polyarch publish -t 127.0.0.1:5000/demo/cross-compile:0.1.0 examples/cross-compile",
            why="a C toolchain build on the make-base Debian image; the same publish runs in"
                " tests/engine/test_examples.py::"
                "test_cross_compile_example_runs_a_static_binary_per_platform"),
    Example("examples/sandbox/README.md",
            "polyarch publish --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt",
            why="for a network behind an inspecting proxy; " + NODE + "test_sandbox_example.py"),
    Example("examples/sandbox/README.md", "polyarch publish --output-file image-uri.txt",
            why=NODE + "test_sandbox_example.py::test_publishes_both_platforms_clean"),
    Example("examples/sandbox/README.md",
            "SANDBOX_IMAGE_TAG=pr-42 polyarch publish --skip-prebuild",
            why=NODE + "test_sandbox_example.py::test_tag_env_replaces_the_tag"),
    Example("examples/sandbox/README.md", "polyarch publish --repository 127.0.0.1:5001",
            why="needs a second registry on 127.0.0.1:5001; " + NODE + "test_sandbox_example.py"),
    Example("examples/sandbox/README.md",
            "polyarch publish --engine podman --output-file image-uri.txt --force",
            why=NODE + "test_sandbox_example.py::test_podman_publishes_the_same_job"),
)


def substitute(command: str, repo: str, local_name: str) -> str:
    for placeholder in ("registry.example.com/team/app", "registry.example/app",
                        "127.0.0.1:5000/demo/app"):
        command = command.replace(placeholder, repo)
    return re.sub(r"(?<![\w./-])app:dev\b", f"{local_name}:dev", command)
