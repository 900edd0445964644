"""Compose variable interpolation, as the Compose Specification defines it.

Supports `$NAME`, `${NAME}`, `${NAME:-d}`, `${NAME-d}`, `${NAME:?m}`,
`${NAME?m}`, `${NAME:+a}`, `${NAME+a}`, nesting inside the default/alt/message
and `$$` for a literal dollar. python-dotenv does none of this correctly, so
both the compose loader and the env-file cascade use this module.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from nself.errors import ConfigError

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")
# `${A:-${B:-…}}` deeper than this is refused (thousands of levels would exhaust the stack).
MAX_NESTING = 50


@dataclass
class Substitution:
    """What one interpolation pass looked at (for secret tracking and warnings)."""

    used: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    # Lenient: a failed `${X:?}` counts as missing instead of stopping the load (used when
    # generating for an environment whose secrets are not on this machine).
    lenient: bool = False


def interpolate(text: str, variables: Mapping[str, str], *, where: str = "",
                seen: Substitution | None = None) -> str:
    """Return `text` with variables substituted; raise ConfigError for `${X:?m}`."""
    if "$" not in text:
        return text
    return _expand(text, variables, where, seen if seen is not None else Substitution())


def _expand(text: str, variables: Mapping[str, str], where: str, seen: Substitution,
            depth: int = 0) -> str:
    if depth > MAX_NESTING:
        raise ConfigError(f"interpolation nested more than {MAX_NESTING} levels deep{_at(where)}",
                          hint="nest fewer ${...:-${...}} defaults inside each other")
    parts: list[str] = []
    pos, n = 0, len(text)
    while pos < n:
        dollar = text.find("$", pos)
        if dollar < 0:
            parts.append(text[pos:])
            break
        parts.append(text[pos:dollar])
        pos = dollar
        if text.startswith("$$", pos):
            parts.append("$")
            pos += 2
        elif text.startswith("${", pos):
            value, pos = _braced(text, pos + 2, variables, where, seen, depth)
            parts.append(value)
        elif match := _NAME.match(text, pos + 1):
            parts.append(_lookup(match.group(), variables, seen))
            pos = match.end()
        else:
            parts.append("$")
            pos += 1
    return "".join(parts)


def _braced(text: str, pos: int, variables: Mapping[str, str], where: str,
            seen: Substitution, depth: int) -> tuple[str, int]:
    match = _NAME.match(text, pos)
    if not match:
        raise ConfigError(f"invalid interpolation {text!r}{_at(where)}",
                          hint="a variable name starts with a letter or '_' "
                               "(write '$$' for a literal dollar)")
    name, pos = match.group(), match.end()
    if text.startswith("}", pos):
        return _lookup(name, variables, seen), pos + 1
    op = next((o for o in _OPERATORS if text.startswith(o, pos)), None)
    if op is None:
        raise ConfigError(f"invalid interpolation {text!r}{_at(where)}",
                          hint="Compose supports ${VAR}, ${VAR:-default}, ${VAR-default}, "
                               "${VAR:?error}, ${VAR?error}, ${VAR:+alt} and ${VAR+alt}")
    # The argument is only expanded when it is used: `${A:-${B:?x}}` is fine while A is set.
    end = _closing_brace(text, pos + len(op), where)
    raw_arg = text[pos + len(op):end]
    pos = end + 1
    is_set = name in variables
    value = variables.get(name, "")
    present = bool(value) if op.startswith(":") else is_set
    seen.used.add(name)
    if op.endswith("-"):
        if present:
            return value, pos
        return _expand(raw_arg, variables, where, seen, depth + 1), pos
    if op.endswith("+"):
        if present:
            return _expand(raw_arg, variables, where, seen, depth + 1), pos
        return "", pos
    arg = _expand(raw_arg, variables, where, seen, depth + 1)
    # '?' and ':?': mandatory
    if present:
        return value, pos
    if seen.lenient:
        seen.missing.add(name)
        return value, pos
    state = "empty" if is_set else "unset"
    raise ConfigError(f"required variable {name} is {state}{_at(where)}: {arg or 'no message'}",
                      hint=f"set {name} in the environment's env file (see `nself config.env`)")


def _lookup(name: str, variables: Mapping[str, str], seen: Substitution) -> str:
    seen.used.add(name)
    if name not in variables:
        seen.missing.add(name)
        return ""
    return variables[name]


def _closing_brace(text: str, pos: int, where: str) -> int:
    """Index of the `}` that closes the `${` whose argument starts at `pos`."""
    depth = 0
    while pos < len(text):
        if text.startswith("$$", pos):
            pos += 2
            continue
        if text.startswith("${", pos):
            depth += 1
            pos += 2
            continue
        if text[pos] == "}":
            if depth == 0:
                return pos
            depth -= 1
        pos += 1
    raise ConfigError(f"invalid interpolation {text!r}{_at(where)}: missing closing '}}'",
                      hint="close every '${' with '}', or write '$$' for a literal dollar")


def _at(where: str) -> str:
    return f" in {where}" if where else ""

