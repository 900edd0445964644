"""db.migrate and db.seed: numbered SQL files (db/migrations) recorded in `nself_migrations`,
each in one transaction, and plain SQL seed files (db/seeds), on the environment's database."""
from __future__ import annotations

from pathlib import Path

from invoke import Collection, task

from nself import runtime


def _folder(c, project, key: str) -> Path:
    from nself.tasks.db import _settings

    return project.root / _settings(c, key)


def _applied(s, db) -> dict[int, str]:
    from nself.db import migrations, plans

    text = s.run(plans.value_step(db, s.id, "read the applied migrations", migrations.APPLIED_SQL))[0].stdout
    return migrations.parse_applied(text)


def _migrate(c, title: str, choose, sql_of, verb: str) -> None:
    """Read what is applied, choose migrations (`choose(files, applied)`), run each as one
    transaction (`sql_of(m)`), report. Under --dry-run: the plan of what would run."""
    from nself.db import migrations, plans
    from nself.db.session import session
    from nself.plan import Plan, emit
    from nself.tasks.db import _database

    out = runtime.output(c)
    project, servers, db = _database(c)
    files = migrations.discover(_folder(c, project, "migrations"))
    with session(project.root, db, servers) as s:
        chosen = choose(files, _applied(s, db))
        steps = [plans.script_step(db, s.id, f"{verb} migration {m.label}", sql_of(m)) for m in chosen]
        if runtime.options(c).dry_run:
            emit(out, Plan(f"{title} on {db.describe()}", steps))
            return
        for step in steps:
            out.verbose(step.summary)
            s.run(step)
    done = [m.label for m in chosen]
    out.emit({"env": db.env, verb: done}, render=lambda d: out.say(
        f"{db.env}: {verb} " + (", ".join(done) if done else "nothing (up to date)")))


@task(help={"steps": "apply only the first N pending migrations (default: all)"})
def up(c, steps=0):
    """Apply the pending migrations in order, each in one transaction."""
    from nself.db import migrations

    _migrate(c, "apply migrations",
             lambda files, applied: migrations.pending(files, applied)[:int(steps) or None],
             migrations.up_sql, "applied")


@task(help={"steps": "how many of the newest applied migrations to revert (default 1)"})
def down(c, steps=1):
    """Revert the newest applied migration(s) with their down files."""
    from nself.db import migrations

    _migrate(c, "revert migrations", lambda files, applied: migrations.to_revert(files, applied, int(steps)),
             migrations.down_sql, "reverted")


@task(default=True)
def status(c):
    """Show each migration: applied, pending, changed or missing."""
    from nself.db import migrations
    from nself.db.session import session
    from nself.tasks.db import _database

    out = runtime.output(c)
    project, servers, db = _database(c)
    files = migrations.discover(_folder(c, project, "migrations"))
    with session(project.root, db, servers) as s:
        rows = migrations.status(files, _applied(s, db))
    out.emit({"env": db.env, "migrations": rows}, render=lambda d: out.table(
        ["version", "name", "state"], [[r["version"], r["name"], r["state"]] for r in d["migrations"]],
        title=f"migrations of {db.env}") if rows else out.say("no migrations yet (`nself db migrate create NAME`)"))


@task(positional=["name"], help={"name": "what the migration does, e.g. add_orders"})
def create(c, name):
    """Write the next numbered up/down migration files (empty)."""
    from nself.db import migrations
    from nself.plan import LocalRunner, Plan, emit, put, run

    out = runtime.output(c)
    project = runtime.load(c)
    upfile, downfile = migrations.new_files(_folder(c, project, "migrations"), name)
    plan = Plan(f"create migration {upfile.name[:-7]}", [
        run("make the migrations folder", "mkdir", "-p", str(upfile.parent)),
        put(f"write {upfile.relative_to(project.root)}", str(upfile), f"-- {name}: apply\n"),
        put(f"write {downfile.relative_to(project.root)}", str(downfile), f"-- {name}: revert\n")])
    if runtime.options(c).dry_run:
        emit(out, plan)
        return
    plan.run(LocalRunner())
    paths = [str(p.relative_to(project.root)) for p in (upfile, downfile)]
    out.emit({"created": paths}, render=lambda d: out.say("created " + " and ".join(paths)))


@task(help={"name": "one seed file (db/seeds/NAME.sql); default: all, by name"})
def seed(c, name=None):
    """Load seed data (db/seeds/*.sql), each file in one transaction."""
    from nself.db import migrations, plans
    from nself.db.session import session
    from nself.tasks.db import _database, _plan

    out = runtime.output(c)
    project, servers, db = _database(c)
    files = migrations.seeds(_folder(c, project, "seeds"), name)

    def build(sid):
        return [plans.script_step(db, sid, f"load the seed {p.stem}", p.read_text()) for p in files]
    if _plan(c, db, f"seed {db.describe()}", build):
        return
    with session(project.root, db, servers) as s:
        for step in build(s.id):
            s.run(step)
    out.emit({"env": db.env, "seeded": [p.stem for p in files]},
             render=lambda d: out.say(f"{db.env}: seeded " + ", ".join(d["seeded"])))


seed.optional_positionals = ("name",)
ns = Collection("migrate", up, down, status, create)
