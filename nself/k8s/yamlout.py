"""Deterministic YAML for generated files: key order as built, block style,
multi-line strings as literal blocks, no line folding."""
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


def dump(document) -> str:
    return yaml.dump(document, Dumper=_Out, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1 << 30)


def dump_all(documents: Iterable, header: str = "") -> str:
    body = "---\n".join(dump(d) for d in documents)
    return header + body
