"""Add or remove one service block in a compose file's text, leaving every other byte alone.

A round-trip through a YAML library re-flows what it does not model (blank lines between
services, comments above a key); editing the text at the lines YAML reports keeps them.
Every edit is then checked: the new text, parsed, must equal the old one with exactly that
service (and its named volumes) added or removed. A file whose shape defeats the line edit
(flow-style `services: {…}`, anchors spanning the block, …) fails that check and is refused
(ConfigError, exit 3) before anything is written.
"""
from __future__ import annotations

import copy

import yaml

from nself.errors import ConfigError

_REFUSED_HINT = "add or remove the service by hand, then run `nself config.validate`"


def _top(text: str) -> yaml.MappingNode:
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError("the compose file is not a mapping", hint=_REFUSED_HINT)
    return node


def _child(node: yaml.MappingNode, key: str):
    """(key node, value node) of `key` in a mapping node, or (None, None)."""
    for k, v in node.value:
        if k.value == key:
            return k, v
    return None, None


def _block_end(lines: list[str], start: int, stop: int) -> int:
    """The line after a block's last content line in [start, stop): trailing blank lines and
    the comment lines that introduce the next key are not part of it."""
    end = stop
    while end > start and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return end


def _block_start(lines: list[str], key_line: int) -> int:
    """A key's first line: the comment lines right above it, and one blank line above them."""
    start = key_line
    while start > 0 and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    if start > 0 and not lines[start - 1].strip():
        start -= 1
    return start


def _entry_range(lines: list[str], mapping: yaml.MappingNode, key: str, section_end: int) -> tuple[int, int]:
    """Lines [start, end) of `key`'s entry inside `mapping`, whose section ends at `section_end`."""
    keys = [k.start_mark.line for k, _ in mapping.value]
    line = _child(mapping, key)[0].start_mark.line
    later = [n for n in keys if n > line]
    end = _block_end(lines, line + 1, min(later) if later else section_end)
    return _block_start(lines, line), end


def _section(lines: list[str], top: yaml.MappingNode, name: str) -> tuple[yaml.Node | None, int]:
    """A top-level section's value node and the line its text ends at (the next top-level key)."""
    key, value = _child(top, name)
    if key is None:
        return None, len(lines)
    later = [k.start_mark.line for k, _ in top.value if k.start_mark.line > key.start_mark.line]
    return value, min(later) if later else len(lines)


def _indent(mapping: yaml.MappingNode, default: int = 2) -> int:
    return mapping.value[0][0].start_mark.column if mapping.value else default


def _indented(text: str, width: int) -> list[str]:
    pad = " " * width
    return [pad + line if line.strip() else line for line in text.splitlines(keepends=True)]


def add(text: str, compose_name: str, fragment: str, volumes: list[str]) -> str:
    """`text` with the service block `fragment` (top-level YAML, as in fragments/) appended to
    `services:` and its named `volumes` to the top-level `volumes:` (made when missing)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    top = _top(text)
    services, services_end = _section(lines, top, "services")
    if not isinstance(services, yaml.MappingNode) or services.flow_style:
        raise ConfigError("the compose file cannot be edited safely: its `services:` is not a block mapping",
                          hint=_REFUSED_HINT)
    insert_at = _block_end(lines, services.start_mark.line, services_end)
    block = ["\n", *_indented(fragment, _indent(services))]
    volume_edit = _add_volumes(lines, top, [v for v in volumes if v not in _names(top, "volumes")])
    new = _apply(lines, [(insert_at, insert_at, block), *volume_edit])
    _check(text, new, lambda doc: _with(doc, compose_name, fragment, volumes))
    return new


def _add_volumes(lines, top, missing: list[str]) -> list[tuple[int, int, list[str]]]:
    if not missing:
        return []
    node, end = _section(lines, top, "volumes")
    if node is None or (isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null")):
        return [(len(lines), len(lines), ["\n", "volumes:\n", *(f"  {v}:\n" for v in missing)])] if node is None \
            else []   # an empty `volumes:` section is refused by _check (the line edit cannot fill it)
    if not isinstance(node, yaml.MappingNode) or node.flow_style:
        return []
    at = _block_end(lines, node.start_mark.line, end)
    return [(at, at, [f"{' ' * _indent(node)}{v}:\n" for v in missing])]


def remove(text: str, compose_name: str, volumes: list[str]) -> str:
    """`text` without the service `compose_name`, and without those of its named `volumes` no
    other service mounts (the `volumes:` section goes too when it is left empty)."""
    lines = text.splitlines(keepends=True)
    top = _top(text)
    services, services_end = _section(lines, top, "services")
    if not isinstance(services, yaml.MappingNode) or services.flow_style:
        raise ConfigError("the compose file cannot be edited safely: its `services:` is not a block mapping",
                          hint=_REFUSED_HINT)
    edits = [(*_entry_range(lines, services, compose_name, services_end), [])]
    still_used = _mounted(yaml.safe_load(text), exclude=compose_name)
    unused = [v for v in volumes if v in _names(top, "volumes") and v not in still_used]
    edits += _remove_volumes(lines, top, unused)
    new = _apply(lines, edits)
    _check(text, new, lambda doc: _without(doc, compose_name, unused))
    return new


def _remove_volumes(lines, top, unused: list[str]) -> list[tuple[int, int, list[str]]]:
    if not unused:
        return []
    node, end = _section(lines, top, "volumes")
    if len(unused) == len(node.value):   # the section would be empty: it goes whole
        key = _child(top, "volumes")[0]
        return [(_block_start(lines, key.start_mark.line), _block_end(lines, key.start_mark.line + 1, end), [])]
    return [(*_entry_range(lines, node, v, end), []) for v in unused]


def _apply(lines: list[str], edits: list[tuple[int, int, list[str]]]) -> str:
    """Replace line ranges [start, end) by new lines, last range first so indices stay true."""
    out = list(lines)
    for start, end, new in sorted(edits, key=lambda e: e[0], reverse=True):
        out[start:end] = new
    return "".join(out)


def _names(top: yaml.MappingNode, section: str) -> set[str]:
    node = _child(top, section)[1]
    return {k.value for k, _ in node.value} if isinstance(node, yaml.MappingNode) else set()


def _mounted(doc: dict, exclude: str) -> set[str]:
    out = set()
    for name, svc in (doc.get("services") or {}).items():
        for v in (svc or {}).get("volumes", []) if name != exclude else []:
            source = v.split(":", 1)[0] if isinstance(v, str) else (v or {}).get("source")
            out.add(source)
    return out


def _with(doc: dict, compose_name: str, fragment: str, volumes: list[str]) -> dict:
    doc = copy.deepcopy(doc)
    doc["services"][compose_name] = yaml.safe_load(fragment)[compose_name]
    if volumes:
        doc["volumes"] = {**(doc.get("volumes") or {}), **{v: (doc.get("volumes") or {}).get(v) for v in volumes}}
    return doc


def _without(doc: dict, compose_name: str, volumes: list[str]) -> dict:
    doc = copy.deepcopy(doc)
    del doc["services"][compose_name]
    for v in volumes:
        del doc["volumes"][v]
    if "volumes" in doc and not doc["volumes"]:
        del doc["volumes"]
    return doc


def _check(old: str, new: str, expected) -> None:
    """Refuse (exit 3) unless `new` parses to exactly what the edit meant."""
    try:
        got = yaml.safe_load(new)
    except yaml.YAMLError:
        got = None
    if got != expected(yaml.safe_load(old)):
        raise ConfigError("the compose file cannot be edited safely: the change would not land "
                          "where nself expects (flow style, anchors or an unusual layout)",
                          hint=_REFUSED_HINT)
