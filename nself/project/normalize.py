"""Short syntax → long syntax, list forms → maps, relative paths → absolute.

Runs on each compose file after interpolation and before merging, so the merge
rules and the model builder only ever see one form of each attribute.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from nself.errors import ConfigError
from nself.project.yamlio import Override, Reset

PORT_HINT = ("write ports as \"[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]\", "
             "e.g. \"8080:80\", \"127.0.0.1:5432:5432\", \"3000-3005\" or \"53:53/udp\"")
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_MODES = {"ro", "rw", "z", "Z", "nocopy", "cached", "delegated", "consistent",
          "shared", "rshared", "slave", "rslave", "private", "rprivate"}


def strip_tags(value: Any) -> Any:
    """The value without Compose merge tags (for schema validation and single files)."""
    if isinstance(value, Override):
        return strip_tags(value.value)
    if isinstance(value, dict):
        return {k: strip_tags(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [strip_tags(v) for v in value if not isinstance(v, Reset)]
    return value


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Override) else value


def _rewrap(original: Any, value: Any) -> Any:
    return Override(value) if isinstance(original, Override) else value


def scalar_str(value: Any) -> str | None:
    """Compose's string form of a scalar: booleans are lowercase, None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def list_or_dict(value: Any, sep: str = "=", where: str = "") -> dict[str, str | None]:
    if isinstance(value, dict):  # merge tags on single entries survive until the merge
        return {str(k): v if isinstance(v, (Reset, Override)) else scalar_str(v)
                for k, v in value.items()}
    out: dict[str, str | None] = {}
    for item in value or []:
        text = str(item)
        key, has_value, val = text.partition(sep)
        if not key.strip():
            raise ConfigError(f"invalid entry {text!r} in {where}", hint=f"write KEY{sep}value")
        out[key.strip()] = val if has_value else None
    return out


def resolve_path(path: str, base: Path) -> str:
    expanded = os.path.expanduser(path)
    return str((base / expanded).resolve()) if not os.path.isabs(expanded) else str(Path(expanded))


def _port_range(text: str, where: str, raw: Any) -> tuple[int, int]:
    match = _RANGE.match(text)
    if not match:
        raise ConfigError(f"invalid port {raw!r} in {where}", hint=PORT_HINT)
    low, high = int(match.group(1)), int(match.group(2) or match.group(1))
    if not (0 < low <= high <= 65535):
        raise ConfigError(f"invalid port {raw!r} in {where}: ports are 1-65535, ranges low-high",
                          hint=PORT_HINT)
    return low, high


def parse_port(raw: Any, where: str) -> list[dict]:
    """One short-syntax port → one long-syntax entry per container port."""
    if isinstance(raw, dict):
        port = dict(raw)
        if "target" not in port:
            raise ConfigError(f"port {raw!r} in {where} has no target", hint=PORT_HINT)
        low, _ = _port_range(str(port["target"]), where, raw)
        port["target"] = low
        if port.get("published") is not None:
            _port_range(str(port["published"]), where, raw)
            port["published"] = str(port["published"])
        port.setdefault("protocol", "tcp")
        return [port]
    text = str(raw).strip()
    rest, _, protocol = text.partition("/")
    protocol = protocol or "tcp"
    if protocol not in ("tcp", "udp", "sctp"):
        raise ConfigError(f"invalid port {raw!r} in {where}: unknown protocol {protocol!r}",
                          hint=PORT_HINT)
    host_ip = None
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0 or rest[close + 1:close + 2] != ":":
            raise ConfigError(f"invalid port {raw!r} in {where}", hint=PORT_HINT)
        host_ip, rest = rest[1:close], rest[close + 2:]
    parts = rest.split(":")
    if host_ip is None and len(parts) == 3:
        host_ip = parts.pop(0)
        if not host_ip:
            host_ip = None
    if len(parts) > 2 or not parts[-1]:
        raise ConfigError(f"invalid port {raw!r} in {where}", hint=PORT_HINT)
    target_low, target_high = _port_range(parts[-1], where, raw)
    published = parts[0] if len(parts) == 2 and parts[0] else None
    entries = []
    if published is None:
        return [_port(t, None, host_ip, protocol) for t in range(target_low, target_high + 1)]
    pub_low, pub_high = _port_range(published, where, raw)
    count = target_high - target_low
    if count == 0:  # one container port behind one host port or a host range
        return [_port(target_low, published, host_ip, protocol)]
    if pub_high - pub_low != count:
        raise ConfigError(f"invalid port {raw!r} in {where}: host and container ranges differ in size",
                          hint=PORT_HINT)
    for offset in range(count + 1):
        entries.append(_port(target_low + offset, str(pub_low + offset), host_ip, protocol))
    return entries


def _port(target: int, published: str | None, host_ip: str | None, protocol: str) -> dict:
    port: dict[str, Any] = {"target": target, "protocol": protocol}
    if published is not None:
        port["published"] = published
    if host_ip:
        port["host_ip"] = host_ip
    return port


def parse_volume(raw: Any, where: str, base: Path) -> dict:
    if isinstance(raw, dict):
        vol = dict(raw)
        if vol.get("type") == "bind" and vol.get("source"):
            vol["source"] = resolve_path(str(vol["source"]), base)
        return vol
    text = str(raw)
    parts = text.split(":")
    # A Windows drive letter ("C:\\x:/data") is not a separator.
    if len(parts) > 1 and len(parts[0]) == 1 and parts[0].isalpha() and parts[1].startswith("\\"):
        parts = [parts[0] + ":" + parts[1], *parts[2:]]
    if len(parts) == 1:
        if not parts[0]:
            raise ConfigError(f"empty volume in {where}",
                              hint="write SOURCE:TARGET[:MODE], e.g. data:/var/lib/data, or remove the entry")
        return {"type": "volume", "target": parts[0]}
    mode = None
    if len(parts) == 3:
        mode = parts.pop()
    elif len(parts) == 2 and not parts[1].startswith("/") and set(parts[1].split(",")) <= _MODES:
        raise ConfigError(f"invalid volume {raw!r} in {where}: no target path",
                          hint="write SOURCE:TARGET[:MODE], e.g. data:/var/lib/data:ro")
    if len(parts) != 2 or not parts[1]:
        raise ConfigError(f"invalid volume {raw!r} in {where}",
                          hint="write SOURCE:TARGET[:MODE], e.g. data:/var/lib/data:ro")
    source, target = parts
    flags = set((mode or "").split(",")) - {""}
    if flags - _MODES:
        raise ConfigError(f"invalid volume mode {mode!r} in {where}",
                          hint="modes are ro, rw, z, Z, nocopy (comma separated)")
    is_path = source.startswith((".", "/", "~")) or (len(source) > 1 and source[1] == ":")
    vol: dict[str, Any] = {"type": "bind" if is_path else "volume", "target": target,
                           "source": resolve_path(source, base) if is_path else source}
    if "ro" in flags:
        vol["read_only"] = True
    if "nocopy" in flags:
        vol["volume"] = {"nocopy": True}
    if flags & {"z", "Z"}:
        vol["bind"] = {"selinux": "z" if "z" in flags else "Z"}
    return vol


def _target_of(kind: str, item: dict) -> str:
    """The absolute file path. A relative secret target names a file under /run/secrets/
    (Compose Specification, services.secrets.target); a relative config target is under /."""
    target = item.get("target") or item["source"]
    if target.startswith("/"):
        return target
    return f"/run/secrets/{target}" if kind == "secrets" else f"/{target}"


def normalize_service(name: str, svc: dict, base: Path) -> dict:
    """Canonical long forms for one service of one file (merge tags preserved)."""
    where = f"service {name!r}"
    out = dict(svc)
    for key, value in svc.items():
        if isinstance(value, Reset):
            continue
        plain = _plain(value)
        if key in ("environment", "labels", "annotations", "sysctls"):
            new: Any = list_or_dict(plain, "=", f"{where} {key}")
        elif key == "extra_hosts":
            new = _extra_hosts(plain, where)
        elif key == "depends_on":
            new = {d: {"condition": "service_started", "required": True} for d in plain} \
                if isinstance(plain, list) else {k: {"condition": "service_started", "required": True,
                                                     **(v or {})} for k, v in plain.items()}
        elif key == "networks":
            new = {n: None for n in plain} if isinstance(plain, list) else dict(plain)
        elif key == "ports":
            new = [p for raw in plain for p in parse_port(raw, f"{where} ports")]
        elif key == "volumes":
            new = [parse_volume(raw, f"{where} volumes", base) for raw in plain]
        elif key in ("secrets", "configs"):
            new = []
            for item in plain:
                item = {"source": item} if isinstance(item, str) else dict(item)
                item["target"] = _target_of(key, item)
                new.append(item)
        elif key == "env_file":
            items = [plain] if isinstance(plain, str) else plain
            new = [{"path": resolve_path(i, base), "required": True} if isinstance(i, str) else
                   {**i, "path": resolve_path(str(i["path"]), base), "required": i.get("required", True)}
                   for i in items]
        elif key == "build":
            new = {"context": plain} if isinstance(plain, str) else dict(plain)
            if isinstance(new.get("context"), str) and "://" not in new["context"]:
                new["context"] = resolve_path(new["context"], base)
            if "args" in new:
                new["args"] = list_or_dict(new["args"], "=", f"{where} build.args")
        elif key in ("dns", "dns_search", "tmpfs") and isinstance(plain, str):
            new = [plain]
        elif key == "expose":
            new = [str(p) for p in plain]
        else:
            continue
        out[key] = _rewrap(value, new)
    return out


def _extra_hosts(value: Any, where: str) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    out = {}
    for item in value:
        sep = "=" if "=" in item else ":"
        host, _, ip = str(item).partition(sep)
        if not ip:
            raise ConfigError(f"invalid extra_hosts entry {item!r} in {where}",
                              hint="write HOST=IP or HOST:IP")
        out[host] = ip
    return out
