"""db: the environment's PostgreSQL database — shell, query, backups, restore, migrations,
seeds (docs/db.md). Local compose, or a host's container/PostgreSQL over SSH; where it is comes
from `environments.<env>.database` (docs/sync.md). `--dry-run` prints the commands.
"""
from __future__ import annotations

from invoke import Collection, task

from nself import runtime

_FORCE = "allow production without the typed confirmation (CI)"


def _database(c):
    """(project, inventory, database) of --env."""
    from nself.db.where import locate
    from nself.remote import inventory

    project = runtime.load(c)
    servers = inventory.load(project.root)
    return project, servers, locate(project, servers)


def _settings(c, key: str):
    """A `db.*` task default (ns.configure below; nself.yml `db:` overrides it)."""
    return (c.config.get("db") or {}).get(key, DEFAULTS[key])


def _plan(c, db, title: str, build) -> bool:
    """Under --dry-run: print the plan `build(session_id)` makes, with the password file steps
    around it, and say so (True)."""
    from nself.plan import Plan, emit
    from nself.sync.db import cleanup_steps, secret_steps
    from nself.sync.history import new_id

    if not runtime.options(c).dry_run:
        return False
    sid = new_id()
    emit(runtime.output(c), Plan(title, [*secret_steps([db], sid), *build(sid), *cleanup_steps([db], sid)]))
    return True


@task(help={"readonly": "start every transaction read-only (a guard against slips, not a permission)"})
def shell(c, readonly=False):
    """Open psql on the environment's database (this terminal attached)."""
    import sys

    from nself.db import plans
    from nself.db.session import session
    from nself.errors import Exit, NselfError
    from nself.plan import shell as shell_step

    project, servers, db = _database(c)
    tty = sys.stdin.isatty()
    if _plan(c, db, f"psql on {db.describe()}",
             lambda sid: [shell_step("open psql", plans.shell_fragment(db, sid, readonly, tty), on=db.on)]):
        return
    with session(project.root, db, servers) as s:
        code = s.interactive(plans.shell_fragment(db, s.id, readonly, tty), tty)
    if code:
        raise NselfError(f"psql on {db.env}'s database ended with exit {code}", code=Exit.DATABASE,
                         hint="read psql's message above", reported=True)


@task(positional=["sql"], help={"sql": "the SQL to run (its last statement's rows are shown)"})
def query(c, sql):
    """Run one SQL text; rows as a table, or with --json {columns, rows}."""
    import csv

    from nself.db import plans
    from nself.db.session import session

    out = runtime.output(c)
    project, servers, db = _database(c)
    if _plan(c, db, f"query {db.env}'s database", lambda sid: [plans.query_step(db, sid, sql)]):
        return
    with session(project.root, db, servers) as s:
        text = s.run(plans.query_step(db, s.id, sql))[0].stdout
    table = list(csv.reader(text.splitlines()))
    columns, rows = (table[0], table[1:]) if table else ([], [])
    rows = [[None if v == plans.NULL else v for v in row] for row in rows]
    out.emit({"env": db.env, "columns": columns, "rows": rows},
             render=lambda d: out.table(d["columns"], d["rows"]) if d["columns"] else out.say("(no rows)"))


@task(name="backup", help={"list": "list the environment's backups instead of taking one",
                           "keep": "backups kept (default db.keep_backups, 7)"})
def backup(c, list=False, keep=None):  # noqa: A002 - the plan's flag name
    """Back up the database (pg_dump -Fc, named by UTC time; newest N kept)."""
    from nself.db import plans
    from nself.db.session import session
    from nself.sync.history import new_id

    out = runtime.output(c)
    project, servers, db = _database(c)
    if list:
        _list(c, project, servers, db)
        return
    stamp = new_id()            # UTC time to the millisecond: two backups in one second differ
    count = int(keep or _settings(c, "keep_backups"))
    if _plan(c, db, f"back up {db.describe()}", lambda sid: plans.backup_steps(db, sid, stamp, count)[0]):
        return
    with session(project.root, db, servers) as s:
        steps, path = plans.backup_steps(db, s.id, stamp, count)
        s.run(*steps)
        kept = plans.parse_list(s.run(plans.list_step(db), database=False)[0].stdout)
    made = next((b for b in kept if b["path"] == path), {"bytes": None})
    out.emit({"env": db.env, "on": db.on, "path": path, "bytes": made["bytes"], "kept": len(kept)},
             render=lambda d: out.say(f"{db.env}: backed up to {path} on {db.on} ({d['bytes']} bytes; "
                                      f"{d['kept']} kept)"))


def _list(c, project, servers, db) -> None:
    from nself.db import plans
    from nself.db.session import session

    out = runtime.output(c)
    with session(project.root, db, servers) as s:
        rows = plans.parse_list(s.run(plans.list_step(db), database=False)[0].stdout)
    out.emit({"env": db.env, "on": db.on, "backups": rows},
             render=lambda d: out.table(["name", "bytes", "modified (UTC)", "path"], [
                 [r["name"], r["bytes"], _utc(r["modified"]), r["path"]] for r in d["backups"]],
                 title=f"backups of {db.env} on {db.on}") if d["backups"] else
             out.say(f"{db.env} has no backups yet (`nself db backup` takes one)"))


def _utc(seconds: int) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


@task(positional=["file"], help={"file": "a backup's name from `db.backup --list`, `latest`, or a path on the "
                                         "database's machine", "force_production": _FORCE})
def restore(c, file, force_production=False):
    """Restore a backup (asks; production needs its typed name)."""
    from nself.db import plans
    from nself.db.session import session

    out = runtime.output(c)
    project, servers, db = _database(c)
    runtime.guard_production(c, db.env, "restoring into production", force_production)
    if _plan(c, db, f"restore {db.describe()} from {file}",
             lambda sid: [plans.restore_step(db, sid, _path_shown(db, file))]):
        return
    with session(project.root, db, servers) as s:
        path = _chosen(s, db, file)
        if not runtime.confirm(c, f"Replace everything in {db.env}'s database with {path}?"):
            out.say("nothing was restored")
            return
        s.run(plans.restore_step(db, s.id, path))
    out.emit({"env": db.env, "on": db.on, "restored": path},
             render=lambda d: out.say(f"{db.env}: restored from {path}"))


def _path_shown(db, file: str) -> str:
    """The backup path a dry run shows (`latest` is found only when the restore runs)."""
    import posixpath

    from nself.db import plans

    if file == "latest":
        return posixpath.join(plans.folder(db), f"<the newest {db.env}-*.dump>")
    return file if "/" in file else posixpath.join(plans.folder(db), file)


def _chosen(s, db, file: str) -> str:
    """`latest`, a backup's name, or a path that must exist on the database's machine (exit 2 otherwise)."""
    from nself.db import plans
    from nself.errors import UsageError
    from nself.plan import StepFailed

    hint = "`nself db backup --list` shows the backups; `nself db backup` takes one"
    if "/" in file:
        try:
            s.run(plans.exists_step(db, file), database=False)
        except StepFailed:
            raise UsageError(f"{file} does not exist on {db.on}", hint=hint) from None
        return file
    backups = plans.parse_list(s.run(plans.list_step(db), database=False)[0].stdout)
    if file == "latest":
        if not backups:
            raise UsageError(f"{db.env} has no backups to restore", hint=hint)
        return backups[-1]["path"]
    found = [b["path"] for b in backups if b["name"] in (file, f"{file}.dump")]
    if not found:
        raise UsageError(f"no backup named {file!r} for {db.env}", hint=hint)
    return found[0]


DEFAULTS = {"migrations": "db/migrations", "seeds": "db/seeds", "keep_backups": 7}

ns = Collection("db", shell, query, backup, restore)
ns.configure({"db": dict(DEFAULTS)})


def _mount_migrations() -> None:
    from nself.tasks import db_migrate

    ns.add_collection(db_migrate.ns)
    ns.add_task(db_migrate.seed)


_mount_migrations()
