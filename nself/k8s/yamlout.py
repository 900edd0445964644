"""Deterministic YAML for generated files: key order as built, block style,
multi-line strings as literal blocks, no line folding."""
from __future__ import annotations

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


def _str(dumper, value: str):
    style = "|" if "\n" in value and not value.endswith((" ", "\t")) and "\r" not in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Out.add_representer(str, _str)


def dump(document) -> str:
    return yaml.dump(document, Dumper=_Out, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1 << 30)


def dump_all(documents: Iterable, header: str = "") -> str:
    body = "---\n".join(dump(d) for d in documents)
    return header + body
