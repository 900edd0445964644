"""Deterministic YAML for generated files: key order as built, block style,
multi-line strings as literal blocks, no line folding.

`dump` writes the block structure itself and asks PyYAML only once per distinct scalar
(generated files repeat the same labels, keys and values thousands of times), so the
bytes are PyYAML's (a test compares them) at a fraction of its per-node cost. Documents
holding what the fast path does not cover (multi-line strings, long keys, other types)
go through PyYAML whole."""
from __future__ import annotations

import re
from collections.abc import Iterable

import yaml

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Out(_Dumper):  # type: ignore[misc, valid-type]
    _resolved: dict = {}

    def ignore_aliases(self, data) -> bool:  # shared sub-dicts are written out, never as &id001
        return True

    def resolve(self, kind, value, implicit):
        """Tag resolution runs a regex per scalar; generated files repeat the same
        scalars (labels, keys) thousands of times, so remember the answers."""
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = self._resolved.get(key)
        if tag is None:
            tag = self._resolved[key] = super().resolve(kind, value, implicit)
        return tag


# Plain scalars a YAML 1.2 reader (kustomize, Helm, Go) types as something else: PyYAML's
# YAML 1.1 resolver would write `1e3`, `0o17` or `.Inf` bare, and kustomize reads a number.
_NOT_A_STRING = re.compile(
    r"^(?:[-+]?(?:\.[0-9_]+|[0-9_]+(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?|0o[0-7_]+|0x[0-9a-fA-F_]+"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|true|True|TRUE|false|False|FALSE|null|Null|NULL|~|)$")


def _str(dumper, value: str):
    if "\n" in value and not value.endswith((" ", "\t")) and "\r" not in value:
        style = "|"
    else:
        style = "'" if _NOT_A_STRING.match(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Out.add_representer(str, _str)


def pyyaml_dump(document) -> str:
    """The reference: PyYAML with nself's settings (what `dump` must equal)."""
    return yaml.dump(document, Dumper=_Out, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1 << 30)


class _Slow(Exception):
    """A node the fast path leaves to PyYAML."""


_SCALARS = (str, int, bool, float, type(None))
_values: dict[tuple[type, object], str] = {}
_keys: dict[tuple[type, object], str] = {}


def _cache_key(value) -> tuple[type, object]:
    """Equal values of one type share an entry, except 0.0 and -0.0 (equal, written apart)."""
    return (float, repr(value)) if type(value) is float else (type(value), value)


def _scalar(value) -> str:
    key = _cache_key(value)
    text = _values.get(key)
    if text is None:
        if key[0] not in _SCALARS:
            raise _Slow
        text = pyyaml_dump([value])[2:-1]          # "- <text>\n"
        if "\n" in text:                            # a literal block: indented by context
            raise _Slow
        _values[key] = text
    return text


def _key(value) -> str:
    key = _cache_key(value)
    text = _keys.get(key)
    if text is None:
        if key[0] not in _SCALARS:
            raise _Slow
        text = pyyaml_dump({value: 0})
        if not text.endswith(": 0\n") or "\n" in text[:-1] or text.startswith("? "):
            raise _Slow
        text = _keys[key] = text[:-4]
    return text


def _node(value, first: str, rest: str, out: list[str]) -> None:
    """A non-empty dict or list, its first line starting with `first`, the others with
    `rest` (PyYAML's block style: mapping values indented by two, sequences in a mapping
    not indented, `- ` items carrying their first key on the same line)."""
    prefix = first
    if type(value) is dict:
        for key, item in value.items():
            head = f"{prefix}{_key(key)}:"
            prefix = rest
            kind = type(item)
            if kind is dict or kind is list:
                if not item:
                    out.append(head + (" {}" if kind is dict else " []"))
                else:
                    out.append(head)
                    _node(item, rest + "  " if kind is dict else rest,
                          rest + "  " if kind is dict else rest, out)
            else:
                out.append(f"{head} {_scalar(item)}")
        return
    for item in value:
        head = prefix + "- "
        prefix = rest
        kind = type(item)
        if kind is dict or kind is list:
            if item:
                _node(item, head, rest + "  ", out)
            else:
                out.append(head + ("{}" if kind is dict else "[]"))
        else:
            out.append(head + _scalar(item))


def dump(document) -> str:
    if type(document) not in (dict, list) or not document:
        return pyyaml_dump(document)
    out: list[str] = []
    try:
        _node(document, "", "", out)
    except _Slow:
        return pyyaml_dump(document)
    out.append("")
    return "\n".join(out)


def dump_all(documents: Iterable, header: str = "") -> str:
    body = "---\n".join(dump(d) for d in documents)
    return header + body
