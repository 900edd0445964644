"""`nself db migrate` and `db seed` end to end against real PostgreSQL: numbered files recorded
in nself_migrations, each in one transaction (a failing one leaves nothing behind)."""
from __future__ import annotations

from pathlib import Path


def _write(project: Path, rel: str, text: str) -> None:
    path = project / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _create(nself, project: Path, name: str, up: str, down: str) -> None:
    made = nself(["db", "migrate", "create", name, "--json"], cwd=project)
    assert made.code == 0, made.err
    upfile, downfile = made.json()["created"]
    _write(project, upfile, up)
    _write(project, downfile, down)


def _states(nself, project: Path, *env: str) -> list[tuple[int, str]]:
    result = nself([*env, "db.migrate.status", "--json"], cwd=project)
    assert result.code == 0, result.err
    return [(r["version"], r["state"]) for r in result.json()["migrations"]]


def test_up_status_down_and_a_failing_migration_changes_nothing(world, project, nself):
    world.reset("local", users=0)
    _create(nself, project, "add accounts", "create table accounts (id int primary key);",
            "drop table accounts;")
    _create(nself, project, "add-ledger", "create table ledger (id int references accounts(id));",
            "drop table ledger;")
    assert sorted(p.name for p in (project / "db" / "migrations").iterdir()) == [
        "0001_add_accounts.down.sql", "0001_add_accounts.up.sql", "0002_add_ledger.down.sql", "0002_add_ledger.up.sql"]
    assert _states(nself, project) == [(1, "pending"), (2, "pending")]
    assert world.local.sql("select to_regclass('nself_migrations') is null") == "t"     # status wrote nothing
    plan = nself(["db.migrate.up", "--dry-run", "--json"], cwd=project).json()["plan"]
    assert [s["summary"] for s in plan["steps"]] == ["applied migration 0001_add_accounts",
                                                      "applied migration 0002_add_ledger"]
    done = nself(["db", "migrate", "up", "--json"], cwd=project)
    assert done.code == 0, done.err
    assert done.json()["applied"] == ["0001_add_accounts", "0002_add_ledger"]
    assert world.local.sql("select string_agg(version::text, ',' order by version) from nself_migrations") == "1,2"
    again = nself(["db.migrate.up", "--json"], cwd=project)
    assert again.json()["applied"] == []
    # a migration whose second statement fails: its first statement is rolled back too
    _create(nself, project, "broken", "create table half (x int);\ninsert into nowhere values (1);", "")
    failed = nself(["db.migrate.up", "--json"], cwd=project)
    assert failed.code == 5 and "nowhere" in failed.json()["error"]
    assert world.local.sql("select to_regclass('half') is null") == "t"
    assert _states(nself, project)[-1] == (3, "pending")
    (project / "db" / "migrations" / "0003_broken.up.sql").unlink()
    (project / "db" / "migrations" / "0003_broken.down.sql").unlink()
    reverted = nself(["db.migrate.down", "--json"], cwd=project)
    assert reverted.code == 0 and reverted.json()["reverted"] == ["0002_add_ledger"]
    assert world.local.sql("select to_regclass('ledger') is null") == "t"
    # an applied file edited afterwards is reported
    _write(project, "db/migrations/0001_add_accounts.up.sql", "create table accounts (id bigint primary key);")
    assert _states(nself, project) == [(1, "changed"), (2, "pending")]


def test_down_without_a_down_file_and_bad_names_are_refused(world, project, nself):
    world.reset("local", users=0)
    _write(project, "db/migrations/0001_one.up.sql", "create table one (x int);")
    assert nself(["db.migrate.up"], cwd=project).code == 0
    refused = nself(["db.migrate.down", "--json"], cwd=project)
    assert refused.code == 2 and "0001_one.down.sql" in refused.json()["hint"]
    assert world.local.sql("select to_regclass('one') is null") == "f"
    _write(project, "db/migrations/two.sql", "select 1;")
    bad = nself(["db.migrate.status", "--json"], cwd=project)
    assert bad.code == 3 and "two.sql" in bad.json()["error"]


def test_migrations_and_seeds_on_a_host_over_ssh(world, project, nself):
    world.reset("staging", users=0)
    _write(project, "db/migrations/0001_plans.up.sql", "create table plans (name text primary key);")
    _write(project, "db/seeds/plans.sql", "insert into plans values ('free'), ('pro');")
    _write(project, "db/seeds/zz_more.sql", "insert into plans values ('team');")
    assert nself(["--env", "staging", "db.migrate.up"], cwd=project).code == 0
    seeded = nself(["--env", "staging", "db", "seed", "plans", "--json"], cwd=project)
    assert seeded.code == 0, seeded.err
    assert seeded.json()["seeded"] == ["plans"]
    assert world.staging.sql("select string_agg(name, ',' order by name) from plans") == "free,pro"
    assert world.local.sql("select to_regclass('plans') is null") == "t"
    unknown = nself(["--env", "staging", "db.seed", "--name", "nope", "--json"], cwd=project)
    assert unknown.code == 2 and "plans, zz_more" in unknown.json()["hint"]
    twice = nself(["--env", "staging", "db.seed", "--json"], cwd=project)     # all, by name: the first fails
    assert twice.code == 5 and "duplicate key" in twice.json()["error"]
    assert world.staging.sql("select count(*) from plans") == "2"
