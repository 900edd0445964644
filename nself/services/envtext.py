"""A service's variables in a dotenv file's text: one marked block, added and removed whole.

`nself service NAME enable` appends

    # nself service NAME (added by `nself service NAME enable`)
    KEY=value

and `disable` removes exactly the marker line and the lines right after it that set the
service's keys, so the rest of the file (the user's comments, order, spacing) is untouched.
A key the file already sets is left to the user: it is neither added again nor removed.
"""
from __future__ import annotations

import re


def marker(service: str) -> str:
    return f"# nself service {service} (added by `nself service {service} enable`)\n"


def defined(text: str) -> set[str]:
    """The keys a dotenv text sets (`KEY=…`, `export KEY=…`)."""
    return {m.group(1) for m in re.finditer(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", text, re.M)}


def add(text: str, service: str, values: dict[str, str]) -> str:
    """`text` with a marked block setting those of `values` the text does not set yet."""
    new = {k: v for k, v in values.items() if k not in defined(text)}
    if not new:
        return text
    sep = "" if not text or text.endswith("\n") else "\n"
    return text + sep + marker(service) + "".join(f"{k}={v}\n" for k, v in new.items())


def remove(text: str, service: str, keys: set[str]) -> str:
    """`text` without the marked block of `service` (only its own keys' lines go)."""
    lines = text.splitlines(keepends=True)
    out, i = [], 0
    while i < len(lines):
        if lines[i] == marker(service) or lines[i] == marker(service).rstrip("\n"):
            i += 1
            while i < len(lines) and lines[i].split("=", 1)[0].strip() in keys:
                i += 1
            continue
        out.append(lines[i])
        i += 1
    return "".join(out)


def replace(text: str, key: str, value: str) -> str | None:
    """`text` with the value of `key`'s (last) `KEY=…` line replaced, the line kept where it
    is; None when the text does not set `key`."""
    lines = text.splitlines(keepends=True)
    pattern = re.compile(rf"^\s*(?:export\s+)?{re.escape(key)}\s*=")
    found = [i for i, line in enumerate(lines) if pattern.match(line)]
    if not found:
        return None
    i = found[-1]
    prefix = lines[i][:pattern.match(lines[i]).end()]
    lines[i] = f"{prefix}{value}\n"
    return "".join(lines)
