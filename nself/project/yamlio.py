"""YAML reading shared by the compose loader and nself.yml: fast C loader,
Compose's `!reset`/`!override` tags, and key paths mapped back to line numbers."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nself.errors import ConfigError

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Reset:
    """`!reset`: drop the value inherited from earlier files."""

    value: Any = None


@dataclass(frozen=True)
class Override:
    """`!override`: replace the inherited value instead of merging with it."""

    value: Any = None


# Aliases are shared, not copied, while loading, but every later step walks the expanded
# tree: a 300-byte "billion laughs" file would take minutes and gigabytes. Nodes reached only
# through aliases beyond this many are refused.
MAX_ALIAS_EXPANSION = 100_000


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """Duplicate keys are refused, as `docker compose` does (PyYAML would keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "in a mapping", node.start_mark,
                    f"found duplicate key {key!r} (first at line {seen[key].line + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _tagged(cls):
    def construct(loader, node):
        if isinstance(node, yaml.MappingNode):
            return cls(loader.construct_mapping(node, deep=True))
        if isinstance(node, yaml.SequenceNode):
            return cls(loader.construct_sequence(node, deep=True))
        value = loader.construct_scalar(node)
        return cls(None if value in ("", "null", "~") else value)
    return construct


_Loader.add_constructor("!reset", _tagged(Reset))
_Loader.add_constructor("!override", _tagged(Override))

_BOOL, _INT, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
CORE_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
# Each number starts with a digit: `_` or `._` alone are strings, not a crash in int()/float().
CORE_INT = re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7][0-7_]*|0x[0-9a-fA-F][0-9a-fA-F_]*)$")
CORE_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9][0-9_]*|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
                        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")


class _ComposeLoader(_Loader):
    """YAML 1.2 core schema, as Compose reads files (compose-go uses go-yaml v3): `yes`,
    `no`, `on`, `off` and `12:30` stay strings; `0o17` is octal and `1e3` a float; a
    leading-zero integer (`0755`) is octal as Go's ParseInt(s, 0) reads it."""


_ComposeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT, _TIMESTAMP)]
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()}
_ComposeLoader.add_implicit_resolver(_BOOL, CORE_BOOL, list("tTfF"))
_ComposeLoader.add_implicit_resolver(_INT, CORE_INT, list("-+0123456789"))
_ComposeLoader.add_implicit_resolver(_FLOAT, CORE_FLOAT, list("-+0123456789."))


def _core_int(loader, node) -> int | float:
    text = loader.construct_scalar(node).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits[:2] in ("0o", "0x"):
        return sign * int(digits[2:], 8 if digits[1] == "o" else 16)
    if len(digits) > 1 and digits.startswith("0"):
        try:
            return sign * int(digits, 8)
        except ValueError:  # `08`: not octal; Go then reads it as a float
            return sign * float(digits)
    return sign * int(digits)


_ComposeLoader.add_constructor(_INT, _core_int)


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}",
                          hint="check the path (relative paths start at the file that names them)") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} is a directory, not a file: {path}",
                          hint="point at the YAML file inside it") from None
    except PermissionError:
        raise ConfigError(f"cannot read {what} {path}: permission denied",
                          hint=f"make it readable: chmod u+r {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text", hint="save it as UTF-8") from None


def parse(text: str, path: Path, what: str, compose: bool = False) -> Any:
    """`compose`: read with the YAML 1.2 core schema Compose uses (else YAML 1.1, as Invoke
    reads nself.yml)."""
    loader = (_ComposeLoader if compose else _Loader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        extra = _expanded(node, {}) - _count(node, set())
        if extra > MAX_ALIAS_EXPANSION:
            raise ConfigError(f"{path}: {what} expands its aliases (*name) into more than "
                              f"{MAX_ALIAS_EXPANSION:,} extra values",
                              hint="repeat less through anchors and aliases; is this file "
                                   "what you meant to load?")
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigError(f"{path}: {what} is nested too deeply to read",
                          hint="flatten the structure (a few dozen levels is plenty)") from None
    except (ValueError, TypeError) as exc:   # a constructor that cannot read a scalar
        raise ConfigError(f"{path}: {what} has a value that cannot be read: {exc}",
                          hint="quote the value to keep it a string") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start is not None and (not mark or start.line != mark.line):
            problem += f" ({context} that starts at line {start.line + 1})"
        raise ConfigError(f"{where}: {what} is not valid YAML: {problem}",
                          hint="fix the indentation or quoting at that line "
                               "(values with ':' or '#' need quotes)") from None
    finally:
        loader.dispose()


def _expanded(node, memo: dict) -> int:
    """Nodes in the tree as every alias expanded would make it (shared subtrees counted once
    per use; `memo` by node identity keeps this linear in the file's size)."""
    key = id(node)
    if key not in memo:
        memo[key] = 0   # a recursive alias counts as itself only
        memo[key] = 1 + sum(_expanded(child, memo) for child in _children(node))
    return memo[key]


def _count(node, seen: set) -> int:
    """Distinct nodes, as written."""
    if id(node) in seen:
        return 0
    seen.add(id(node))
    return 1 + sum(_count(child, seen) for child in _children(node))


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    return [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else []


def load(path: Path, what: str, compose: bool = False) -> tuple[Any, str]:
    text = read_text(path, what)
    return parse(text, path, what, compose), text


def line_of(text: str, keys: list) -> int | None:
    """1-based line of the node at `keys` (mapping keys / list indexes), or its nearest parent."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(key)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line
