"""Provider credentials: the provider's own environment variables, NSELF_<PROVIDER>_TOKEN, then
~/.config/nself/credentials.yml (mode 0600, refused when others can read it). Never printed."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml

from nself.errors import ConfigError, Exit, NselfError
from nself.files import write_atomic
from nself.providers.registry import Info


def path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "nself" / "credentials.yml"


def _read() -> dict:
    file = path()
    if not file.is_file():
        return {}
    mode = stat.S_IMODE(file.stat().st_mode)
    if mode & 0o077:
        raise NselfError(f"{file} can be read by other users (mode {mode:o})", code=Exit.PERMISSION,
                         hint=f"chmod 600 {file}")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError:
        # The parser's message would quote the file, and the file holds secrets.
        raise ConfigError(f"{file} is not valid YAML",
                          hint="fix it, or remove it and run cloud.providers.init") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"{file} must map provider names to their fields",
                          hint="hetzner: {token: ...}")
    return data


class MissingCredentials(ConfigError):
    """No credentials for the provider anywhere nself looks (exit 3)."""


def resolve(entry: Info) -> tuple[dict[str, str], str]:
    """The credentials and where they came from ('environment' or the file path); the
    provider's main set of fields first, then its alternative (UpCloud: a token, or a user)."""
    override = os.environ.get(f"NSELF_{entry.name.upper()}_TOKEN")
    for fields in entry.credential_sets():
        values = {}
        for fieldname, names in fields:
            found = next((os.environ[n] for n in names if os.environ.get(n)), None)
            if fieldname == "token" and override:
                found = override
            if found:
                values[fieldname] = found
        if len(values) == len(fields):
            return values, "environment"
    stored = {k: str(v) for k, v in (_read().get(entry.name) or {}).items()}
    for fields in entry.credential_sets():
        if all(f in stored for f, _ in fields):
            return {f: stored[f] for f, _ in fields}, str(path())
    raise MissingCredentials(f"no credentials for {entry.title}",
                      hint=f"set {' and '.join(entry.env_names())} or run `nself cloud.providers.init {entry.name}`")


def save(name: str, values: dict[str, str] | None) -> Path:
    """Write (or with None remove) one provider's entry; the file is created 0600 atomically."""
    data = _read()
    if values is None:
        data.pop(name, None)
    else:
        data[name] = values
    file = path()
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(file, yaml.safe_dump(data, sort_keys=True).encode(), mode=0o600)
    return file
