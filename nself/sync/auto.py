"""`sync.auto`: the syncs nself.yml `sync.auto` names, run now or on a schedule (pure builders).

```yaml
sync:
  auto:
    db:     {source: staging, target: local, schedule: "0 2 * * *", anonymize: true}
    config: {source: staging, target: local, schedule: on-change}
    files:  {source: staging, target: local, paths: [uploads/, media/], exclude: ["*.tmp"]}
    command: nself            # what the scheduled job runs (default: nself on PATH)
    scheduler: cron           # cron (/etc/cron.d) or systemd (a .service and a .timer)
    workdir: {staging: /srv/app}   # the project's folder on a target (default: its `path`)
```

A schedule is installed where the entry's target lives — this machine for `local`, the first
server of a host environment — as `/etc/cron.d/nself-<project>-sync-<kind>` (the cron.d format:
five fields, a user, a command; file names without dots, as Debian's run-parts wants) or a
systemd `.service` + `.timer` pair (`OnCalendar=` translated from the cron fields), and runs
`cd WORKDIR && COMMAND sync.auto --only KIND --yes` there: that machine needs nself and the
project. `on-change` is not a time: `sync.watch` does it. Kubernetes targets would need a
CronJob running an image with nself and the project in it: not built (said at run time).
"""
from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from nself.errors import ConfigError, UsageError
from nself.plan import LOCAL, Plan, put, shell

KINDS = ("db", "files", "config")
ON_CHANGE = "on-change"
CRON_DIR, SYSTEMD_DIR = "/etc/cron.d", "/etc/systemd/system"
_NAMES = {"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10,
          "nov": 11, "dec": 12, "sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))            # minute hour day-of-month month day-of-week
_FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")
_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_SHORTHANDS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
               "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}


@dataclass(frozen=True)
class Entry:
    """One `sync.auto.<kind>`: what to copy from where to where, and when (`schedule`: a cron
    expression, `on-change`, or None)."""

    kind: str
    source: str
    target: str
    schedule: str | None = None
    options: Mapping = field(default_factory=dict)


def entries(section: Mapping | None, only: str | None = None) -> list[Entry]:
    """The entries of nself.yml `sync.auto` in db, files, config order (ConfigError when none)."""
    section = section or {}
    chosen = [k for k in KINDS if k in section and (only is None or k == only)]
    if only is not None and only not in KINDS:
        raise UsageError(f"--only {only!r} is not one of {', '.join(KINDS)}", hint="pass --only db, files or config")
    if not chosen:
        raise ConfigError("nothing to sync: nself.yml has no sync.auto" + (f".{only}" if only else " entries"),
                          hint="add sync.auto.db / files / config with a source and a target (docs/sync.md)")
    out = []
    for kind in chosen:
        spec = dict(section[kind] or {})
        missing = [k for k in ("source", "target") if not spec.get(k)]
        if missing:
            raise ConfigError(f"sync.auto.{kind} lacks {' and '.join(missing)}",
                              hint=f"set sync.auto.{kind}.source and .target to environment names")
        out.append(Entry(kind, str(spec.pop("source")), str(spec.pop("target")),
                         spec.pop("schedule", None), spec))
    return out


def cron_fields(expression: str) -> list[str]:
    """The five fields of a cron expression (shorthands like @daily expanded), each checked
    against its range; UsageError naming the field otherwise."""
    text = _SHORTHANDS.get(expression.strip(), expression.strip())
    fields = text.split()
    if len(fields) != 5:
        raise UsageError(f"{expression!r} is not a cron schedule (five fields: minute hour day month weekday)",
                         hint='for example "0 2 * * *" (02:00 every day) or "*/15 * * * *"')
    for value, (low, high), name in zip(fields, _RANGES, _FIELD_NAMES):
        for part in value.split(","):
            base, _, step = part.partition("/")
            if step and not step.isdigit():
                raise UsageError(f"{expression!r}: the {name} step {step!r} is not a number", hint="e.g. */15")
            for number in ([] if base == "*" else base.split("-")):
                n = _NAMES.get(number.lower()) if not number.isdigit() else int(number)
                if n is None or not low <= n <= high:
                    raise UsageError(f"{expression!r}: {number!r} is not a {name} ({low}-{high})",
                                     hint='five fields: minute hour day month weekday, e.g. "0 2 * * *"')
    return fields


def on_calendar(expression: str) -> str:
    """systemd's `OnCalendar=` for a cron expression: `DOW YYYY-MM-DD HH:MM:00` with `a..b`
    ranges and `start/step` repetitions (systemd.time(7)). Cron ORs a restricted day of month
    with a restricted weekday; systemd ANDs them, so that one combination is refused."""
    minute, hour, dom, month, dow = cron_fields(expression)
    if dom != "*" and dow != "*":
        raise UsageError(f"{expression!r} restricts both the day of month and the weekday, which cron and systemd "
                         "read differently", hint="use scheduler: cron for this schedule, or restrict only one")

    def part(value: str, first: int) -> str:
        out = []
        for piece in value.split(","):
            base, _, step = piece.partition("/")
            base = base.replace("-", "..") if base != "*" else (str(first) if step else "*")
            out.append(f"{base}/{step}" if step else base)
        return ",".join(out)

    days = ""
    if dow != "*":
        if "/" in dow or "*" in dow:
            raise UsageError(f"{expression!r}: weekday steps are not translated to systemd",
                             hint="list the days (1,3,5) or use scheduler: cron")

        def day(d: str) -> str:
            return _DAYS[int(d) if d.isdigit() else _NAMES[d.lower()]]

        days = ",".join("..".join(day(d) for d in piece.split("-")) for piece in dow.split(",")) + " "
    return f"{days}*-{part(month, 1)}-{part(dom, 1)} {part(hour, 0)}:{part(minute, 0)}:00"


@dataclass(frozen=True)
class Where:
    """The machine a schedule goes on (`local` or a server name), the project's folder there,
    whether it is a Kubernetes environment, and the project's name."""

    on: str
    workdir: str
    project: str
    kubernetes: bool = False


def unit_name(project: str, kind: str) -> str:
    """`nself-<project>-sync-<kind>`, only letters, digits, - and _ (cron.d ignores other names)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"nself-{project}-sync-{kind}")


def job_command(where: Where, command: str, entry: Entry, force_production: bool) -> str:
    """What the scheduled job runs: this very entry, as a person would type it."""
    argv = [*shlex.split(command), "sync.auto", "--only", entry.kind, "--yes",
            *(["--force-production"] if force_production else [])]
    return f"cd {shlex.quote(where.workdir)} && {shlex.join(argv)} >> .nself/sync-auto.log 2>&1"


def cron_file(entry: Entry, schedule: str, command: str) -> str:
    """An /etc/cron.d file: the job as root, PATH set (cron's own PATH is minimal)."""
    return (f"# nself sync.auto: {entry.kind} {entry.source} -> {entry.target}, installed by nself; "
            "`nself sync.auto --unschedule` removes it\n"
            "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
            f"{' '.join(cron_fields(schedule))} root {command}\n")


def systemd_units(entry: Entry, schedule: str, command: str, name: str) -> dict[str, str]:
    """The `.service` (oneshot) and `.timer` (Persistent: a missed run happens at boot)."""
    service = (f"[Unit]\nDescription=nself sync.auto {entry.kind} {entry.source} -> {entry.target}\n\n"
               f"[Service]\nType=oneshot\nExecStart=/bin/sh -c {shlex.quote(command)}\n")
    timer = (f"[Unit]\nDescription=nself sync.auto {entry.kind} schedule ({schedule})\n\n"
             f"[Timer]\nOnCalendar={on_calendar(schedule)}\nPersistent=true\nUnit={name}.service\n\n"
             "[Install]\nWantedBy=timers.target\n")
    return {f"{name}.service": service, f"{name}.timer": timer}


def schedule_plan(entry: Entry, schedule: str, where: Where, command: str, scheduler: str,
                  force_production: bool) -> Plan:
    """Install (or replace: the same file names every time) the schedule of one entry."""
    _no_cronjob(entry, where)
    name, job = unit_name(where.project, entry.kind), job_command(where, command, entry, force_production)
    plan = Plan(f"schedule sync.auto.{entry.kind} ({entry.source} → {entry.target}) at {schedule!r} "
                f"with {scheduler} on {'this machine' if where.on == LOCAL else where.on}")
    if scheduler == "cron":
        return plan.add(put(f"write the cron entry {CRON_DIR}/{name}", f"{CRON_DIR}/{name}",
                            cron_file(entry, schedule, job), on=where.on, mode=0o644))
    units = systemd_units(entry, schedule, job, name)
    plan.extend(put(f"write {SYSTEMD_DIR}/{file}", f"{SYSTEMD_DIR}/{file}", text, on=where.on, mode=0o644)
                for file, text in units.items())
    return plan.add(shell(f"start the timer {name}.timer", f"systemctl daemon-reload && systemctl enable --now "
                          f"{shlex.quote(name)}.timer", on=where.on, timeout=60))


def _no_cronjob(entry: Entry, where: Where) -> None:
    if where.kubernetes:
        from nself.deploy.core import NotSupported

        raise NotSupported(f"scheduling sync.auto.{entry.kind} into the Kubernetes environment {entry.target} "
                           "(a CronJob) is not built: it needs an image holding nself and the project",
                           "schedule it from a machine that has the project (a CI schedule, or a host target)")


def unschedule_plan(entry: Entry, where: Where) -> Plan:
    """Remove both kinds of schedule of one entry (whichever is there; nothing there is fine)."""
    _no_cronjob(entry, where)
    name, q = unit_name(where.project, entry.kind), shlex.quote
    plan = Plan(f"unschedule sync.auto.{entry.kind} on {'this machine' if where.on == LOCAL else where.on}")
    units = " ".join(q(f"{SYSTEMD_DIR}/{name}.{suffix}") for suffix in ("service", "timer"))
    return plan.add(
        shell(f"remove the cron entry {CRON_DIR}/{name}", f"rm -f {q(f'{CRON_DIR}/{name}')}", on=where.on,
              timeout=60),
        shell(f"stop and remove the systemd timer {name}.timer, if any",
              f"if [ -e {q(f'{SYSTEMD_DIR}/{name}.timer')} ]; then "
              f"(systemctl disable --now {q(name)}.timer 2>/dev/null || true); rm -f {units}; "
              "(systemctl daemon-reload 2>/dev/null || true); fi", on=where.on, timeout=60))


def scheduled(entry: Entry, given: str | None) -> str | None:
    """The cron schedule to install: `--schedule CRON`, or with `--schedule config` the entry's
    own (None for an entry without one or with `on-change`)."""
    chosen = entry.schedule if given == "config" else given
    return None if chosen in (None, "", ON_CHANGE) else str(chosen)


def where(project, inventory: Mapping, workdirs: Mapping | None) -> Where:
    """Where `project.env`'s schedules go: this machine for `local`, else the environment's
    first server, in `sync.auto.workdir.<env>` or the environment's `path`."""
    name = project.name
    if project.env == "local":
        return Where(LOCAL, (workdirs or {}).get("local") or str(project.root), name)
    from nself.deploy.targets import SshTarget, resolve

    target = resolve(project, inventory)
    if not isinstance(target, SshTarget):
        return Where("cluster", "", name, kubernetes=True)
    workdir = (workdirs or {}).get(project.env) or target.path
    if not workdir:
        raise ConfigError(f"no folder for {project.env}'s project on {target.servers[0]}",
                          hint=f"set sync.auto.workdir.{project.env} (or environments.{project.env}.path)")
    return Where(target.servers[0], workdir, name)
