"""sync: a database, files and env files between environments — planned, locked, snapshotted,
audited and reversible (docs/sync.md). `--dry-run` prints the exact commands; `--json` emits
them. Production as a target needs `--yes` and its typed name (or `--force-production`).
"""
from __future__ import annotations

from invoke import Collection, task

from nself import runtime

_SRC, _DST = "the environment to copy from (local, staging, production, …)", "the environment to copy into"
_FORCE = "allow production as the target without the typed confirmation (CI)"


def _side(c, env: str):
    """(project, inventory) of one environment."""
    from nself.remote import inventory

    project = runtime.load(c, env=env)
    return project, inventory.load(project.root)


def _guard(c, target: str, force_production: bool) -> None:
    """Production as a target: --force-production, or --yes AND the typed name at a prompt."""
    import sys

    from nself.errors import UsageError

    opts = runtime.options(c)
    if target != "production" or force_production or opts.dry_run:
        return
    hint = "pass --yes and type `production` when asked, or --force-production in CI"
    if not opts.yes or not sys.stdin.isatty():
        raise UsageError("syncing into production needs --yes and the typed name of the environment", hint=hint)
    if input("type the name of the environment to overwrite: ").strip() != "production":
        raise UsageError("the typed name was not `production`: nothing was changed", hint=hint)


def _context(c, project, servers, sync_id: str):
    from nself.sync import history
    from nself.sync.operations import Context

    out = runtime.output(c)
    return Context(project.root, servers, history.lock_for(project, out, servers), out.say, sync_id)


def _render(c, record: dict) -> None:
    out = runtime.output(c)
    out.emit(record, render=lambda r: out.say(
        f"{r['kind']} {r.get('from', '')} → {r['env']}: {r['result']} in {r.get('duration', 0)}s (sync {r['id']}"
        + (f"; `nself sync.rollback {r['env']}` puts the snapshot back)" if r.get("snapshots") else ")")))


def db_options(project, tables, exclude_table_data, anonymize: bool, jobs: int):
    from nself.sync import mask
    from nself.sync.db import DbOptions

    rules = mask.normalize(project.settings.section("sync", "anonymize") if project.settings else None) \
        if anonymize else None
    return DbOptions(tuple(tables or ()), tuple(exclude_table_data or ()), rules, int(jobs))


def run_db(c, source: str, target: str, options_of, sync_id: str | None = None) -> dict | None:
    """Resolve both databases, then print the plan (--dry-run) or run it."""
    from nself.plan import emit
    from nself.sync import db as dbsync
    from nself.sync import endpoints, history
    from nself.sync.operations import sync_db

    src_project, servers = _side(c, source)
    dst_project, _ = _side(c, target)
    src, dst = endpoints.resolve(src_project, servers), endpoints.resolve(dst_project, servers)
    options = options_of(dst_project)
    sync_id = sync_id or history.new_id()
    if runtime.options(c).dry_run:
        emit(runtime.output(c), dbsync.plan(dst_project.root, src, dst, options, sync_id, servers).plan())
        return None
    return sync_db(_context(c, dst_project, servers, sync_id), src, dst, options)


@task(positional=["source", "target"], iterable=["tables", "exclude_table_data"],
      help={"source": _SRC, "target": _DST, "tables": "only these tables (repeatable; pg_dump --table)",
            "exclude_table_data": "copy the table's definition but not its rows (repeatable)",
            "anonymize": "replace personal values by the rules in nself.yml sync.anonymize (fail closed)",
            "jobs": "restore with N parallel jobs (the dump lands in a file on the target first)",
            "force_production": _FORCE})
def db(c, source, target, tables=None, exclude_table_data=None, anonymize=False, jobs=1, force_production=False):
    """Copy a database from one environment into another (snapshot first)."""
    _guard(c, _canonical(c, target), force_production)
    record = run_db(c, source, target,
                    lambda project: db_options(project, tables, exclude_table_data, anonymize, jobs))
    if record:
        _render(c, record)


def _canonical(c, env: str) -> str:
    from nself.project import find_root, settings
    from nself.project.envfiles import canonical_env

    root = runtime.options(c).root or find_root()
    return canonical_env(env, settings.load(root).environments() if root else {})


@task(positional=["environment"], help={"environment": "the environment to put back",
                                        "to": "the sync id to roll back to (default: the newest with a snapshot)",
                                        "force_production": _FORCE})
def rollback(c, environment, to=None, force_production=False):
    """Put an environment back as it was before a sync (its snapshot)."""
    from nself.errors import UsageError
    from nself.sync import history
    from nself.sync.operations import rollback as do_rollback

    env = _canonical(c, environment)
    _guard(c, env, force_production)
    project, servers = _side(c, env)
    record = history.find(project.root, env, to)
    if record is None:
        raise UsageError(f"no sync of {env} with a snapshot" + (f" has the id {to}" if to else ""),
                         hint=f"`nself sync.history` lists the syncs and their ids")
    if runtime.options(c).dry_run:
        from nself.plan import emit
        from nself.sync.operations import rollback_plans

        emit(runtime.output(c), rollback_plans(project, servers, record, history.new_id()))
        return
    _render(c, do_rollback(_context(c, project, servers, history.new_id()), project, record))


@task(help={"environment": "only syncs into this environment", "limit": "the newest N (default 20)"})
def history(c, environment=None, limit=20):
    """List the syncs: when, what, from → to, result, the snapshot to roll back to."""
    from nself.sync import history as records

    root = runtime.load(c).root
    rows = records.records(root, _canonical(c, environment) if environment else None)[-int(limit):]
    out = runtime.output(c)
    out.emit({"syncs": rows}, render=lambda d: out.table(
        ["id", "kind", "from", "to", "who", "result", "seconds", "snapshot"],
        [[r.get("id"), r.get("kind"), r.get("from", "-"), r.get("env"), r.get("who"), r.get("result"),
          r.get("duration", ""), ",".join(sorted(r.get("snapshots") or {})) or "-"] for r in d["syncs"]]))


@task(help={})
def status(c):
    """Per environment: the last sync, its result, and the snapshot rollback would use."""
    from nself.sync import history as records

    project = runtime.load(c)
    envs = ["local", *[e for e in project.settings.environments() if e != "local"]] if project.settings \
        else ["local"]
    rows = []
    for env in envs:
        done = records.records(project.root, env)
        last, undo = (done[-1] if done else {}), records.find(project.root, env, None)
        rows.append({"env": env, "last": last.get("id"), "kind": last.get("kind"), "from": last.get("from"),
                     "result": last.get("result"), "rollback_to": undo.get("id") if undo else None})
    out = runtime.output(c)
    out.emit({"environments": rows}, render=lambda d: out.table(
        ["environment", "last sync", "kind", "from", "result", "rollback to"],
        [[r["env"], r["last"] or "-", r["kind"] or "-", r["from"] or "-", r["result"] or "-",
          r["rollback_to"] or "-"] for r in d["environments"]]))


def _not_built(what: str, instead: str):
    from nself.deploy.core import NotSupported

    raise NotSupported(f"{what} is not built yet", instead)


@task(help={"schedule": "a cron expression (not built)", "unschedule": "remove the schedule (not built)"})
def auto(c, schedule=None, unschedule=False):
    """Run the syncs of nself.yml sync.auto (not built yet: says so)."""
    _not_built("sync.auto", "run sync.db / sync.files / sync.config (or sync.pull ENV) from cron or CI")


@task(positional=["source", "target"], help={"source": _SRC, "target": _DST, "files": "watch files only",
                                             "db": "watch the database only"})
def watch(c, source, target, files=False, db=False):
    """Sync on every change (not built yet: says so)."""
    _not_built("sync.watch", "run sync.files / sync.db when you need them, or from a file watcher")


ns = Collection("sync", db, rollback, history, status, auto, watch)
ns.configure({"sync": {}})
