"""Env files between environments: a diff with secrets masked, then a merge (pure builders).

Both environments' variables come from the project's env files on this machine (the deploy
renders them onto hosts). The diff lists keys the source adds or changes and keys only the
target has; a secret's value is never shown (`[REDACTED]`, and only whether it differs).
The merge writes the source's non-secret values into the target's own env file (`.env.local`
for local, else the environment's `.env.<env>` file); secrets only with `--include-secrets`,
so the target keeps its own. Keys only the target has are kept. The file's previous content
is kept as the snapshot (0600, under `.nself/state/snapshots/config/<id>/`) for sync.rollback.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nself.plan import Plan, Step, put, run
from nself.ui import REDACTED

_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


@dataclass(frozen=True)
class Change:
    key: str
    status: str                # added | changed | only in target
    secret: bool
    source: str | None
    target: str | None

    def row(self) -> list[str]:
        """key, status, source value, target value — secrets masked."""
        def shown(value):
            return "-" if value is None else REDACTED if self.secret else value
        return [self.key, self.status, shown(self.source), shown(self.target)]


def diff(src, dst) -> list[Change]:
    """Differences between two environments' variables (EnvVars), sorted by key."""
    changes = []
    for key in sorted(set(src.values) | set(dst.values)):
        old, new = dst.values.get(key), src.values.get(key)
        if old == new:
            continue
        status = "added" if old is None else "only in target" if new is None else "changed"
        changes.append(Change(key, status, key in src.secrets or key in dst.secrets, new, old))
    return changes


def target_file(root: Path, env: str, files: tuple[Path, ...]) -> Path:
    """The environment's own env file: `.env.local` for local, else its last existing
    `.env.<env>` spelling (or `.env.<env>`)."""
    if env == "local":
        return root / ".env.local"
    own = [f for f in files if f.name not in (".env", ".env.secrets", ".env.local")]
    existing = [f for f in own if f.is_file()]
    return existing[-1] if existing else root / f".env.{env}"


def _quoted(value: str) -> str:
    """A literal value: single quotes keep `$` as is (Compose's rule)."""
    if "'" not in value:
        return f"'{value}'"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$") + '"'


def merged(text: str, updates: Mapping[str, str]) -> str:
    """`text` (an env file) with `updates` set: lines replaced in place, new keys appended."""
    lines, done = text.splitlines(), set()
    for index, line in enumerate(lines):
        match = _ASSIGNMENT.match(line)
        if match and match.group(1) in updates:
            lines[index] = f"{match.group(1)}={_quoted(updates[match.group(1)])}"
            done.add(match.group(1))
    lines += [f"{key}={_quoted(value)}" for key, value in updates.items() if key not in done]
    return "\n".join(lines) + "\n"


def plan(root: Path, src_env: str, dst_env: str, changes: list[Change], target: Path, current: str | None,
         include_secrets: bool, snapshot: Path) -> tuple[Plan, dict]:
    """(the merge plan, the snapshot record). `current` is the target file's text (None: absent)."""
    updates = {c.key: c.source for c in changes if c.source is not None and (include_secrets or not c.secret)}
    record = {"path": str(snapshot), "files": {target.name: current is not None}}
    result = Plan(f"merge env {src_env} → {dst_env} ({len(updates)} key(s) into {target.name})")
    if not updates:
        return result, record
    if current is not None:
        result.add(run("make the snapshot folder", "mkdir", "-p", str(snapshot)),
                   put(f"keep {target.name} as it was (snapshot)", str(snapshot / target.name), current, mode=0o600))
    # 0600 whatever it was: an environment's own file may hold its secrets (git keeps no mode but +x)
    result.add(put(f"write {', '.join(updates)} into {target.name}", str(target), merged(current or "", updates),
                   mode=0o600))
    return result, record


def rollback_plan(root: Path, snapshot: Mapping) -> Plan:
    """Put each env file back as it was (or remove it when the sync created it)."""
    steps: list[Step] = []
    for name, existed in snapshot["files"].items():
        if existed:
            steps.append(run(f"put {name} back from the snapshot", "cp", "-p",
                             str(Path(snapshot["path"]) / name), str(root / name)))
        else:
            steps.append(run(f"remove {name} (the sync created it)", "rm", "-f", str(root / name)))
    return Plan("put the env files back", steps)
