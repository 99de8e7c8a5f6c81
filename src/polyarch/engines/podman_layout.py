"""OCI layouts as podman reads them: its ``oci:`` transport names what it reads after the
path, and it has no ``oci-layout://`` build context."""

from __future__ import annotations

import atexit
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from polyarch.errors import FatalError, RegistryError, UsageError

_REF_PATH = re.compile(r"^(/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+$")
_aliases: dict[str, Path] = {}  # layout -> its link's directory


def oci_path(layout: Path) -> str:
    """A path to ``layout`` that podman's ``oci:`` transport accepts. Podman names what it
    reads after the path, so a path that is no valid image name (``~/.cache/...``, upper
    case) is reached through a symbolic link in a fresh lowercase directory, removed
    when polyarch exits."""
    text = str(layout.absolute())
    if _REF_PATH.match(text):
        return text
    if text in _aliases:  # one link per layout: podman names what it reads after it
        return str(_aliases[text] / "layout")
    alias = Path(tempfile.gettempdir()) / f"polyarch-oci-{secrets.token_hex(6)}"
    if not _REF_PATH.match(str(alias)):
        alias = Path("/tmp") / alias.name
    alias.mkdir(mode=0o700)
    (alias / "layout").symlink_to(layout.absolute(), target_is_directory=True)
    if not _aliases:
        atexit.register(_remove_aliases)
    _aliases[text] = alias
    return str(alias / "layout")


def pulled_name(ref: str) -> str | None:
    """The name podman gives an image it pulls from ``oci:PATH[:REF]`` (``podman run``
    of a layout, a build's ``FROM`` of a ``container-image://oci:`` context):
    ``localhost/PATH:latest``, whatever ``REF`` picked (libimage names such a pull after
    the path alone). ``None`` for another transport."""
    ref = ref.removeprefix("container-image://")
    if not ref.startswith("oci:"):
        return None
    path = ref.removeprefix("oci:").split(":", 1)[0]
    return f"localhost/{path.lstrip('/')}:latest"


class PulledNames:
    """The names podman gives the images it pulls from this run's layouts, taken off
    again afterwards: a name after a path of the run's cache would keep its image in
    podman's store for good (``podman image prune`` keeps named images). A name that was
    there before is the user's, and stays."""

    def __init__(self, podman: str) -> None:
        self.podman = podman
        self._theirs: set[str] = set()

    def new(self, refs: Iterable[str]) -> list[str]:
        """The names pulling ``refs`` will give (:func:`pulled_name`) that are not in
        podman's store yet; the others are remembered as the user's."""
        from polyarch import proc

        new = []
        for n in sorted({n for n in map(pulled_name, refs) if n is not None}):
            if n in self._theirs:
                continue
            try:
                # Not checked: the exit status is the answer (1: no such image).
                there = proc.run([self.podman, "image", "exists", n], check=False,
                                 echo=False, timeout=60).ok
            except FatalError:
                there = True  # no answer: never take off a name that may be the user's
            if there:
                self._theirs.add(n)
            else:
                new.append(n)
        return new

    def forget(self, refs: Iterable[str]) -> None:
        """Take off the names runs of ``refs`` left (those :meth:`new` found new)."""
        self.untag(sorted({n for n in map(pulled_name, refs)
                           if n is not None and n not in self._theirs}))

    def untag(self, names: Sequence[str]) -> None:
        from polyarch import proc

        for n in names:
            # Cleanup, not checked: a name already gone (a pull that failed) is no error;
            # a deadline passed is, and the caller reports it as a warning.
            proc.run([self.podman, "untag", n, n], check=False, echo=False, timeout=120)


def _remove_aliases() -> None:
    while _aliases:
        shutil.rmtree(_aliases.popitem()[1], ignore_errors=True)


def oci_layout_context(src: str) -> str:
    """A named context as podman takes it. Podman (4.3) has no ``oci-layout://`` but
    reads OCI layouts through its ``oci:`` transport: ``oci-layout://DIR[:TAG]`` becomes
    ``container-image://oci:DIR[:TAG]``. A ``@sha256:...`` pin is checked against the
    layout's index.json and becomes the entry's ref name, or no name when the layout
    holds that one image; other values pass unchanged."""
    if not src.startswith("oci-layout://"):
        return src
    rest = src.removeprefix("oci-layout://")
    path, at, digest = rest.partition("@")
    if at:
        path = oci_path(Path(path))
    if not at:
        head, colon, tag = path.rpartition(":")
        if colon and "/" not in tag:
            return f"container-image://oci:{head}:{tag}"
        return f"container-image://oci:{path}"
    from polyarch.registry.layout import read_index  # tarfile: on use

    try:
        entries = read_index(Path(path)).get("manifests") or []
    except RegistryError as e:
        if not (Path(path) / "index.json").exists():
            return f"container-image://oci:{path}"  # not there yet (dry run): podman says so
        raise UsageError(f"{src}: {e}") from None
    if not isinstance(entries, list):
        entries = []
    hit = [e for e in entries if isinstance(e, dict) and e.get("digest") == digest]
    if not hit:
        raise UsageError(f"{src}: the layout's index.json has no {digest}")
    ref_name = (hit[0].get("annotations") or {}).get("org.opencontainers.image.ref.name")
    if ref_name:
        return f"container-image://oci:{path}:{ref_name}"
    if len(entries) == 1:
        return f"container-image://oci:{path}"
    raise UsageError(f"{src}: podman selects an image of an OCI layout by name, and"
                     f" {digest} has none in a layout of {len(entries)} images")
