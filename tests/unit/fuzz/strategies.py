"""Hypothesis strategies for hostile input, and a TOML writer for generated tables."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import strategies as st

from polyarch import config
from polyarch.config import setting_kinds

#: Text an environment variable or a command-line argument can hold (no NUL: the
#: operating system cannot pass one; no lone surrogates: not encodable).
env_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
                   max_size=80)
#: Any string a file can spell (TOML and JSON escapes reach NUL and other controls).
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)

FILE_KEYS = sorted(o.key for o in config.OPTIONS)
# The settings of the run too, but those naming a directory or file (the cache directory,
# certs.d, the dotenv report): a generated absolute path would be made or probed.
ENV_NAMES = sorted([*(o.env for o in config.OPTIONS),
                    *(o.env for o in config.SETTINGS if o.kind is not setting_kinds.PATH)])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)


def nested(depth: int, kind: str) -> str:
    """JSON (or TOML value) text nested ``depth`` deep."""
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def toml_nested(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return "{a = " * depth + "1" + "}" * depth


deep_json = st.builds(nested, st.integers(1, 3000), st.sampled_from(["array", "object"]))
deep_toml = st.builds(toml_nested, st.integers(1, 3000), st.sampled_from(["array", "table"]))


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "inf" if math.isinf(v) and v > 0 else "-inf" if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)} = {toml_value(x)}"
                               for k, x in v.items()) + "}"
    if v is None:
        return '""'
    raise TypeError(type(v))


def toml_table(d: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}\n" for k, v in d.items())


toml_values = st.recursive(
    st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=10,
)
