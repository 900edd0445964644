"""Running syncs: plan → lock the target → run the plan → verify → one record (docs/sync.md).

A failed transfer puts the target's snapshot back before the error is raised, so nothing is
left half-restored; the snapshot stays on the target for `sync.rollback` either way. SIGINT
and SIGTERM (a Ctrl-C, a CI cancel) stop the running step's processes, put the snapshot back
when the transfer had begun, and only then release the lock: exit 130, naming the step.
"""
from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nself.errors import Exit, NselfError
from nself.plan import LOCAL, Plan, Step, StepFailed
from nself.remote.inventory import Server
from nself.sync import config as configsync
from nself.sync import db as dbsync
from nself.sync import files as filesync
from nself.sync import history, stream
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


INTERRUPTED = 130       # what a shell reports for a Ctrl-C


class Interrupted(NselfError):
    """SIGINT or SIGTERM while `during` ran (exit 130)."""

    def __init__(self, during: str, hint: str = "`nself sync.history` shows what was done; `nself sync.rollback "
                                                "ENV` puts back a snapshot the sync took"):
        super().__init__(f"interrupted during: {during}", code=INTERRUPTED, hint=hint)
        self.during = during


def _steps(run, steps: list[Step], say) -> dict:
    results = {}
    for step in steps:
        say(f"{step.summary} ...")
        try:
            results.update(run([step]))
        except KeyboardInterrupt:
            raise Interrupted(step.summary) from None
    return results


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


@contextmanager
def _signals(handler):
    """SIGINT and SIGTERM handled by `handler` (signal.SIG_IGN, or one that raises) inside."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def interruptible():
    """SIGTERM raises KeyboardInterrupt inside, as SIGINT does (a CI cancel is a Ctrl-C)."""
    return _signals(_raise_interrupt)


@contextmanager
def recorded(ctx: Context, record: dict):
    """One audit record per sync or rollback: its result (and error) and duration, appended
    whatever happens. SIGTERM is an interruption like SIGINT inside (Python's default would
    end the process at once: no lock released, no record)."""
    record.update(id=ctx.sync_id, who=history.who(), started=history.now())
    started = time.monotonic()
    try:
        with interruptible():
            yield record
        record["result"] = "ok"
    except NselfError as exc:
        record.update(result="interrupted" if exc.code == INTERRUPTED else "failed", error=exc.message)
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
            try:
                results = _steps(run, plan.prepare, ctx.say)
            except Interrupted as exc:
                raise Interrupted(exc.during, hint="the target was not changed yet") from None
            except StepFailed as exc:
                raise _kubectl_failure(exc, [src, dst]) or exc from None
            record["snapshots"] = {"db": {"on": dst.on, "path": plan.snapshot,
                                          "tables": dbsync.parse_summary(results[id(plan.measure)].stdout)}}
            results = _transfer(run, plan, ctx.say)
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
    # connections only to machines that run steps: rsync reaches the other side through OpenSSH
    # itself (a second SSH handshake cost a third of an unchanged re-sync), and its failure to
    # connect is read from its stderr (exit 6/7, as for nself's own connections)
    with recorded(ctx, record), history.held(ctx.lock, f"sync files from {src.env}"), \
            Machines(ctx.root, {s.on for s in plan.steps}, ctx.servers) as run:
        record["snapshots"] = {"files": {"on": dst.on, "path": dst.snapshot(ctx.sync_id), "paths": list(chosen),
                                         "created": str(manifest)}}
        made: dict[str, list[str]] = {}
        try:
            for path, step in zip(chosen, plan.steps):
                result = _rsync(run, step, [ctx.servers[t.on] for t in (src, dst) if t.on != LOCAL], ctx)
                made[path] = filesync.created(result.stdout)
                record["transferred"] = record.get("transferred", 0) + filesync.transferred(result.stdout)
        finally:
            manifest.parent.mkdir(parents=True, exist_ok=True)
            manifest.write_text(json.dumps(made))
        _steps(run, plan.steps[len(chosen):], ctx.say)
    return record


def _kubectl_failure(exc: StepFailed, databases: list[Database]) -> NselfError | None:
    """A `kubectl exec` into a database's pod that the cluster refused (no running pod, no
    pods/exec permission, an API that serves no exec) as a Kubernetes error (exit 9)."""
    pods = [db for db in databases if db.via == "kubectl"]
    said = [line for line in exc.result.stderr.splitlines() if line.startswith(("Error from server", "error:"))]
    if not pods or not said:
        return None
    names = " and ".join(f"{db.service}'s pod ({db.env})" for db in pods)
    return NselfError(f"kubectl exec into {names} failed: {said[-1]}", code=Exit.KUBERNETES,
                      hint="sync.db runs pg_dump/pg_restore in the pod with `kubectl exec`: the pod must be Running "
                           "and your user needs the pods/exec permission in the namespace; nothing was changed")


def _rsync(run, step: Step, remote: list[Server], ctx: Context):
    """One rsync step's result; a failure to reach a host through ssh (the source first: the
    target was reached already when it runs steps) or to open a tunnel is named as such."""
    from nself.sync.relay import tunnel_failure

    try:
        return _steps(run, [step], ctx.say)[id(step)]
    except StepFailed as exc:
        stderr = exc.result.stderr
        failure = tunnel_failure(stderr, ctx.sync_id) or next(
            (f for f in (stream.ssh_failure(server, stderr) for server in remote) if f is not None), None)
        if failure is not None:
            raise failure from None
        raise


def sync_config(ctx: Context, src_env: str, dst_env: str, merge: Plan, snapshot: dict) -> dict:
    """Write the merged env file (its previous content kept as the snapshot)."""
    record = {"kind": "config", "from": src_env, "env": dst_env, "snapshots": {"config": snapshot}}
    with recorded(ctx, record), history.held(ctx.lock, f"sync config from {src_env}"), \
            Machines(ctx.root, [], ctx.servers) as run:
        _steps(run, merge.steps, ctx.say)
    return record


def _transfer(run, plan: dbsync.DbPlan, say) -> dict:
    """The stream, then the counts (their results). When the stream fails, or either is
    interrupted, the snapshot goes back before the error is raised."""
    try:
        _steps(run, plan.transfer, say)
    except NselfError as exc:
        _put_back(run, plan, say, exc)
        raise _put_back_error(exc, plan) from None
    try:
        return _steps(run, plan.verify, say)
    except Interrupted as exc:
        _put_back(run, plan, say, exc)
        raise _put_back_error(exc, plan) from None


def _put_back_error(exc: NselfError, plan: dbsync.DbPlan) -> NselfError:
    hint = f"the target was put back from its snapshot ({plan.snapshot}); nothing was half-restored"
    if isinstance(exc, Interrupted):
        return Interrupted(exc.during, hint=hint)
    return NselfError(exc.message, code=exc.code, hint=hint)


def _put_back(run, plan: dbsync.DbPlan, say, cause: NselfError) -> None:
    """Restore the snapshot, deaf to further signals (a second Ctrl-C must not stop it half-way)."""
    say(f"{'interrupted' if isinstance(cause, Interrupted) else 'the transfer failed'}: "
        f"{plan.recover[0].summary} ...")
    try:
        with _signals(signal.SIG_IGN):
            run(plan.recover)
    except NselfError as again:
        raise NselfError(f"{cause.message}; putting the snapshot back failed too: {again.message}",
                         code=Exit.DATABASE, hint=f"the snapshot is kept at {plan.snapshot}; "
                                                  "restore it with `nself sync.rollback`") from None


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
