"""The Compose Specification's merge rules (13-merge.md and `extends`).

Mappings merge key by key, sequences append, `command`/`entrypoint`/
`healthcheck.test` are replaced, ports/volumes/secrets/configs merge by their
unique key, and `!reset`/`!override` remove or replace what came before.
Inputs are normalised long forms (see normalize.py).
"""
from __future__ import annotations

from typing import Any

from nself.project.yamlio import Override, Reset

_REPLACED = {("command",), ("entrypoint",), ("healthcheck", "test")}
_DEDUPED = {"cap_add", "cap_drop", "expose", "external_links", "security_opt",
            "device_cgroup_rules", "profiles"}


def _port_key(port: dict) -> tuple:
    return (port.get("host_ip"), port.get("target"), port.get("published"),
            port.get("protocol", "tcp"))


def _target_key(item: dict) -> Any:
    return item.get("target")


_UNIQUE = {"ports": _port_key, "volumes": _target_key, "secrets": _target_key,
           "configs": _target_key}


def merge(base: Any, over: Any, path: tuple = ()) -> Any:
    """Merge `over` onto `base` as a later compose file (or an extending service) does."""
    if isinstance(over, Reset):
        return None
    if isinstance(over, Override):
        return over.value
    if isinstance(base, dict) and isinstance(over, dict) and path[-2:] not in _REPLACED:
        out = dict(base)
        for key, value in over.items():
            if isinstance(value, Reset):
                out.pop(key, None)
            elif key in out and _mergeable(path + (key,)):
                out[key] = merge(out[key], value, path + (key,))
            else:
                out[key] = _unwrap(value)
        return out
    if isinstance(base, list) and isinstance(over, list) and path[-1:] != ("command",):
        return _merge_list(base, over, path)
    return _unwrap(over)


def _mergeable(path: tuple) -> bool:
    return path[-1:] not in {("command",), ("entrypoint",)} and path[-2:] not in _REPLACED


def _merge_list(base: list, over: list, path: tuple) -> list:
    name = path[-1] if path else None
    keyer = _UNIQUE.get(name) if len(path) == 3 and path[0] == "services" else None
    if keyer is not None:
        merged = {keyer(i): i for i in base}
        for item in over:
            key = keyer(item)
            merged[key] = merge(merged[key], item, path + ("*",)) if key in merged else item
        return list(merged.values())
    items = base + [_unwrap(i) for i in over]
    if name in _DEDUPED:
        seen, unique = set(), []
        for item in items:
            marker = repr(item)
            if marker not in seen:
                seen.add(marker)
                unique.append(item)
        return unique
    return items


def _unwrap(value: Any) -> Any:
    if isinstance(value, Override):
        return value.value
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [_unwrap(v) for v in value if not isinstance(v, Reset)]
    return value
