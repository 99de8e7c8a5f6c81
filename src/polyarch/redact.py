"""Keep secret values out of what polyarch prints.

Registry passwords and tokens never reach output (they stay inside the registry
client); build secrets are passed by reference (``--secret id=x,src=FILE``). What can
carry a secret by accident is a build argument (``--build-arg NPM_TOKEN=...``) or an
environment variable's value appearing in a message. Both are masked here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|CREDENTIAL|PRIVATE|_KEY$|^KEY$|AUTH",
                         re.IGNORECASE)
MASK = "***"


class Masker:
    """Replaces the values of secret-looking environment variables in text."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.values = sorted({v for k, v in env.items() if SECRET_NAME.search(k) and len(v) >= 6},
                             key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for v in self.values:
            text = text.replace(v, MASK)
        return text


def argv(args: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """A command line fit to print: values of secret-looking build arguments and
    environment values masked."""
    mask = Masker(env)
    out: list[str] = []
    prev = ""
    for a in args:
        if prev == "--build-arg" and "=" in a:
            k, _, v = a.partition("=")
            a = f"{k}={MASK}" if SECRET_NAME.search(k) and v else a
        elif a.startswith("--build-arg="):
            k, _, v = a.removeprefix("--build-arg=").partition("=")
            a = f"--build-arg={k}={MASK}" if SECRET_NAME.search(k) and v else a
        out.append(mask(a))
        prev = a
    return out
