"""sync.auto: the entries of nself.yml run now, and their schedules installed on the target's
machine (a networked sshd test host), read back by a real cron daemon (busybox crond parses
the entry and prints what it will run) and, for systemd timers, by `systemd-analyze`."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from nself.errors import UsageError
from nself.sync import auto
from nself.sync import history

NSELF = str(__import__("pathlib").Path(sys.executable).parent / "nself")
AUTO = """  auto:
    db: {source: staging, target: local, schedule: "0 2 * * *"}
    config: {source: staging, target: local, schedule: on-change}
    files: {source: staging, target: local, paths: [uploads]}
"""
PUSH = f"""  auto:
    files: {{source: local, target: staging, paths: [uploads], schedule: "*/15 9-17 * * 1-5"}}
    command: {NSELF}
    workdir: {{staging: /var/lib/app-host1/project}}
"""


def _with_auto(project, text: str) -> None:
    settings = project / "nself.yml"
    settings.write_text(settings.read_text().replace("sync:\n", "sync:\n" + text, 1))


@pytest.mark.parametrize("expression, calendar", [
    ("0 2 * * *", "*-*-* 02:00:00"),
    ("*/15 9-17 * * 1-5", "Mon..Fri *-*-* 09..17:00/15:00"),
    ("30 4 1,15 * *", "*-*-01,15 04:30:00"),
    ("@hourly", "*-*-* *:00:00"),
])
def test_cron_schedules_become_calendars_systemd_reads_the_same(expression, calendar):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    ours = auto.on_calendar(expression)
    done = subprocess.run(["systemd-analyze", "calendar", ours], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert f"Normalized form: {calendar}" in done.stdout


@pytest.mark.parametrize("bad", ["0 25 * * *", "* * *", "61 * * * *", "0 2 * * 8", "*/x * * * *"])
def test_a_bad_cron_expression_is_refused_naming_the_field(bad):
    with pytest.raises(UsageError) as refused:
        auto.cron_fields(bad)
    assert repr(bad) in refused.value.message


def test_systemd_units_pass_systemd_analyze_verify(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    entry = auto.Entry("db", "staging", "local", "0 2 * * *")
    where = auto.Where("local", "/srv/app", "app")
    name = auto.unit_name("app", "db")
    for file, text in auto.systemd_units(entry, "0 2 * * *", auto.job_command(where, "nself", entry, False),
                                         name).items():
        (tmp_path / file).write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / f"{name}.timer"),
                           str(tmp_path / f"{name}.service")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "OnCalendar=*-*-* 2:0:00\n" in (tmp_path / f"{name}.timer").read_text()


def _crond_reads(world, line: str) -> str:
    """busybox crond (a real cron daemon) started on host1 with `line` as root's crontab: what
    it logs when it parses the table (a bitmap per field, or a parse error)."""
    return world.staging.sh(
        "d=/var/lib/crond-check && rm -rf $d && mkdir -p $d && "
        f"printf '%s\\n' {__import__('shlex').quote(line)} > $d/root && "
        "(timeout 2 busybox crond -f -l 0 -L /dev/stdout -c $d || true)")


def test_schedule_is_planned_then_installed_once_on_the_target_host_then_removed(world, project, nself):
    _with_auto(project, PUSH)
    cron = "/etc/cron.d/nself-app-sync-files"
    world.staging.sh(f"rm -f {cron}")
    dry = nself(["sync.auto", "--schedule", "config", "--dry-run"], cwd=project)
    assert dry.code == 0, dry.err
    assert "Plan: schedule sync.auto.files (local → staging) at '*/15 9-17 * * 1-5' with cron on host1" in dry.out
    assert f"[host1] write the cron entry {cron}" in dry.out
    assert world.staging.sh(f"test -e {cron} || echo absent").strip() == "absent"
    for _ in range(2):                     # idempotent: the same file, replaced
        done = nself(["sync.auto", "--schedule", "config", "--json"], cwd=project)
        assert done.code == 0, done.err
    assert done.json()["scheduled"][0]["files"] == [cron]
    installed = world.staging.sh(f"stat -c '%a %U' {cron} && cat {cron}")
    assert installed.startswith("644 root\n")
    job = [line for line in installed.splitlines() if line.startswith("*/15")]
    assert job == [f"*/15 9-17 * * 1-5 root cd /var/lib/app-host1/project && {NSELF} sync.auto --only files "
                   "--yes >> .nself/sync-auto.log 2>&1"]
    assert world.staging.sh("ls /etc/cron.d | grep -c nself-app").strip() == "1"
    # cron.d's line without its user field is a user crontab line: crond parses it
    fields = job[0].split(" ", 6)
    parsed = _crond_reads(world, " ".join(fields[:5] + fields[6:]))
    assert "parse error" not in parsed and "user:root entry" in parsed
    minutes, hours, _, _, days = [line for line in parsed.splitlines() if set(line) <= {"0", "1"} and line][:5]
    assert minutes == ("1" + "0" * 14) * 4 and hours == "0" * 9 + "1" * 9 + "0" * 6 and days == "0111110"
    gone = nself(["sync.auto", "--unschedule"], cwd=project)
    assert gone.code == 0, gone.err
    assert world.staging.sh(f"test -e {cron} || echo absent").strip() == "absent"


def test_a_broken_cron_line_is_what_crond_refuses(world):
    """The check above can fail: crond names a bad field."""
    assert "parse error" in _crond_reads(world, "61 * * * * true")


def test_schedule_refusals(world, project, nself):
    _with_auto(project, PUSH)
    bad = nself(["sync.auto", "--schedule", "0 25 * * *"], cwd=project)
    assert bad.code == 2 and "hour" in bad.err
    (project / "nself.yml").write_text((project / "nself.yml").read_text().replace("target: staging",
                                                                                   "target: production"))
    prod = nself(["sync.auto", "--schedule", "0 2 * * *"], cwd=project)
    assert prod.code == 2 and "--force-production" in prod.err
    none = nself(["sync.auto", "--only", "db"], cwd=project)
    assert none.code == 3 and "sync.auto.db" in none.err


def test_auto_runs_every_entry_and_dry_run_changes_nothing(world, project, nself):
    _with_auto(project, AUTO)
    world.reset("staging", users=20, orders=30)
    world.reset("local", users=0)
    world.staging.sh("rm -rf /var/lib/app-host1/uploads && mkdir -p /var/lib/app-host1/uploads && "
                     "echo one > /var/lib/app-host1/uploads/one.txt")
    (project / ".env.staging").write_text((project / ".env.staging").read_text() + "FEATURE=on\n")
    dry = nself(["sync.auto", "--dry-run"], cwd=project)
    assert dry.code == 0, dry.err
    assert "pg_restore" in dry.out and "rsync" in dry.out and "FEATURE" in dry.out
    assert history.records(project) == [] and not (project / "uploads" / "one.txt").exists()
    assert world.local.sql("select count(*) from pg_tables where schemaname = 'public'") == "0"
    done = nself(["sync.auto"], cwd=project)
    assert done.code == 0, done.err
    assert [(r["kind"], r["from"], r["env"], r["result"]) for r in history.records(project)] == [
        ("db", "staging", "local", "ok"), ("files", "staging", "local", "ok"), ("config", "staging", "local", "ok")]
    assert world.local.sql("select count(*) from users") == "20"
    assert (project / "uploads" / "one.txt").read_text() == "one\n"
    assert "FEATURE='on'" in (project / ".env.local").read_text()
