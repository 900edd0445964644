"""Running syncs: plan → lock the target → run the plan → verify → one record (docs/sync.md).

A failed transfer puts the target's snapshot back before the error is raised, so nothing is
left half-restored; the snapshot stays on the target for `sync.rollback` either way.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nself.errors import Exit, NselfError
from nself.plan import Plan, Step
from nself.remote.inventory import Server
from nself.sync import config as configsync
from nself.sync import db as dbsync
from nself.sync import files as filesync
from nself.sync import history
from nself.sync.endpoints import Database
from nself.sync.machines import Machines


@dataclass(frozen=True)
class Context:
    """What every sync operation needs: the project root, the inventory, the target's lock,
    a line printer, and the id of this sync."""

    root: Path
    servers: Mapping[str, Server]
    lock: object
    say: Callable[[str], None]
    sync_id: str


def _steps(run, steps: list[Step], say) -> dict:
    results = {}
    for step in steps:
        say(f"{step.summary} ...")
        results.update(run([step]))
    return results


@contextmanager
def recorded(ctx: Context, record: dict):
    """One audit record per sync or rollback: its result (and error) and duration, appended
    whatever happens."""
    record.update(id=ctx.sync_id, who=history.who(), started=history.now())
    started = time.monotonic()
    try:
        yield record
        record["result"] = "ok"
    except NselfError as exc:
        record.update(result="failed", error=exc.message)
        raise
    finally:
        record["duration"] = round(time.monotonic() - started, 3)
        record.setdefault("result", "interrupted")      # Ctrl-C: the record still says so
        history.append(ctx.root, record)


def sync_db(ctx: Context, src: Database, dst: Database, options: dbsync.DbOptions) -> dict:
    """Copy `src` into `dst` under `dst`'s lock; returns the audit record (also appended)."""
    plan = dbsync.plan(ctx.root, src, dst, options, ctx.sync_id, ctx.servers)
    record = {"kind": "db", "from": src.env, "env": dst.env, "anonymized": options.rules is not None,
              "tables": list(options.tables), "exclude_table_data": list(options.exclude_table_data)}
    if options.rules is not None:
        from nself.sync.mask import rules_hash

        record["rules"] = rules_hash(options.rules)
    with recorded(ctx, record), history.held(ctx.lock, f"sync db from {src.env}"), \
            Machines(ctx.root, [src.on, dst.on], ctx.servers) as run:
        try:
            results = _steps(run, plan.prepare, ctx.say)
            record["snapshots"] = {"db": {"on": dst.on, "path": plan.snapshot,
                                          "tables": dbsync.parse_summary(results[id(plan.measure)].stdout)}}
            _transfer(run, plan, ctx.say)
            results = _steps(run, plan.verify, ctx.say)
            record["rows"] = _compare(*(dbsync.parse_summary(results[id(s)].stdout) for s in plan.verify),
                                      options, ctx.say)
        finally:
            _cleanup(run, plan.cleanup)
    return record


def sync_files(ctx: Context, src: filesync.Tree, dst: filesync.Tree, plan: Plan, chosen: tuple[str, ...],
               delete: bool) -> dict:
    """Run a files sync's plan (`files.plan`); the names of the files it created are kept in
    `.nself/state/sync/<id>.created.json` for the rollback."""
    record = {"kind": "files", "from": src.env, "env": dst.env, "paths": list(chosen), "delete": delete}
    manifest = ctx.root / ".nself" / "state" / "sync" / f"{ctx.sync_id}.created.json"
    with recorded(ctx, record), history.held(ctx.lock, f"sync files from {src.env}"), \
            Machines(ctx.root, [dst.on], ctx.servers) as run:
        record["snapshots"] = {"files": {"on": dst.on, "path": dst.snapshot(ctx.sync_id), "paths": list(chosen),
                                         "created": str(manifest)}}
        made: dict[str, list[str]] = {}
        try:
            for path, step in zip(chosen, plan.steps):
                result = _steps(run, [step], ctx.say)[id(step)]
                made[path] = filesync.created(result.stdout)
                record["transferred"] = record.get("transferred", 0) + filesync.transferred(result.stdout)
        finally:
            manifest.parent.mkdir(parents=True, exist_ok=True)
            manifest.write_text(json.dumps(made))
        _steps(run, plan.steps[len(chosen):], ctx.say)
    return record


def sync_config(ctx: Context, src_env: str, dst_env: str, merge: Plan, snapshot: dict) -> dict:
    """Write the merged env file (its previous content kept as the snapshot)."""
    record = {"kind": "config", "from": src_env, "env": dst_env, "snapshots": {"config": snapshot}}
    with recorded(ctx, record), history.held(ctx.lock, f"sync config from {src_env}"), \
            Machines(ctx.root, [], ctx.servers) as run:
        _steps(run, merge.steps, ctx.say)
    return record


def _transfer(run, plan: dbsync.DbPlan, say) -> None:
    """The stream; when it fails, the snapshot goes back before the error is raised."""
    try:
        _steps(run, plan.transfer, say)
    except NselfError as exc:
        say(f"the transfer failed: {plan.recover[0].summary} ...")
        try:
            run(plan.recover)
        except NselfError as again:
            raise NselfError(f"{exc.message}; putting the snapshot back failed too: {again.message}",
                             code=Exit.DATABASE, hint=f"the snapshot is kept at {plan.snapshot}; "
                                                      "restore it with `nself sync.rollback`") from None
        raise NselfError(exc.message, code=exc.code,
                         hint=f"the target was put back from its snapshot ({plan.snapshot}); "
                              "nothing was half-restored") from None


def _cleanup(run, steps: list[Step]) -> None:
    try:
        run(steps)
    except NselfError:
        pass      # cleanup steps may fail; a host that went away keeps a 0600 file in its state folder


def _compare(source: dict, target: dict, options: dbsync.DbOptions, say) -> dict:
    """Rows per table of the tables this sync copied; a difference is a warning (the source
    may have changed since its dump was taken), named."""
    wanted = {_qualified(t) for t in options.tables}
    empty = {_qualified(t) for t in options.exclude_table_data}
    rows, differ = {}, []
    for table, (count, _) in source.items():
        if wanted and table not in wanted:
            continue
        expected = 0 if table in empty else count
        got = target.get(table, [None])[0]
        rows[table] = got
        if got != expected:
            differ.append(f"{table}: {expected} in the source, {got} in the target")
    if differ:
        say("warning: row counts differ (the source may have changed during the sync): " + "; ".join(differ))
    return rows


def _qualified(table: str) -> str:
    return table if "." in table else f"public.{table}"


def rollback_db(ctx: Context, run, dst: Database, record: dict) -> dict:
    """Restore `record`'s snapshot into `dst`, then prove it: counts and checksums equal to
    those recorded when the snapshot was taken (exit 5 naming the tables that differ)."""
    snapshot = record["snapshots"]["db"]
    plan = dbsync.rollback_plan(dst, snapshot["path"], ctx.sync_id)
    try:
        _steps(run, plan.prepare + plan.transfer, ctx.say)
        results = _steps(run, plan.verify, ctx.say)
    finally:
        _cleanup(run, plan.cleanup)
    now = dbsync.parse_summary(results[id(plan.verify[0])].stdout)
    expected = snapshot["tables"]
    differ = sorted(t for t in set(now) | set(expected) if now.get(t) != expected.get(t))
    if differ:
        raise NselfError(f"after restoring snapshot {record['id']}, {len(differ)} table(s) differ from it",
                         code=Exit.DATABASE, details=[f"{t}: {expected.get(t)} recorded, {now.get(t)} now"
                                                      for t in differ],
                         hint="the database changed while it was restored; run sync.rollback again")
    return {"tables": len(now), "rows": sum(v[0] for v in now.values())}


def rollback_plans(project, servers: Mapping[str, Server], record: dict, restore_id: str) -> list[Plan]:
    """The plans that put `record`'s snapshots back (what `sync.rollback --dry-run` prints)."""
    from nself.sync import endpoints

    snapshots, plans = record["snapshots"], []
    if "db" in snapshots:
        plans.append(dbsync.rollback_plan(endpoints.resolve(project, servers), snapshots["db"]["path"],
                                          restore_id).plan())
    if "files" in snapshots:
        plans.append(filesync.rollback_plan(filesync.resolve(project, servers), snapshots["files"],
                                            _created(snapshots["files"])))
    if "config" in snapshots:
        plans.append(configsync.rollback_plan(project.root, snapshots["config"]))
    return plans


def _created(snapshot: dict) -> dict:
    try:
        return json.loads(Path(snapshot["created"]).read_text())
    except (OSError, ValueError, KeyError):
        return {}


def rollback(ctx: Context, project, record: dict) -> dict:
    """Put back every snapshot `record` took (database, files, env files); one audit record."""
    from nself.sync import endpoints

    snapshots = record["snapshots"]
    machines = [s["on"] for s in snapshots.values() if "on" in s]
    entry = {"kind": "rollback", "env": project.env, "from": record["id"]}
    with recorded(ctx, entry), history.held(ctx.lock, f"sync rollback to {record['id']}"), \
            Machines(ctx.root, machines, ctx.servers) as run:
        if "db" in snapshots:
            entry["db"] = rollback_db(ctx, run, endpoints.resolve(project, ctx.servers), record)
        if "files" in snapshots:
            tree = filesync.resolve(project, ctx.servers)
            _steps(run, filesync.rollback_plan(tree, snapshots["files"], _created(snapshots["files"])).steps,
                   ctx.say)
            entry["files"] = snapshots["files"]["paths"]
        if "config" in snapshots:
            _steps(run, configsync.rollback_plan(ctx.root, snapshots["config"]).steps, ctx.say)
            entry["config"] = sorted(snapshots["config"])
    return entry
