"""The server inventory: `.nself/servers.yml` and `.nself/known_hosts`, both committed.

`cloud.servers.add` and `cloud.provision` write it; everything that talks to servers reads it.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from nself.errors import Exit, NselfError, UsageError
from nself.files import write_atomic

INVENTORY = Path(".nself") / "servers.yml"
KNOWN_HOSTS = Path(".nself") / "known_hosts"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_FIELDS = {"host", "port", "user", "key", "roles", "jump", "sudo", "provider", "id", "region", "size"}


@dataclass(frozen=True)
class Server:
    name: str
    host: str
    port: int = 22
    user: str = "root"
    key: str | None = None           # private key path (~ allowed)
    roles: tuple[str, ...] = ()
    jump: str | None = None          # another inventory name, used as ProxyJump
    sudo: bool = False               # commands need sudo (non-root user)
    provider: str | None = None      # set when nself provisioned it
    id: str | None = None
    region: str | None = None
    size: str | None = None
    labels: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if not isinstance(self.host, str) or not self.host.strip():
            raise UsageError(f"server {self.name!r} has no host",
                             hint="give its address: --host 203.0.113.10 (an IP address or DNS name)")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise UsageError(f"port {self.port!r} of server {self.name!r} is not a TCP port",
                             hint="use a number from 1 to 65535 (SSH listens on 22)")

    def to_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k not in ("name", "labels") and v not in (None, (), False)}
        if "roles" in data:
            data["roles"] = list(data["roles"])
        if data.get("port") == 22:
            del data["port"]
        return data


def load(root: Path) -> dict[str, Server]:
    path = root / INVENTORY
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise NselfError(f"{path} is not valid YAML: {exc}", code=Exit.CONFIG, hint="fix the file") from None
    servers = data.get("servers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise NselfError(f"{path} must have a `servers:` mapping", code=Exit.CONFIG,
                         hint="servers:\n  web1: {host: 203.0.113.10, user: deploy}")
    out = {}
    for name, spec in servers.items():
        spec = spec or {}
        if not isinstance(spec, dict):
            raise NselfError(f"{path}: server {name!r} must be a mapping of keys, not {spec!r}",
                             code=Exit.CONFIG, hint="servers:\n  web1: {host: 203.0.113.10, user: deploy}")
        unknown = set(spec) - _FIELDS
        if unknown or "host" not in spec:
            raise NselfError(f"{path}: server {name!r}: " + (f"unknown key(s) {', '.join(sorted(unknown))}"
                                                             if unknown else "no host"),
                             code=Exit.CONFIG, hint="keys: " + ", ".join(sorted(_FIELDS)))
        try:
            out[str(name)] = _server(str(name), spec)
        except (NselfError, TypeError, ValueError) as exc:
            raise NselfError(f"{path}: server {name!r}: {getattr(exc, 'message', exc)}", code=Exit.CONFIG,
                             hint="host and user are strings, port a number, roles a list of names") from None
    return out


def _server(name: str, spec: dict) -> Server:
    roles = spec.get("roles") or []
    if not isinstance(roles, list):
        raise ValueError(f"roles must be a list, not {roles!r}")
    return Server(name=name, host=spec["host"], port=int(spec.get("port", 22)),
                  user=str(spec.get("user", "root")), key=spec.get("key"), roles=tuple(map(str, roles)),
                  jump=spec.get("jump"), sudo=bool(spec.get("sudo")), provider=spec.get("provider"),
                  id=None if spec.get("id") is None else str(spec["id"]),
                  region=spec.get("region"), size=spec.get("size"))


def save(root: Path, servers: dict[str, Server]) -> None:
    path = root / INVENTORY
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# Servers of this project (nself cloud.servers.*). Commit it with known_hosts.\n" + \
        yaml.safe_dump({"servers": {n: s.to_dict() for n, s in sorted(servers.items())}}, sort_keys=False)
    write_atomic(path, text.encode())


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"{name!r} is not a valid server name", hint="lowercase letters, digits and '-'")
    return name


def select(servers: dict[str, Server], hosts: list[str] | None = None, roles: list[str] | None = None,
           ) -> list[Server]:
    """--hosts a,b and/or --roles r; neither: every server."""
    names = [n for item in hosts or [] for n in item.split(",") if n]
    wanted_roles = {r for item in roles or [] for r in item.split(",") if r}
    unknown = [n for n in names if n not in servers]
    if unknown:
        raise UsageError(f"no server named {', '.join(unknown)} in the inventory",
                         hint="servers: " + (", ".join(sorted(servers)) or "none (cloud.servers.add)"))
    chosen = [servers[n] for n in names] if names else list(servers.values())
    if wanted_roles:
        chosen = [s for s in chosen if wanted_roles & set(s.roles)]
    if not chosen:
        raise UsageError("no server matches", hint="add one with `nself cloud.servers.add`, or check --roles")
    return sorted(chosen, key=lambda s: s.name)


def get(servers: dict[str, Server], name: str) -> Server:
    if name not in servers:
        raise UsageError(f"no server named {name!r} in the inventory",
                         hint="servers: " + (", ".join(sorted(servers)) or "none (cloud.servers.add)"))
    return servers[name]
