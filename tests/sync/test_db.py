"""sync.db between real PostgreSQL 15 clusters: one on this machine (`local`) and one in each of
two networked sshd test hosts (`staging` on host1, `production` on host2)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nself.sync import history
from tests.sync import pg
from tests.sync.conftest import settings

NSELF = str(Path(sys.executable).parent / "nself")


def _snapshots(project: Path) -> list[Path]:
    return sorted((project / ".nself" / "state" / "snapshots" / "db").glob("*.dump"))


def test_a_remote_database_lands_locally_with_equal_counts_and_checksums(world, project, nself):
    world.reset("staging", users=300, orders=3000)
    world.reset("local", users=7, orders=9)
    before = pg.summary(world.local)
    result = nself(["sync.db", "staging", "local", "--json"], cwd=project)
    assert result.code == 0, result.err
    record = result.json()
    assert pg.summary(world.local) == pg.summary(world.staging)
    assert record["rows"] == {"public.orders": 3000, "public.users": 300}
    # the snapshot of what local held before, with its counts, for sync.rollback
    assert record["snapshots"]["db"]["tables"]["public.users"][0] == 7
    assert [p.name for p in _snapshots(project)] == [f"{record['id']}.dump"]
    assert history.records(project, "local")[-1]["id"] == record["id"]
    # no password file left behind, here or on the host
    assert not list((project / ".nself" / "state" / "sync").glob("*.pgpass"))
    assert world.staging.sh("ls /var/lib/app-host1/.nself/sync/ | grep -c pgpass || true").strip() == "0"
    # and rollback puts the 7 users back, proving it with counts and checksums
    result = nself(["sync.rollback", "local", "--json"], cwd=project)
    assert result.code == 0, result.err
    assert pg.summary(world.local) == before
    assert result.json()["db"]["rows"] == 16


def test_dry_run_prints_the_pipeline_and_changes_nothing(world, project, nself):
    world.reset("staging", users=20, orders=20)
    world.reset("local", users=3, orders=3)
    before = pg.summary(world.local)
    result = nself(["sync.db", "staging", "local", "--dry-run"], cwd=project)
    assert result.code == 0, result.err
    assert "pg_dump -w -h 127.0.0.1 -p 5432 -U postgres -Fc -d app" in result.out and " | PGPASSFILE=" in result.out
    assert "pg_restore -w" in result.out and "echo '\"'\"'BEGIN;" in result.out and "COMMIT;" in result.out
    for secret in ("stg-S3cret", "local-Pa55"):
        assert secret not in result.out + result.err
    plan = nself(["sync.db", "staging", "local", "--dry-run", "--json"], cwd=project).json()["plan"]
    assert [s["on"] for s in plan["steps"]].count("host1") >= 3
    assert all("S3cret" not in json.dumps(s) for s in plan["steps"])
    assert pg.summary(world.local) == before
    assert not (project / ".nself" / "state").exists()


def test_host_to_host_streams_through_here_and_production_needs_its_name(world, project, nself):
    world.reset("staging", users=40, orders=80)
    world.reset("production", users=2, orders=2)
    refused = nself(["sync.db", "staging", "production"], cwd=project)
    assert refused.code == 2 and "--yes" in refused.err and "typed name" in refused.err
    refused = nself(["sync.db", "staging", "prod", "--yes"], cwd=project)     # no terminal to type it on
    assert refused.code == 2 and "--force-production" in refused.err
    assert pg.summary(world.production)["users"].startswith("2|")
    done = nself(["sync.db", "staging", "production", "--force-production"], cwd=project)
    assert done.code == 0, done.err
    assert pg.summary(world.production) == pg.summary(world.staging)
    # the snapshot stays on the target's host, not here
    assert world.production.sh("ls /var/lib/app-host2/.nself/snapshots/db/").strip().endswith(".dump")


def test_tables_jobs_and_exclude_table_data(world, project, nself):
    world.reset("staging", users=30, orders=60)
    world.reset("local", users=30, orders=5)
    world.local.sql("update users set plan = 'local'")
    result = nself(["sync.db", "staging", "local", "--tables", "orders"], cwd=project)
    assert result.code == 0, result.err
    assert world.local.sql("select count(*) from orders") == "60"
    assert world.local.sql("select count(*) from users where plan = 'local'") == "30"     # untouched
    result = nself(["sync.db", "staging", "local", "--jobs", "2"], cwd=project)    # lands in a file first
    assert result.code == 0, result.err
    assert pg.summary(world.local) == pg.summary(world.staging)
    assert not list((project / ".nself" / "state" / "sync").glob("*.incoming.dump"))
    result = nself(["sync.db", "staging", "local", "--exclude-table-data", "orders"], cwd=project)
    assert result.code == 0, result.err
    assert (world.local.sql("select count(*) from users"), world.local.sql("select count(*) from orders")) == \
        ("30", "0")


def _anonymize(project: Path, rules: str) -> None:
    (project / "nself.yml").write_text(settings(anonymize=f"  anonymize: {rules}\n"))


RULES = "{users.email: email, users.name: name, users.phone: phone, orders.note: keep}"


def test_anonymised_values_are_deterministic_and_keys_still_join(world, project, nself):
    world.reset("staging", users=200, orders=600)
    _anonymize(project, RULES)
    first = nself(["sync.db", "staging", "local", "--anonymize"], cwd=project)
    assert first.code == 0, first.err
    emails = world.local.sql("select string_agg(email || '/' || name || '/' || phone, ',' order by id) from users")
    assert "corp.example" not in emails and "Person " not in emails and "+1555" not in emails
    assert world.local.sql("select count(distinct email) from users") == "200"
    assert world.local.sql("select count(*) from orders o join users u on u.id = o.user_id") == "600"
    assert world.local.sql("select count(*) from users where plan in ('free', 'pro')") == "200"    # no rule: kept
    again = nself(["sync.db", "staging", "local", "--anonymize"], cwd=project)
    assert again.code == 0, again.err
    assert world.local.sql(
        "select string_agg(email || '/' || name || '/' || phone, ',' order by id) from users") == emails


def test_an_unclassified_personal_column_stops_the_sync_naming_it(world, project, nself):
    world.reset("staging", users=5, orders=5)
    world.staging.sql("alter table orders add column contact_email text")
    world.reset("local", users=2, orders=2)
    before = pg.summary(world.local)
    _anonymize(project, RULES)
    result = nself(["sync.db", "staging", "local", "--anonymize"], cwd=project)
    assert result.code == 3
    assert "public.orders.contact_email" in result.err and "public.users.email" not in result.err
    assert pg.summary(world.local) == before
    assert not _snapshots(project)


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of every process below `pid` (this test's own children only)."""
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                name = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if int(fields[1]) == parent:
                found.append((int(entry.name), name))
                frontier.append(int(entry.name))
    return found


def test_a_restore_killed_half_way_leaves_the_target_as_it_was(world, project):
    world.reset("staging", users=2000, orders=60000)      # ~ 60k rows of 640 bytes of random text
    world.staging.sql("update orders set note = repeat(note, 20)")
    world.reset("local", users=11, orders=13)
    before = pg.summary(world.local)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
    process = subprocess.Popen([NSELF, "sync.db", "staging", "local"], cwd=project, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed, deadline = False, time.monotonic() + 120
    while not killed and time.monotonic() < deadline and process.poll() is None:
        restoring = [p for p, name in _descendants(process.pid) if name == "pg_restore"]
        copied = world.local.sql("select coalesce(sum(bytes_processed), 0) from pg_stat_progress_copy", db="postgres")
        if restoring and int(copied) > 1_000_000:
            os.kill(restoring[0], signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    out, err = process.communicate(timeout=300)
    assert killed, "the restore finished before the test could kill it"
    assert process.returncode == 5, err.decode()
    assert "put back from its snapshot" in err.decode()
    assert pg.summary(world.local) == before
    snapshots = _snapshots(project)
    assert len(snapshots) == 1
    failed = history.records(project, "local")[-1]
    assert failed["result"] == "failed" and failed["snapshots"]["db"]["path"] == str(snapshots[0])
    # the snapshot survived the failure: rollback restores it, and proves it by counts and checksums
    done = subprocess.run([NSELF, "sync.rollback", "local"], cwd=project, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    assert pg.summary(world.local) == before


def test_refusals_change_nothing(world, project, nself):
    world.reset("local", users=4, orders=4)
    world.reset("staging", users=5, orders=5)
    before = pg.summary(world.local)
    unknown = nself(["sync.db", "stagin", "local"], cwd=project)
    assert unknown.code == 2 and "unknown environment 'stagin'" in unknown.err
    # a lock held by someone else: exit 1, naming them
    lock = project / ".nself" / "state" / "locks" / "local"
    lock.mkdir(parents=True)
    (lock / "holder.json").write_text(json.dumps({"who": "ana@laptop", "since": "2026-11-29T10:00:00Z",
                                                  "what": "sync db from staging"}))
    held = nself(["sync.db", "staging", "local"], cwd=project)
    assert held.code == 1 and "ana@laptop" in held.err
    (lock / "holder.json").unlink()
    lock.rmdir()
    # the database refuses the password: exit 5, before anything changed
    (project / ".env.staging").write_text("POSTGRES_PASSWORD=wrong-password\n")
    refused = nself(["sync.db", "staging", "local"], cwd=project)
    assert refused.code == 5 and "staging's database answers" in refused.err and "wrong-password" not in refused.err
    # an unreachable host (a closed loopback port): exit 6
    servers = (project / ".nself" / "servers.yml").read_text()
    (project / ".nself" / "servers.yml").write_text(servers.replace(world.hosts[0].address, "127.0.0.1")
                                                    .replace("port: 22", f"port: {pg.free_port()}"))
    unreachable = nself(["sync.db", "staging", "local"], cwd=project)
    assert unreachable.code == 6, unreachable.err
    assert pg.summary(world.local) == before and not _snapshots(project)


def test_inv_sync_pull_and_an_anonymised_db_sync_in_a_project_made_by_nself_new(world, tmp_path):
    """The issue's "done when": `inv sync.pull staging` and `inv sync.db staging local --anonymize`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_") and k != "ENV"}
    made = subprocess.run([NSELF, "new", "demo", "--no-input", "--output", str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    root = tmp_path / "demo"
    secrets = (root / ".env.secrets").read_text().splitlines()
    (root / ".env.secrets").write_text("\n".join(x for x in secrets if not x.startswith("POSTGRES_PASSWORD")) + "\n")
    (root / ".env.dev").write_text(f"POSTGRES_DB=app\nPOSTGRES_PORT={world.local.port}\n"
                                   f"POSTGRES_PASSWORD={pg_password('local')}\n")
    (root / ".env.staging").write_text(f"POSTGRES_DB=app\nPOSTGRES_PASSWORD='{pg_password('staging')}'\n")
    text = (root / "nself.yml").read_text().replace(
        "  staging:\n", "  staging:\n    hosts: [host1]\n    path: /var/lib/app-host1\n    database: {via: direct}\n")
    (root / "nself.yml").write_text(text.replace("sync:\n",
                                                 f"sync:\n  anonymize: {RULES}\n  files: {{paths: [uploads]}}\n"))
    for name in (".nself/servers.yml", ".nself/known_hosts"):
        (root / name).write_text((world.root / name).read_text())
    world.reset("staging", users=25, orders=50)
    world.staging.sh("rm -rf /var/lib/app-host1/uploads && mkdir -p /var/lib/app-host1/uploads && "
                     "echo avatar > /var/lib/app-host1/uploads/a.png")
    world.reset("local", users=1, orders=1)
    inv = str(Path(sys.executable).parent / "inv")
    pulled = subprocess.run([inv, "sync.pull", "staging"], cwd=root, env=env, capture_output=True, text=True,
                            timeout=300)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert pg.summary(world.local) == pg.summary(world.staging)
    assert (root / "uploads" / "a.png").read_text() == "avatar\n"
    masked = subprocess.run([inv, "sync.db", "staging", "local", "--anonymize"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=300)
    assert masked.returncode == 0, masked.stdout + masked.stderr
    assert world.local.sql("select count(*) from users where email like '%@example.com'") == "25"


def pg_password(env: str) -> str:
    from tests.sync.conftest import PASSWORDS

    return PASSWORDS[env]


def test_a_deploy_holding_the_environment_stops_a_sync_into_it(world, project, nself):
    """Deploys and syncs share one lock per environment: the deploy driver's."""
    from nself.deploy.drivers import driver_for
    from nself.project import load_project
    from nself.remote import inventory
    from nself.ui import Output

    world.reset("staging", users=3, orders=3)
    before = pg.summary(world.staging)
    staging = load_project(project, env="staging")
    lock = driver_for(staging, Output(), inventory.load(project)).lock()
    lock.acquire({"who": "ana@laptop", "since": "2026-11-29T10:00:00Z", "what": "deploy (rolling)",
                  "release": "3f2a9c1"})
    try:
        held = nself(["sync.db", "local", "staging"], cwd=project)
        assert held.code == 1 and "ana@laptop" in held.err and "deploy (rolling)" in held.err
    finally:
        lock.release()
    assert pg.summary(world.staging) == before
    world.reset("local", users=4, orders=4)
    assert nself(["sync.db", "local", "staging"], cwd=project).code == 0       # free again
    assert pg.summary(world.staging) == pg.summary(world.local)


def _tables(cluster: pg.Cluster) -> list[str]:
    return sorted(cluster.sql("select schemaname || '.' || tablename from pg_tables "
                              "where schemaname not in ('pg_catalog', 'information_schema')").split())


def test_a_sync_mirrors_the_source_and_rollback_removes_the_tables_it_added(world, project, nself):
    """Issue 13: `pg_restore --clean` drops only what the dump holds; the sync and the snapshot
    restore start from a clean schema set instead, so both give exactly the source / the snapshot."""
    world.reset("staging", users=5, orders=5)
    world.staging.sql("create table newtab (a int); insert into newtab values (1), (2); "
                      "create schema extra; create table extra.t (b text); insert into extra.t values ('x')")
    world.reset("local", users=3, orders=3)
    world.local.sql("create table localonly (x int); insert into localonly values (7)")
    before, counts = _tables(world.local), pg.summary(world.local)
    done = nself(["sync.db", "staging", "local"], cwd=project)
    assert done.code == 0, done.err
    assert _tables(world.local) == _tables(world.staging)            # localonly dropped: a mirror
    back = nself(["sync.rollback", "local"], cwd=project)
    assert back.code == 0, back.err
    assert _tables(world.local) == before and pg.summary(world.local) == counts
    assert world.local.sql("select x from localonly") == "7"
    # --keep-extra keeps the tables only the target has
    kept = nself(["sync.db", "staging", "local", "--keep-extra"], cwd=project)
    assert kept.code == 0, kept.err
    assert _tables(world.local) == sorted(_tables(world.staging) + ["public.localonly"])
    assert nself(["sync.rollback", "local"], cwd=project).code == 0
    assert _tables(world.local) == before


def test_an_environment_onto_itself_is_refused(world, project, nself):
    for argv in (["sync.db", "local", "local"], ["sync.db", "dev", "local"], ["sync.db", "staging", "staging"],
                 ["sync.files", "local", "local"], ["sync.config", "staging", "stage"], ["sync.push", "local"]):
        result = nself(argv, cwd=project)
        assert result.code == 2 and "onto itself" in result.err, (argv, result.err)
    assert not (project / ".nself" / "state").exists()


def _interrupt_when(process, ready, sig) -> bool:
    """Send `sig` to nself once `ready(descendants)` holds; the descendants it had then."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        found = _descendants(process.pid)
        if ready(found):
            os.kill(process.pid, sig)
            return [pid for pid, _ in found]
        time.sleep(0.02)
    return []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pids) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def test_a_signal_during_the_stream_stops_it_and_puts_the_snapshot_back(world, project):
    world.reset("staging", users=2000, orders=60000)
    world.staging.sql("update orders set note = repeat(note, 20)")
    world.reset("local", users=11, orders=13)
    before = pg.summary(world.local)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
    process = subprocess.Popen([NSELF, "sync.db", "staging", "local"], cwd=project, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def streaming(found):
        copied = world.local.sql("select coalesce(sum(bytes_processed), 0) from pg_stat_progress_copy",
                                 db="postgres")
        return any(name == "ssh" for _, name in found) and int(copied) > 1_000_000

    children = _interrupt_when(process, streaming, signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert children, "the stream finished before the test could interrupt it"
    assert process.returncode == 130, err.decode()
    assert "interrupted" in err.decode() and "snapshot" in err.decode()
    assert _alive(children) == []                 # ssh, pg_restore, psql stopped with it
    time.sleep(1)
    assert pg.summary(world.local) == before      # the stream did not finish on its own
    assert not (project / ".nself" / "state" / "locks" / "local").exists()
    assert history.records(project, "local")[-1]["result"] == "interrupted"


def test_a_signal_during_the_checksums_is_reported(world, project):
    world.reset("staging", users=3, orders=3)
    world.reset("local", users=2000, orders=60000)
    world.local.sql("update orders set note = repeat(note, 20)")
    before = pg.summary(world.local)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
    process = subprocess.Popen([NSELF, "sync.db", "staging", "local"], cwd=project, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    children = _interrupt_when(process, lambda found: any("bit_xor" in _cmdline(p) for p, _ in found),
                               signal.SIGTERM)
    out, err = process.communicate(timeout=300)
    assert children, "the checksums finished before the test could interrupt them"
    assert process.returncode == 130, err.decode()
    assert "interrupted" in err.decode() and "count and checksum" in err.decode()
    assert _alive(children) == []
    assert pg.summary(world.local) == before
    assert not (project / ".nself" / "state" / "locks" / "local").exists()


def test_a_rule_for_a_column_that_does_not_exist_is_refused_naming_it(world, project, nself):
    world.reset("staging", users=3, orders=3)
    world.reset("local", users=2, orders=2)
    before = pg.summary(world.local)
    _anonymize(project, RULES[:-1] + ", users.emial: email}")
    result = nself(["sync.db", "staging", "local", "--anonymize"], cwd=project)
    assert result.code == 3 and "public.users.emial" in result.err and "do not exist" in result.err, result.err
    assert pg.summary(world.local) == before and not _snapshots(project)
