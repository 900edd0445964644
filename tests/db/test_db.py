"""`nself db` end to end through the CLI, against real PostgreSQL clusters: on this machine
(local, via: direct on loopback) and inside a networked sshd test host (staging, over SSH)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.sync import pg

NSELF = str(Path(sys.executable).parent / "nself")


def _cli(args, project, stdin: bytes | None = None, env: dict | None = None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
    return subprocess.run([NSELF, *args], cwd=project, input=stdin, capture_output=True, timeout=120,
                          env={**environ, **(env or {})})


def _backups(project: Path) -> list[str]:
    return sorted(p.name for p in (project / ".nself" / "state" / "backups" / "db").glob("*.dump"))


def test_query_gives_rows_as_json_with_nulls(world, project, nself):
    world.reset("local", users=12, orders=30)
    result = nself(["db.query", "select count(*) as n, null::text as nothing, 'a,b' as text from users", "--json"],
                   cwd=project)
    assert result.code == 0, result.err
    assert result.json() == {"env": "local", "columns": ["n", "nothing", "text"], "rows": [["12", None, "a,b"]]}
    text = nself(["db", "query", "select email from users order by id limit 2"], cwd=project)
    assert text.code == 0 and "user1@corp.example" in text.out and "user2@corp.example" in text.out
    bad = nself(["db.query", "select * from no_such_table", "--json"], cwd=project)
    assert bad.code == 5 and "no_such_table" in bad.json()["error"]
    assert "local-Pa55" not in bad.out + text.out + result.out


def test_readonly_shell_refuses_writes_and_leaves_no_password_file(world, project):
    world.reset("local", users=1, orders=1)
    refused = _cli(["db", "shell", "--readonly"], project, b"create table slip (x int);\n")
    assert "read-only transaction" in refused.stderr.decode()
    assert world.local.sql("select to_regclass('slip') is null") == "t"
    written = _cli(["db", "shell"], project, b"create table kept (x int);\n")
    assert written.returncode == 0, written.stderr
    assert world.local.sql("select to_regclass('kept') is null") == "f"
    assert not list((project / ".nself" / "state" / "sync").glob("*.pgpass"))


def test_backup_keep_list_and_restore_latest_locally(world, project, nself):
    world.reset("local", users=25, orders=40)
    before = pg.summary(world.local)
    for _ in range(3):
        made = nself(["db.backup", "--keep", "2", "--json"], cwd=project)
        assert made.code == 0, made.err
    names = _backups(project)
    assert len(names) == 2 and all(n.startswith("local-") for n in names)
    assert made.json()["path"].endswith(names[-1]) and made.json()["bytes"] > 1000
    listed = nself(["db.backup", "--list", "--json"], cwd=project).json()["backups"]
    assert [b["name"] for b in listed] == names
    world.local.sql("drop table orders; delete from users where id > 3; create table extra (x int)")
    refused = nself(["db.restore", "latest"], cwd=project)                 # no terminal, no --yes
    assert refused.code == 2 and "--yes" in refused.err
    assert world.local.sql("select to_regclass('orders') is null") == "t"
    done = nself(["db.restore", "latest", "--yes", "--json"], cwd=project)
    assert done.code == 0, done.err
    assert done.json()["restored"].endswith(names[-1])
    assert pg.summary(world.local) == before
    assert world.local.sql("select to_regclass('extra') is null") == "t"     # a clean copy of the backup
    by_name = nself(["db.restore", names[0], "--yes"], cwd=project)
    assert by_name.code == 0, by_name.err


def test_restore_of_a_missing_backup_is_exit_2_and_changes_nothing(world, project, nself):
    world.reset("local", users=5, orders=5)
    before = pg.summary(world.local)
    missing = nself(["db.restore", "local-19990101T000000000Z.dump", "--yes", "--json"], cwd=project)
    assert missing.code == 2 and "--list" in missing.json()["hint"]
    path = nself(["db.restore", "/var/tmp/no-such.dump", "--yes"], cwd=project)
    assert path.code == 2 and "does not exist" in path.err
    latest = nself(["db.restore", "latest", "--yes"], cwd=project)
    assert latest.code == 2 and "no backups" in latest.err
    assert pg.summary(world.local) == before


def test_a_host_database_over_ssh_backup_query_restore_and_production_guard(world, project, nself):
    world.reset("staging", users=40, orders=70)
    before = pg.summary(world.staging)
    made = nself(["--env", "staging", "db.backup", "--json"], cwd=project)
    assert made.code == 0, made.err
    path = made.json()["path"]
    assert made.json()["on"] == "host1" and path.startswith("/var/lib/app-host1/.nself/backups/db/staging-")
    assert world.staging.sh(f"test -s {path} && echo yes").strip() == "yes"
    assert not _backups(project)                                            # on the host, not here
    rows = nself(["--env", "staging", "db.query", "select count(*) from orders", "--json"], cwd=project)
    assert rows.json()["rows"] == [["70"]]
    world.staging.sql("truncate orders")
    done = nself(["--env", "staging", "db.restore", "latest", "--yes"], cwd=project)
    assert done.code == 0, done.err
    assert pg.summary(world.staging) == before
    assert world.staging.sh("ls /var/lib/app-host1/.nself/sync/ 2>/dev/null | grep -c pgpass || true").strip() == "0"
    guard = nself(["--env", "production", "db.restore", "latest", "--yes"], cwd=project)
    assert guard.code == 2 and "--force-production" in guard.err


def test_dry_run_prints_the_dump_and_hides_the_password(world, project, nself):
    shown = nself(["--env", "staging", "db.backup", "--dry-run"], cwd=project)
    assert shown.code == 0, shown.err
    assert "[host1] back up staging's database to /var/lib/app-host1/.nself/backups/db/staging-" in shown.out
    assert "pg_dump -w -h 127.0.0.1 -p 5432 -U postgres -Fc -d app" in shown.out
    assert "stg-S3cret" not in shown.out + shown.err
    plan = nself(["--env", "staging", "db.backup", "--dry-run", "--json"], cwd=project).json()["plan"]
    assert [s["on"] for s in plan["steps"]].count("host1") == len(plan["steps"])


def test_the_deploy_hook_example_backs_up_the_environment_being_deployed(world, project, monkeypatch):
    from nself.deploy import core, hooks
    from nself.project import load_project

    (project / "nself.yml").write_text((project / "nself.yml").read_text()
                                       + "deploy:\n  hooks:\n    pre-deploy: [nself db backup]\n")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    before = world.staging.sh("ls /var/lib/app-host1/.nself/backups/db/ 2>/dev/null || true").split()
    staging = load_project(project, env="staging")
    core.run_hooks(staging, "pre-deploy", hooks.hook_env("staging", "r1", None, "rolling"), None)
    after = world.staging.sh("ls /var/lib/app-host1/.nself/backups/db/").split()
    assert len(set(after) - set(before)) == 1 and all(n.startswith("staging-") for n in after)
    assert not _backups(project)            # NSELF_ENV chose staging, not local


def test_kubernetes_environments_say_not_built(world, project, nself):
    (project / "nself.yml").write_text((project / "nself.yml").read_text().replace(
        "  production:\n    hosts: [host2]\n    path: /var/lib/app-host2\n    database: {via: direct}\n",
        "  production:\n    context: prod\n"))
    result = nself(["--env", "production", "db.query", "select 1", "--json"], cwd=project)
    assert result.code == 2 and "not built" in result.json()["error"]


def test_shell_on_a_host_runs_psql_there_over_ssh(world, project):
    world.reset("staging", users=2, orders=2)
    refused = _cli(["--env", "staging", "db", "shell", "--readonly"], project, b"delete from orders;\n")
    assert "read-only transaction" in refused.stderr.decode()
    assert world.staging.sql("select count(*) from orders") == "2"
    shown = _cli(["--env", "staging", "db", "shell"], project,
                 b"select current_database() || '@' || inet_server_port();\n")
    assert shown.returncode == 0, shown.stderr
    assert "app@5432" in shown.stdout.decode()
    assert world.staging.sh("ls /var/lib/app-host1/.nself/sync/ 2>/dev/null | grep -c pgpass || true").strip() == "0"
