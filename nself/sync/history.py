"""Sync records and locks.

Every sync and rollback appends one JSON line to `.nself/state/sync.log` (the same writer
as the deploy audit log): id, kind, from, to, who, started, duration, result (and the error),
and what a rollback needs (the snapshots it took, with their row counts and checksums).

An environment has one lock for deploys and syncs: its deploy driver's (`mkdir` on the
first host, a Lease on a cluster). `local`, which has no deploy target, is locked with an
atomic `mkdir` under `.nself/state/locks/` on this machine.
"""
from __future__ import annotations

import json
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from nself.deploy.core import Lock, LockHeld, append_local, read_local, who

SYNC_LOG = Path(".nself") / "state" / "sync.log"
LOCKS = Path(".nself") / "state" / "locks"


def append(root: Path, record: dict) -> None:
    append_local(root, record, SYNC_LOG)


def records(root: Path, env: str | None = None) -> list[dict]:
    """Sync records, oldest first; `env` keeps those whose target is `env`."""
    return read_local(root, env, SYNC_LOG)


def find(root: Path, env: str, sync_id: str | None) -> dict | None:
    """What to roll back to: `sync_id`, else the newest sync of `env` with a snapshot; the
    snapshots of every record with that id together (a sync.pull takes several)."""
    done = [r for r in records(root, env) if r.get("snapshots") and r.get("kind") != "rollback"]
    chosen = [r for r in done if r.get("id") == (sync_id or (done[-1]["id"] if done else None))]
    if not chosen:
        return None
    snapshots = {kind: snap for record in chosen for kind, snap in record["snapshots"].items()}
    return {**chosen[-1], "snapshots": snapshots}


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_id() -> str:
    """A sync id: UTC time to the millisecond (sortable, a valid file name)."""
    now = time.time()
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}Z"


class LocalLock(Lock):
    """An environment's lock on this machine: an atomic mkdir holding `holder.json`."""

    def __init__(self, root: Path, env: str):
        self.path, self.env, self.taken = root / LOCKS / env, env, False

    def acquire(self, holder: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.path.mkdir()
        except FileExistsError:
            raise LockHeld(self.env, self.read() or {}) from None
        (self.path / "holder.json").write_text(json.dumps(holder, sort_keys=True))
        self.taken = True

    def release(self) -> None:
        if self.taken:
            shutil.rmtree(self.path, ignore_errors=True)
            self.taken = False

    def read(self) -> dict | None:
        try:
            return json.loads((self.path / "holder.json").read_text())
        except (OSError, json.JSONDecodeError):
            return {"who": "?"} if self.path.is_dir() else None

    def clear(self) -> dict | None:
        holder = self.read()
        shutil.rmtree(self.path, ignore_errors=True)
        return holder


def lock_for(project, out, inventory) -> Lock:
    """The lock shared by deploys and syncs of `project.env`."""
    spec = project.settings.env_target(project.env) if project.settings is not None else {}
    if not (spec.get("target") or spec.get("hosts") or spec.get("roles") or spec.get("context")):
        return LocalLock(project.root, project.env)
    from nself.deploy.drivers import driver_for

    return driver_for(project, out, inventory).lock()


@contextmanager
def held(lock: Lock, what: str):
    """Hold `lock` for one sync (Kamal's with_lock): LockHeld (exit 1) names the holder."""
    lock.acquire({"who": who(), "since": now(), "what": what, "release": "-"})
    try:
        yield
    finally:
        lock.release()
