"""The ``[[image]]`` entries of a project (``[[tool.polyarch.image]]`` in pyproject.toml):
reading and checking them, their dependency order, and the options of one image.

Each entry takes the per-image keys of the top-level config (``platforms``,
``context``, ``file``, ``target``, ``build-args``, ``labels``, ``secrets``, ...) and
these of its own:

``name``        required, unique; what ``depends-on`` and ``polyarch publish NAME`` use
``depends-on``  names of images this one is built on; each is passed as a named build
                context pinned by digest: the dependency's verified OCI layout on local
                disk (``--build-context base=oci-layout://DIR@sha256:..``), so ``FROM
                base`` in the Dockerfile means "the base built and verified in this run"
``prebuild``    shell commands run in order in the project root before the build
                (not with ``--skip-prebuild``)
``version``     a literal, or ``{ from = "package.json", field = "version" }``,
                ``{ from = "pyproject.toml" }`` (project.version), ``{ from = "git" }``
                (the nearest tag, without a leading ``v``)
``name-from``   ``{ file = "package.json", field = "config.sandboxImageUri" }``: the image
                reference (its tag, if any, is the default tag); ``--repository`` /
                ``POLYARCH_REPOSITORY`` publishes it to another registry or repository
``tag-env``     an environment variable that, when set, overrides the tag
``tags``        explicit references; ``{version}`` is replaced (in ``build-args`` too)

Relative paths (``context``, ``file``) are relative to the config file's directory.
"""


from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyarch import config, proc
from polyarch.config import Options
from polyarch.errors import ConfigError, UsageError
from polyarch.refs import ImageRef, ReferenceError, check_tag, parse_ref

#: Keys of an [[image]] entry that mean the same as at the top level.
SHARED_KEYS = config.image_keys()
OWN_KEYS = ("name", "depends-on", "prebuild", "version", "name-from", "tag-env", "tags")


@dataclass(frozen=True)
class ImageSpec:
    name: str
    where: str  # "polyarch.toml: image 'web'" for messages
    shared: Mapping[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    prebuild: tuple[str, ...] = ()
    version: Any = None
    name_from: Mapping[str, str] | None = None
    tag_env: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Project:
    root: Path
    path: Path
    images: tuple[ImageSpec, ...]

    def get(self, name: str) -> ImageSpec:
        for i in self.images:
            if i.name == name:
                return i
        import difflib

        close = difflib.get_close_matches(name, [i.name for i in self.images], n=1)
        hint = f"did you mean {close[0]!r}?" if close else (
            "images: " + ", ".join(i.name for i in self.images))
        raise UsageError(f"no image named {name!r} in {self.path}", hint=hint)


def load_project(config_path: Path | None = None, cwd: Path | None = None) -> Project | None:
    found = config.read_config(config_path, cwd or Path.cwd())
    if found is None:
        return None
    path, data = found
    entries = data.get("image")
    if entries is None:
        return None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{path}: 'image' must be an array of tables ([[image]])")
    images: list[ImageSpec] = []
    for n, e in enumerate(entries, 1):
        images.append(_image(path, n, e))
    names = [i.name for i in images]
    dupes = sorted({x for x in names if names.count(x) > 1})
    if dupes:
        raise ConfigError(f"{path}: image name {dupes[0]!r} is used twice")
    for i in images:
        for d in i.depends_on:
            if d not in names:
                import difflib

                close = difflib.get_close_matches(d, names, n=1)
                raise ConfigError(f"{i.where}: depends-on {d!r} is not an image of this project",
                                  hint=f"did you mean {close[0]!r}?" if close else None)
    proj = Project(path.parent, path, tuple(images))
    order(proj, [])  # reject cycles early
    return proj


def _image(path: Path, n: int, e: dict[str, Any]) -> ImageSpec:
    name = e.get("name")
    where = f"{path}: image #{n}" if not isinstance(name, str) else f"{path}: image {name!r}"
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: 'name' is required (a string)")
    shared: dict[str, Any] = {}
    for k, v in e.items():
        if k in OWN_KEYS:
            continue
        if k not in SHARED_KEYS and k in config.RUN_KEYS:
            raise ConfigError(f"{where}: {k!r} applies to the whole run, not one image",
                              hint="set it at the top level of the file, or on the command line")
        if k not in SHARED_KEYS:
            import difflib

            close = difflib.get_close_matches(k, list(SHARED_KEYS + OWN_KEYS), n=1, cutoff=0.6)
            raise ConfigError(f"{where}: unknown key {k!r}",
                              hint=f"did you mean {close[0]!r}?" if close else None)
        shared[k] = v
    for k in ("context", "file", "dockerfile"):
        if isinstance(shared.get(k), str):
            shared[k] = str((path.parent / shared[k]).resolve())

    def strs(key: str, *, one: bool = True) -> tuple[str, ...]:
        v = e.get(key, [])
        if isinstance(v, str) and one:
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            example = {"depends-on": '["base"]', "prebuild": '["npm ci"]'}.get(key, '["..."]')
            raise ConfigError(f"{where}: {key!r} must be a list of strings, not"
                              f" {type(v).__name__} {str(v)[:60]!r}",
                              hint=f"write {key} = {example}")
        return tuple(v)

    name_from = e.get("name-from")
    if name_from is not None and not (isinstance(name_from, dict) and
                                      set(name_from) <= {"file", "field"} and "file" in name_from
                                      and all(isinstance(x, str) for x in name_from.values())):
        raise ConfigError(f"{where}: 'name-from' must be {{ file = \"package.json\", field ="
                          " \"config.sandboxImageUri\" }")
    version = e.get("version")
    sources = {"package.json", "pyproject.toml", "git"}
    if version is not None and not isinstance(version, str) and not (
            isinstance(version, dict) and isinstance(version.get("from"), str)
            and version["from"] in sources
            and set(version) <= {"from", "field"}
            and isinstance(version.get("field", ""), str)):
        raise ConfigError(f"{where}: 'version' must be a string or {{ from = \"package.json\""
                              " | \"pyproject.toml\" | \"git\", field = ... }")
    tag_env = e.get("tag-env")
    if tag_env is not None and not isinstance(tag_env, str):
        raise ConfigError(f"{where}: 'tag-env' must be the name of an environment variable")
    return ImageSpec(name=name, where=where, shared=shared,
                     depends_on=strs("depends-on", one=False),
                     prebuild=strs("prebuild", one=False), version=version,
                     name_from=name_from, tag_env=tag_env, tags=strs("tags"))


def order(project: Project, selected: Sequence[str]) -> list[ImageSpec]:
    """The images to build, dependencies first. ``selected`` empty: all of them.

    Iterative (a depends-on chain may be thousands of images long)."""
    wanted = [project.get(n) for n in selected] if selected else list(project.images)
    by_name = {i.name: i for i in project.images}
    out: list[ImageSpec] = []
    state: dict[str, str] = {}
    for root in wanted:
        if state.get(root.name) == "done":
            continue
        state[root.name] = "visiting"
        stack = [(root, iter(root.depends_on))]
        while stack:
            image, deps = stack[-1]
            name = next(deps, None)
            if name is None:
                stack.pop()
                state[image.name] = "done"
                out.append(image)
                continue
            dep = by_name[name] if name in by_name else project.get(name)
            if state.get(dep.name) == "done":
                continue
            if state.get(dep.name) == "visiting":
                chain = [i.name for i, _ in stack] + [dep.name]
                if len(chain) > 12:
                    chain = [*chain[:5], f"... {len(chain) - 10} more ...", *chain[-5:]]
                raise ConfigError(f"{project.path}: depends-on cycle: {' -> '.join(chain)}")
            state[dep.name] = "visiting"
            stack.append((dep, iter(dep.depends_on)))
    return out


# -- values --------------------------------------------------------------------------------

def _field(data: Any, dotted: str, where: str) -> Any:
    cur = data
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise ConfigError(f"{where}: field {dotted!r} not found")
        cur = cur[part]
    return cur


def resolve_version(spec: ImageSpec, root: Path) -> str | None:
    v = spec.version
    if v is None or isinstance(v, str):
        return v
    src = v["from"]
    if src == "git":
        r = proc.run(["git", "describe", "--tags", "--abbrev=0"], cwd=root, echo=False,
                     error=lambda _: ConfigError(
                         f"{spec.where}: version from git: no tag reachable from HEAD"))
        return r.stdout.strip().removeprefix("v")
    path = root / src
    try:
        if src == "package.json":
            data = json.loads(path.read_text())
            value = _field(data, v.get("field", "version"), f"{spec.where}: {path}")
        else:
            import tomllib

            data = tomllib.loads(path.read_text())
            value = _field(data, v.get("field", "project.version"), f"{spec.where}: {path}")
    except OSError as e:
        raise ConfigError(f"{spec.where}: cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise ConfigError(f"{spec.where}: {path} is not valid: {e}") from None
    except RecursionError:
        raise ConfigError(f"{spec.where}: {path} is not valid: nested too deeply") from None
    if not isinstance(value, str | int | float) or str(value) == "":
        raise ConfigError(f"{spec.where}: the version in {path} is empty or not a string")
    return str(value)


def resolve_tags(spec: ImageSpec, root: Path, version: str | None,
                 env: Mapping[str, str], repository: str | None = None) -> tuple[ImageRef, ...]:
    """The final references of an image. Never yields a tag such as 'undefined': a
    missing version or tag is an error, or 'latest' where no version source is set."""
    refs: list[ImageRef] = []
    raw = list(spec.tags)
    if not raw and spec.name_from is not None:
        path = root / spec.name_from["file"]
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(f"{spec.where}: cannot read {path}: {e}") from None
        except RecursionError:
            raise ConfigError(f"{spec.where}: cannot read {path}: nested too deeply") from None
        value = _field(data, spec.name_from.get("field", "name"), f"{spec.where}: {path}")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{spec.where}: {path}: the image name field is empty")
        raw = [value]
    for t in raw:
        if "{version}" in t and version is None:
            raise ConfigError(f"{spec.where}: tag {t!r} uses {{version}} but no 'version' is set")
        text = t.replace("{version}", version or "")
        try:
            # A reference without a tag gets the version, else 'latest'.
            ref = parse_ref(text, default_tag=None)
        except ReferenceError as e:
            raise ConfigError(f"{spec.where}: {e}") from None
        if ref.tag is None and ref.digest is None:
            ref = ref.with_tag(version or "latest")
        if repository is not None and not spec.tags:
            ref = config.rehome(ref, repository)  # --repository: name-from names only
        refs.append(ref)
    override = env.get(spec.tag_env or "", "") if spec.tag_env else ""
    if override:
        try:
            check_tag(override)
        except ReferenceError as e:
            raise UsageError(f"environment variable {spec.tag_env}: {e}") from None
        refs = [r.with_tag(override) for r in refs]
    unique: list[ImageRef] = []
    for r in refs:
        if r not in unique:
            unique.append(r)
    return tuple(unique)


def image_options(spec: ImageSpec, base: Options, root: Path, env: Mapping[str, str],
                  deps: Mapping[str, str], contexts: Mapping[str, str] | None = None) -> Options:
    """Options for one image: the top-level options, this entry's keys, its tags, and its
    dependencies as digest-pinned build contexts (``contexts``: name -> context value;
    ``deps``: name -> the final ``REPO@sha256:...`` it will be published as, for labels)."""
    values: dict[str, Any] = {}
    for k, v in spec.shared.items():
        config._apply(values, k, v, spec.where, from_file=True)
    version = resolve_version(spec, root)
    if version is not None:
        values["build_args"] = {k: x.replace("{version}", version)
                                for k, x in values.get("build_args", base.build_args).items()}
    tags = resolve_tags(spec, root, version, env, base.repository)
    contexts_given = dict(contexts or {})
    contexts = dict(values.get("build_contexts", base.build_contexts))
    labels = dict(values.get("labels", base.labels))
    for name, pinned in deps.items():
        contexts[name] = (contexts_given or {}).get(name) or f"docker-image://{pinned}"
        labels[f"io.polyarch.depends.{name}"] = pinned
    if len(deps) == 1:
        pinned = next(iter(deps.values()))
        ref, _, digest = pinned.partition("@")
        labels["org.opencontainers.image.base.name"] = ref
        labels["org.opencontainers.image.base.digest"] = digest
    values["build_contexts"] = contexts
    values["labels"] = labels
    if tags:
        values["tags"] = tags
    if "context" not in values:
        values["context"] = str(root)
    return config.override(base, values, spec.where)
