"""The writing side of `config`: set, reset, list, edit, export and import nself.yml.

Every change goes through `nself.project.edit` (comments and order kept, the whole file
validated before it is written, atomic replace). Values whose key names a secret are
masked in every report unless the caller asks for them (`export --include-secrets`).
"""
from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

from nself import plan
from nself.errors import ConfigError, Exit, NselfError, UsageError
from nself.plan import Plan, Step
from nself.project import edit, yamlio
from nself.project.envfiles import is_secret_name, load_env

REDACTED = "[REDACTED]"
# An editor is interactive: the deadline only ends a session left open (an hour).
EDITOR_DEADLINE_S = 3600
FORMATS = ("yaml", "json", "env")


def secret_key(key: str) -> bool:
    """`providers.hetzner.token` is secret; `deploy.webhook_secret_env` names a variable, it is not one."""
    last = key.rsplit(".", 1)[-1]
    return is_secret_name(last) and not last.lower().endswith("_env")


def mask(flat: dict[str, Any]) -> dict[str, Any]:
    return {k: (REDACTED if secret_key(k) and v is not None else v) for k, v in flat.items()}


def mask_at(key: str, value: Any) -> Any:
    """The value at dotted `key` as `config list`/`export` show it: a secret-named key's value,
    and every secret-named key below it, as `[REDACTED]` (`config get sudo.password`, `config get sudo`)."""
    return _mask_tree(value, key)


def write(doc: edit.Document, dry_run: bool = False, *also: Step) -> Plan | None:
    """Validate the whole document (exit 3), then write it atomically, or under `dry_run` return
    the Plan of the write (and of `also`, the other files the command writes) and write nothing.
    The plan names each changed key with its old and new value, secrets masked."""
    if not dry_run:
        edit.save(doc)
        return None
    text = doc.text()
    edit.validate_text(text, doc.path)
    return write_plan(doc.path, doc.before, text, *also)


def write_plan(path: Path, before: str, after: str, *also: Step) -> Plan:
    """Writing `after` over `before` at `path` as a Plan: one put step, its summary the changed keys."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    step = plan.put(f"write {path.name}: " + ("; ".join(changes(before, after)) or "no change"),
                    str(path), after, mode=mode)
    return Plan(f"change {path.name}", [step, *also])


def changes(before: str, after: str) -> list[str]:
    """`key: old → new` for each dotted key whose value differs (`(unset)` when absent), secrets masked."""
    import yaml

    def flat(text: str) -> dict:
        data = yaml.safe_load(text) if text.strip() else {}
        return edit.flatten(data if isinstance(data, dict) else {})

    old, new = flat(before), flat(after)   # compared as they are, shown masked

    def shown(key: str, side: dict) -> str:
        return repr(mask({key: side[key]})[key]) if key in side else "(unset)"
    return [f"{k}: {shown(k, old)} → {shown(k, new)}" for k in [*old, *(k for k in new if k not in old)]
            if old.get(k, object()) != new.get(k, object())]


def set_key(root: Path, key: str, raw: str, dry_run: bool = False) -> dict | Plan:
    """Set KEY to VALUE (typed by the schema), keep the rest of the file as written (under
    `dry_run`, the Plan of that write)."""
    parts = edit.split_key(key)
    value = edit.parse_value(raw, edit.schema_at(parts))
    doc = edit.open_document(root, repair=True)   # the change may be the fix; save validates it
    try:
        old = edit.plain(edit.get(doc, parts))
    except KeyError:
        old = None
    edit.set_value(doc, parts, value)
    if dry_run:
        return write(doc, dry_run)
    write(doc)
    shown = (lambda v: REDACTED if v is not None else None) if secret_key(key) else (lambda v: v)
    return {"key": key, "old": shown(old), "new": shown(value), "file": str(doc.path)}


def reset_key(root: Path, key: str, dry_run: bool = False) -> dict | Plan:
    """Remove KEY from nself.yml, so its default applies again (under `dry_run`, the Plan)."""
    parts = edit.split_key(key)
    edit.schema_at(parts)
    doc = edit.open_document(root, repair=True)
    try:
        old = edit.plain(edit.delete(doc, parts))
    except KeyError:
        raise UsageError(f"{key!r} is not set in {doc.path.name}",
                         hint="`nself config.list` shows the keys that are set") from None
    if dry_run:
        return write(doc, dry_run)
    write(doc)
    return {"key": key, "old": REDACTED if secret_key(key) else old, "file": str(doc.path)}


def list_keys(root: Path) -> dict:
    doc = edit.open_document(root)
    flat = mask(edit.flatten(edit.plain(doc.data)))
    return {"file": str(doc.path) if doc.path.is_file() else None,
            "keys": [{"key": k, "value": v} for k, v in flat.items()]}


def edit_in_editor(root: Path, environ=os.environ, dry_run: bool = False) -> dict | Plan:
    """Open a copy of nself.yml in $VISUAL/$EDITOR; write it back only when it validates.
    A refused edit is kept beside the file so no typing is lost. Under `dry_run` a valid edit
    is not written: the Plan of its write is returned (and the copy removed)."""
    editor = environ.get("VISUAL") or environ.get("EDITOR")
    if not editor:
        raise UsageError("no editor: $EDITOR (or $VISUAL) is not set", hint="export EDITOR=vi (or nano, code -w)")
    from nself.project import settings

    path = settings.find(root) or root / "nself.yml"   # not validated first: an edit may be the fix
    before = path.read_text() if path.is_file() else ""
    draft = path.with_name(f".{path.name}.edit.yml")
    draft.write_text(before)
    try:
        status = subprocess.run([*shlex.split(editor), str(draft)], timeout=EDITOR_DEADLINE_S).returncode
    except FileNotFoundError:
        draft.unlink()
        raise UsageError(f"editor {editor!r} not found", hint="set $EDITOR to an installed editor") from None
    except subprocess.TimeoutExpired:
        raise NselfError(f"the editor was open longer than {EDITOR_DEADLINE_S} s; nothing was written",
                         code=Exit.TIMEOUT, hint=f"your draft is in {draft}") from None
    after = draft.read_text()
    if status != 0 or after == before:
        draft.unlink()
        return {"file": str(path), "changed": False,
                "reason": f"the editor exited with {status}" if status else "no change"}
    try:
        edit.validate_text(after, path)
    except ConfigError as exc:
        raise ConfigError(f"{exc.message}; {path.name} was not changed", details=exc.details,
                          hint=f"your edit is kept in {draft}: fix it and run "
                               f"`nself config.import {draft}`, or `nself config.edit` again") from None
    draft.unlink()
    if dry_run:
        return write_plan(path, before, after)
    edit.write_atomic(path, after)
    return {"file": str(path), "changed": True}


def export(root: Path, env: str, pass_env, include_secrets: bool) -> dict:
    """nself.yml and the environment's variables as one document."""
    doc = edit.open_document(root)
    variables = load_env(root, env, pass_env=pass_env, lenient=True)
    secret = set(variables.secrets) | {k for k in variables.values if is_secret_name(k)}
    values = {k: (v if include_secrets or k not in secret else REDACTED) for k, v in variables.values.items()}
    settings = edit.plain(doc.data)
    if not include_secrets:
        settings = _mask_tree(settings, "")
    return {"environment": env, "settings": settings, "variables": values}


def _mask_tree(node: Any, prefix: str) -> Any:
    if isinstance(node, dict):
        return {k: _mask_tree(v, f"{prefix}.{k}" if prefix else k) for k, v in node.items()}
    return REDACTED if prefix and secret_key(prefix) and node is not None else node


def render(document: dict, fmt: str) -> str:
    """The export document as yaml, json or an env file (variables only)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint="use --format yaml, json or env")
    if fmt == "json":
        import json

        return json.dumps(document, indent=2) + "\n"
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    lines = [f"# {document['environment']}: variables from the env files (`nself config.env`)"]
    for key, value in document["variables"].items():
        lines.append(f"# {key}={REDACTED} (secret: --include-secrets)" if value == REDACTED
                     else f"{key}={_quote(value)}")
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    """Single quotes keep a value literal in an env file (no interpolation)."""
    plain = value and all(ch.isalnum() or ch in "-_./:@+," for ch in value)
    return value if plain else "'" + value.replace("'", "'\"'\"'") + "'"


def import_file(root: Path, source: Path, dry_run: bool = False) -> dict | Plan:
    """Merge a YAML file's sections into nself.yml (an `export` document: its `settings`);
    under `dry_run`, the Plan of that write."""
    if not source.is_file():
        raise UsageError(f"{source}: no such file", hint="name a YAML file with nself.yml sections")
    data, _ = yamlio.load(source, "the imported file")
    if isinstance(data, dict) and {"environment", "settings", "variables"} <= set(data):
        data = data["settings"] or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of nself.yml sections",
                          hint="e.g. `helm: {chart: {version: 1.2.0}}`")
    if REDACTED in repr(data):
        raise ConfigError(f"{source} holds {REDACTED} values (an export without --include-secrets)",
                          hint="put the real values in, or leave those keys out")
    doc = edit.open_document(root)
    changed = edit.merge(doc, data)
    if dry_run:
        return write(doc, dry_run)
    if changed:
        write(doc)
    return {"file": str(doc.path), "from": str(source), "changed": changed}
