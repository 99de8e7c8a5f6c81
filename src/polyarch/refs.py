"""Image references: ``[registry[:port]/]repository[:tag][@digest]``.

Follows the grammar of the distribution reference library (the one docker uses):
the first path component is a registry when it contains a ``.`` or ``:`` or is
``localhost``; otherwise the image lives on Docker Hub (``docker.io``), and a
one-component Docker Hub name gets the ``library/`` namespace.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"

# Every pattern is used with fullmatch: a "$" would also match before a final newline.
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_SHA256 = re.compile(r"sha256:[a-f0-9]{64}")
_HOST = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:.]+\])(?::([0-9]+))?"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ReferenceError(ValueError):
    """An image reference that cannot be parsed; the message says why."""


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository`` as docker prints it."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """The host to talk the distribution API to (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest if there is one, else the tag."""
        return self.digest or self.tag or "latest"

    def with_tag(self, tag: str) -> ImageRef:
        check_tag(tag)
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> ImageRef:
        check_digest(digest)
        return replace(self, digest=digest)

    def untagged(self) -> ImageRef:
        return replace(self, tag=None, digest=None)

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.registry)


def check_tag(tag: str) -> None:
    if not _TAG.fullmatch(tag):
        raise ReferenceError(
            f"invalid tag {tag!r}: a tag is 1-128 characters of letters, digits, '_', '.' and '-',"
            " not starting with '.' or '-'"
        )


def is_loopback_host(host: str) -> bool:
    """Whether ``host[:port]`` names this machine: ``localhost`` or a loopback IP address
    (a DNS name such as ``127.example.com`` is not)."""
    h = host.strip().lower()
    if h.startswith("["):
        h = h[1:].split("]", 1)[0]
    elif h.count(":") == 1:
        h = h.rsplit(":", 1)[0]
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_registry(host: str) -> None:
    """``host[:port]``: a DNS name or IP address, and a port (if any) in 1-65535."""
    m = _HOST.fullmatch(host)
    if not m:
        raise ReferenceError(f"invalid registry {host!r}: expected HOST or HOST:PORT")
    if m.group(1) is not None and not 1 <= int(m.group(1)) <= 65535:
        raise ReferenceError(f"invalid registry {host!r}: port {m.group(1)} is not in 1-65535")


def check_digest(digest: str) -> None:
    # Only sha256 is accepted: it is what registries and runtimes use, and the one this
    # client checks content against.
    if not _SHA256.fullmatch(digest):
        raise ReferenceError(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")


def parse_ref(text: str, *, default_tag: str | None = "latest") -> ImageRef:
    """Parse an image reference; raise :class:`ReferenceError` naming what is wrong.

    ``default_tag`` is applied when neither tag nor digest is given (``None`` keeps it empty).
    """
    s = text.strip()
    if not s:
        raise ReferenceError("empty image reference")
    bad = _CONTROL.search(s)
    if bad:
        raise ReferenceError(
            f"invalid image reference {text!r}: it contains {bad.group()!r} (a reference has no"
            " newlines or other control characters)"
        )
    if "://" in s:
        raise ReferenceError(
            f"invalid image reference {text!r}: drop the scheme (write host/repo:tag, not a URL)"
        )
    digest: str | None = None
    if "@" in s:
        s, digest = s.split("@", 1)
        check_digest(digest)
    # The tag is after the last ':' that follows the last '/'.
    tag: str | None = None
    slash = s.rfind("/")
    colon = s.rfind(":")
    if colon > slash:
        s, tag = s[:colon], s[colon + 1 :]
        check_tag(tag)
    parts = s.split("/")
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, path = first, parts[1:]
        try:
            check_registry(registry)
        except ReferenceError as e:
            raise ReferenceError(f"{e} in {text!r}") from None
    else:
        registry, path = DOCKER_HUB, parts
    if registry in {"index.docker.io", "registry-1.docker.io"}:
        registry = DOCKER_HUB
    if not path or not all(path):
        raise ReferenceError(f"invalid image reference {text!r}: empty repository path component")
    for comp in path:
        if comp.lower() == comp and _COMPONENT.fullmatch(comp):
            continue
        if comp != comp.lower():
            raise ReferenceError(
                f"invalid repository {'/'.join(path)!r} in {text!r}: repository names must be"
                f" lower case (try {'/'.join(path).lower()!r})"
            )
        raise ReferenceError(
            f"invalid repository component {comp!r} in {text!r}: use lower-case letters, digits"
            " and single separators ('.', '_', '__', '-')"
        )
    if registry == DOCKER_HUB and len(path) == 1:
        path = ["library", *path]
    repository = "/".join(path)
    if len(registry) + 1 + len(repository) > 255:
        raise ReferenceError(f"image name too long in {text!r} (255 characters at most)")
    if tag is None and digest is None:
        tag = default_tag
    return ImageRef(registry, repository, tag, digest)
