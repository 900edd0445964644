"""`service list`, `service NAME enable|disable`: which optional services a project has, and
switching one on or off in its files.

Enabling changes three files together: the compose file (the service's block and named
volumes, `composetext`), `.env` (its non-secret variables) and `.env.secrets` (fresh random
secrets, mode 0600; values never returned). The new files are then checked as
`config.validate` checks them; when that finds a problem the change brought, all three are
put back as they were (ConfigError, exit 3): a refused change leaves nothing half-written.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nself.errors import ConfigError, UsageError
from nself.project.compose import default_files
from nself.project.edit import write_atomic
from nself.services import composetext, envtext
from nself.services.catalog import SERVICES, Service, get


def compose_file(root: Path) -> Path:
    """The project's main compose file (the one `nself service … enable` edits)."""
    files = default_files(root)
    if not files:
        raise ConfigError(f"no compose file in {root}", hint="create docker-compose.yml, or run `nself new`")
    return files[0]


def compose_services(root: Path) -> dict:
    try:
        doc = yaml.safe_load(compose_file(root).read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{compose_file(root)} is not valid YAML: {exc}",
                          hint="fix it (`nself config.validate` shows where)") from None
    return (doc.get("services") or {}) if isinstance(doc, dict) else {}


def list_services(root: Path) -> list[dict]:
    """Every optional service: enabled here or not, its image (the project's when enabled,
    else the one nself would add), and its URL inside the stack's network."""
    present = compose_services(root)
    rows = []
    for svc in SERVICES.values():
        block = present.get(svc.compose_name)
        image = (block or {}).get("image") if isinstance(block, dict) else None
        rows.append({"service": svc.name, "compose_service": svc.compose_name,
                     "enabled": block is not None, "image": image or svc.image,
                     "url": svc.url})
    return rows


@dataclass
class _Change:
    """The files a change writes: path → (old text or None when absent, new text, mode)."""

    files: dict[Path, tuple[str | None, str, int]]
    _made: list[Path] = field(default_factory=list)   # folders made for new files

    def write(self) -> None:
        done: list[Path] = []
        try:
            for path, (old, new, mode) in self.files.items():
                if new != (old or ""):
                    self._made += [d for d in (path.parent, *path.parent.parents) if not d.exists()][::-1]
                    _write(path, new, mode)
                    done.append(path)
        except BaseException:
            self.restore(done)
            raise

    def restore(self, paths=None) -> None:
        """Put the files back; a file (and folders) the change made goes again."""
        for path in paths if paths is not None else list(self.files):
            old, _, mode = self.files[path]
            if old is None:
                path.unlink(missing_ok=True)
            else:
                _write(path, old, mode)
        for folder in reversed(self._made):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def _write(path: Path, text: str, mode: int) -> None:
    if not path.exists():   # a new .env.secrets is born 0600 (write_atomic keeps an existing mode)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=mode)
    write_atomic(path, text)


def _read(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def enable(root: Path, name: str, *, env: str | None = None) -> dict:
    """Add service `name` to the project. UsageError when unknown or already enabled (exit 2);
    ConfigError when the compose file cannot be edited safely or the result does not validate."""
    svc = get(name)
    if svc.compose_name in compose_services(root):
        raise UsageError(f"service {name} is already enabled ({svc.compose_name} in {compose_file(root).name})",
                         hint=f"`nself service {name} status` shows it; `nself service {name} disable` removes it")
    change = apply(root, add=[svc], env=env)
    return _report(root, svc, "enabled", change)


def disable(root: Path, name: str, *, env: str | None = None) -> dict:
    """Remove service `name` and the variables `enable` added (secrets included)."""
    svc = get(name)
    if svc.compose_name not in compose_services(root):
        raise UsageError(f"service {name} is not enabled", hint=f"`nself service {name} enable` adds it")
    change = apply(root, remove=[svc], env=env)
    return _report(root, svc, "disabled", change)


def rotate(root: Path, name: str, key: str) -> str:
    """A fresh value for secret `key` of enabled service `name` in .env.secrets (its line kept in
    place, the file 0600); returns the new value for the caller to show only when asked."""
    svc = get(name)
    if svc.compose_name not in compose_services(root):
        raise UsageError(f"service {name} is not enabled", hint=f"`nself service {name} enable` adds it")
    path = root / ".env.secrets"
    old = _read(path) or ""
    value = secrets.token_urlsafe(36)
    new = envtext.replace(old, key, value)
    if new is None:
        new = envtext.add(old, name, {key: value})
    _Change({path: (_read(path), new, 0o600)}).write()
    return value


def apply(root: Path, *, add: list[Service] = (), remove: list[Service] = (), files: dict[Path, str] | None = None,
          env: str | None = None) -> _Change:
    """Add and remove services (their compose blocks, variables and secrets) and write `files`
    (path → text, e.g. a generated config) as one validated change."""
    compose = compose_file(root)
    text = old_text = compose.read_text()
    env_path, secrets_path = root / ".env", root / ".env.secrets"
    env_text = env_old = _read(env_path)
    secrets_text = secrets_old = _read(secrets_path)
    for svc in remove:
        text = composetext.remove(text, svc.compose_name, svc.volumes)
        env_text = envtext.remove(env_text or "", svc.name, set(svc.variables))
        secrets_text = envtext.remove(secrets_text or "", svc.name, set(svc.secrets))
    for svc in add:
        text = composetext.add(text, svc.compose_name, svc.fragment_text, svc.volumes)
        env_text = envtext.add(env_text or "", svc.name, svc.variables)
        fresh = {k: secrets.token_urlsafe(36) for k in svc.secrets}   # 48 url-safe characters
        secrets_text = envtext.add(secrets_text or "", svc.name, fresh)
    change = _Change({compose: (old_text, text, 0o644), env_path: (env_old, env_text or "", 0o644),
                      secrets_path: (secrets_old, secrets_text or "", 0o600),
                      **{path: (_read(path), new, 0o644) for path, new in (files or {}).items()}})
    _apply_validated(root, change, env)
    return change


def _apply_validated(root: Path, change: _Change, env: str | None) -> None:
    """Write the change, run config.validate's checks, and undo it all on a new problem."""
    from nself.project.describe import check

    before = set(check(root, env=env)["problems"])
    change.write()
    try:
        after = check(root, env=env)["problems"]
    except BaseException:
        change.restore()
        raise
    new = [p for p in after if p not in before]
    if new:
        change.restore()
        raise ConfigError("the change would leave the project invalid; nothing was changed",
                          details=new, hint="fix the problems listed (`nself config.validate`), then retry")


def _report(root: Path, svc: Service, state: str, change: _Change) -> dict:
    """What changed, by file and variable name (never a secret's value)."""
    changed = [str(p.relative_to(root)) for p, (old, new, _) in change.files.items() if (old or "") != new]
    return {"service": svc.name, "compose_service": svc.compose_name, "state": state,
            "files": changed, "variables": sorted(svc.variables), "secrets": list(svc.secrets),
            "url": svc.url}
