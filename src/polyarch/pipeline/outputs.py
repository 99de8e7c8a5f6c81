"""Where ``polyarch build`` puts the verified image, chosen as buildx chooses it:

- ``-o oci:PATH``: an OCI image layout directory, or an archive when PATH ends in ``.tar``
  (buildx: ``--output type=oci[,tar=false],dest=PATH``);
- ``--load``: into the local engine under the ``-t`` names (every platform with Docker's
  containerd image store; podman keeps the host's platform);
- ``--push``: to the ``-t`` repository by digest (handled by the pipeline);
- none of them: the verified layout stays in the cache and its path is printed.

Every destination is checked before the build starts (also in a dry run), so a bad
path never costs a build.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from polyarch.errors import UsageError
from polyarch.pipeline.build import Built
from polyarch.session import Session


@dataclass(frozen=True)
class OutputPlan:
    oci: Path | None = None  # -o oci:PATH
    load: bool = False
    push: bool = False

    @property
    def archive(self) -> bool:
        return self.oci is not None and self.oci.name.endswith(".tar")


def parse_output(spec: str | None) -> Path | None:
    """``oci:PATH`` (also buildx's ``type=oci,dest=PATH``) -> PATH."""
    if spec is None:
        return None
    if spec.startswith("oci:") and len(spec) > 4:
        return Path(spec[4:])
    if spec.startswith("type=oci"):
        fields = dict(f.partition("=")[::2] for f in spec.split(",") if "=" in f)
        if fields.get("dest"):
            path = Path(fields["dest"])
            if fields.get("tar", "true") == "false" or path.name.endswith(".tar"):
                return path
            raise UsageError(f"-o {spec}: polyarch writes an archive only to a PATH ending in"
                             " .tar", hint="name the file PATH.tar, or add tar=false for a"
                             " layout directory")
    raise UsageError(f"-o {spec}: unknown output",
                     hint="use -o oci:PATH (a layout directory, or an archive if PATH ends in"
                          " .tar), --load or --push")


def _is_layout_dir(path: Path) -> bool:
    return (path / "oci-layout").is_file() and (path / "index.json").is_file()


def _is_layout_tar(path: Path) -> bool:
    try:
        with tarfile.open(path) as t:
            return any(n in ("oci-layout", "./oci-layout") for n in t.getnames())
    except (OSError, tarfile.TarError):
        return False


def check(s: Session, out: OutputPlan) -> None:
    """Refuse, before building, an output that cannot be written (exit 2)."""
    if (out.load or out.push) and not s.opts.tags:
        flag = "--load" if out.load else "--push"
        raise UsageError(f"{flag} needs a name: pass -t/--tag REGISTRY/REPO[:TAG]")
    if out.oci is None:
        return
    path = out.oci
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"-o oci:{path}: the directory {parent} does not exist",
                         hint="create it first, or choose another path")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"-o oci:{path}: {parent} is not writable")
    if out.archive:
        if path.is_dir():
            raise UsageError(f"-o oci:{path}: is a directory, not an archive")
        if path.exists() and not _is_layout_tar(path):
            raise UsageError(f"-o oci:{path}: exists and is not an OCI archive; polyarch"
                             " does not overwrite it", hint="remove it or choose another path")
    elif path.exists():
        if not path.is_dir():
            raise UsageError(f"-o oci:{path}: exists and is not a directory",
                             hint="remove it, choose another path, or end PATH in .tar for"
                                  " an archive")
        if any(path.iterdir()) and not _is_layout_dir(path):
            raise UsageError(f"-o oci:{path}: the directory is not empty and is not an OCI"
                             " layout; polyarch does not overwrite it",
                             hint="remove it or choose another path")


def describe(s: Session, out: OutputPlan) -> str:
    said = []
    if out.oci is not None:
        said.append(f"write it to {'the archive' if out.archive else 'the layout'} {out.oci}")
    if out.load:
        said.append(f"load it into {s.engine.name} as {', '.join(map(str, s.opts.tags))}")
    if out.push:
        said.append(f"push it by digest to {s.opts.tags[0].name}")
    return ", ".join(said) or "keep it in the cache"


def _copy_layout(src: Path, dest: Path) -> None:
    """Copy a layout directory, hard-linking blobs where the filesystem allows."""
    tmp = dest.parent / f".{dest.name}.polyarch-tmp"
    shutil.rmtree(tmp, ignore_errors=True)

    def link_or_copy(a: str, b: str) -> object:
        try:
            os.link(a, b)
            return b
        except OSError:
            return shutil.copy2(a, b)

    shutil.copytree(src, tmp, copy_function=link_or_copy,
                    ignore=shutil.ignore_patterns("ingest"))
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def write(s: Session, out: OutputPlan, built: Built) -> list[str]:
    """Write every requested local output; returns what was done, in words."""
    from polyarch.engines.loading import write_archive

    done: list[str] = []
    if out.oci is not None:
        try:
            if out.archive:
                tmp = out.oci.parent / f".{out.oci.name}.polyarch-tmp"
                write_archive(built.layout, [str(t) for t in s.opts.tags], tmp)
                tmp.replace(out.oci)
                done.append(f"wrote the OCI archive {out.oci}")
            else:
                _copy_layout(built.layout, out.oci)
                done.append(f"wrote the OCI layout {out.oci}")
        except OSError as e:
            raise UsageError(f"-o oci:{out.oci}: cannot write: {e.strerror or e}") from None
    if out.load:
        which = s.engine.load(built.layout, [str(t) for t in s.opts.tags])
        done.append(f"loaded into {s.engine.name} as {', '.join(map(str, s.opts.tags))}:"
                    f" {which}")
    return done
