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
    runtime.guard_production(c, target, "syncing into production", force_production)


def _pair(c, source: str, target: str) -> str:
    """The target's canonical name; an environment onto itself is refused (exit 2): the
    restore would drop the very database its dump is being read from."""
    from nself.errors import UsageError

    target_env = _canonical(c, target)
    if _canonical(c, source) == target_env:
        raise UsageError(f"cannot sync {target_env} onto itself", hint="name two different environments")
    return target_env


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


def db_options(project, tables, exclude_table_data, anonymize: bool, jobs: int, keep_extra: bool = False):
    from nself.sync import mask
    from nself.sync.db import DbOptions

    rules = mask.normalize(project.settings.section("sync", "anonymize") if project.settings else None) \
        if anonymize else None
    return DbOptions(tuple(tables or ()), tuple(exclude_table_data or ()), rules, int(jobs), keep_extra)


def run_db(c, source: str, target: str, options_of, sync_id: str | None = None) -> dict | None:
    """Resolve both databases, then print the plan (--dry-run) or run it."""
    from nself.plan import emit
    from nself.sync import db as dbsync
    from nself.sync import endpoints, history
    from nself.sync.operations import sync_db

    src_project, servers = _side(c, source)
    dst_project, _ = _side(c, target)
    src, dst = endpoints.resolve(src_project, servers), endpoints.resolve(dst_project, servers)
    if src.same_as(dst):
        from nself.errors import UsageError

        raise UsageError(f"{source} and {target} name the same database ({dst.describe()}): "
                         "it cannot be synced onto itself", hint="check environments.<env>.database in nself.yml")
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
            "keep_extra": "keep the target's tables the source lacks (a whole-database sync drops them)",
            "force_production": _FORCE})
def db(c, source, target, tables=None, exclude_table_data=None, anonymize=False, jobs=1, keep_extra=False,
       force_production=False):
    """Mirror one environment's database into another (snapshot taken first)."""
    _guard(c, _pair(c, source, target), force_production)
    record = run_db(c, source, target,
                    lambda project: db_options(project, tables, exclude_table_data, anonymize, jobs, keep_extra))
    if record:
        _render(c, record)


def run_files(c, source: str, target: str, paths, exclude, delete: bool, sync_id: str | None = None):
    from nself.plan import emit
    from nself.sync import files as filesync
    from nself.sync import history
    from nself.sync.operations import sync_files

    src_project, servers = _side(c, source)
    dst_project, _ = _side(c, target)
    chosen = filesync.paths(dst_project, paths)
    settings = dst_project.settings
    excludes = tuple((settings.section("sync", "exclude") if settings else None) or ()) + tuple(exclude or ())
    src, dst = filesync.resolve(src_project, servers), filesync.resolve(dst_project, servers)
    sync_id = sync_id or history.new_id()
    known = dst_project.root / ".nself" / "known_hosts"
    both_hosts = src.on != "local" and dst.on != "local"
    plan = filesync.plan(dst_project.root, src, dst, chosen, excludes, delete, sync_id, servers,
                         known.read_text() if both_hosts and known.is_file() else "")
    if runtime.options(c).dry_run:
        emit(runtime.output(c), plan)
        return None
    return sync_files(_context(c, dst_project, servers, sync_id), src, dst, plan, chosen, delete)


@task(positional=["source", "target"], iterable=["paths", "exclude"],
      help={"source": _SRC, "target": _DST, "paths": "folders under the environment's root (default sync.files.paths)",
            "exclude": "rsync patterns to skip, besides sync.exclude (repeatable)",
            "delete": "delete target files the source lacks (off unless asked)", "force_production": _FORCE})
def files(c, source, target, paths=None, exclude=None, delete=False, force_production=False):
    """Copy files (sync.files.paths) with rsync, the target snapshotted first."""
    _guard(c, _pair(c, source, target), force_production)
    record = run_files(c, source, target, paths, exclude, delete)
    if record:
        _render(c, record)


@task(positional=["source", "target"],
      help={"source": _SRC, "target": _DST, "include_secrets": "also copy secret values (the target keeps its own "
                                                            "otherwise)", "force_production": _FORCE})
def config(c, source, target, include_secrets=False, force_production=False):
    """Diff env files (secrets masked), then merge the non-secret keys."""
    _guard(c, _pair(c, source, target), force_production)
    run_config(c, source, target, include_secrets)


def run_config(c, source: str, target: str, include_secrets: bool, sync_id: str | None = None) -> None:
    """The diff table, then the merge plan printed (--dry-run) or run and rendered."""
    from nself.plan import emit
    from nself.sync import config as configsync
    from nself.sync import history
    from nself.sync.operations import sync_config

    src_project, servers = _side(c, source)
    dst_project, _ = _side(c, target)
    changes = configsync.diff(src_project.variables, dst_project.variables)
    out = runtime.output(c)
    if not out.json_mode:
        out.table(["key", "change", source, target], [ch.row() for ch in changes],
                  title=f"env {src_project.env} → {dst_project.env}")
    root, sync_id = dst_project.root, sync_id or history.new_id()
    file = configsync.target_file(root, dst_project.env, dst_project.variables.files)
    merge, snapshot = configsync.plan(root, src_project.env, dst_project.env, changes, file,
                                      file.read_text() if file.is_file() else None, include_secrets,
                                      root / ".nself" / "state" / "snapshots" / "config" / sync_id)
    rows = [dict(zip(["key", "change", "source", "target"], ch.row())) for ch in changes]
    if runtime.options(c).dry_run:
        if out.json_mode:
            out.emit({"changes": rows, "plan": merge.to_json()})
        else:
            emit(out, merge)
        return
    record = sync_config(_context(c, dst_project, servers, sync_id), src_project.env, dst_project.env, merge,
                         snapshot)
    out.emit({**record, "changes": rows}, render=lambda r: out.say(
        f"{merge.title}: {r['result']} (sync {r['id']}; `nself sync.rollback {r['env']}` puts it back)"))


def _everything(c, source: str, target: str, force_production: bool) -> None:
    """sync.pull / sync.push: the database (when the project has one) and the files (when
    sync.files.paths is set), one sync id, one record each."""
    from nself.errors import UsageError
    from nself.sync import history

    target_env = _pair(c, source, target)
    _guard(c, target_env, force_production)
    project, _ = _side(c, target)
    has_db = any((s.image or "").split("/")[-1].startswith(("postgres", "postgis")) or s.name == "postgres"
                 for s in project.services.values()) or bool(project.settings.env_target(target_env).get("database"))
    has_files = bool(project.settings.section("sync", "files", "paths")) if project.settings else False
    if not has_db and not has_files:
        raise UsageError("nothing to sync: no PostgreSQL service and no sync.files.paths",
                         hint="add sync.files.paths to nself.yml, or use sync.db / sync.files")
    sync_id = history.new_id()
    if has_db:
        record = run_db(c, source, target, lambda p: db_options(p, (), (), False, 1), sync_id)
        if record:
            _render(c, record)
    if has_files:
        record = run_files(c, source, target, None, None, False, sync_id)
        if record:
            _render(c, record)


@task(positional=["environment"], help={"environment": _SRC})
def pull(c, environment):
    """Bring an environment's database and files here (local)."""
    _everything(c, environment, "local", False)


@task(positional=["environment"], help={"environment": _DST, "force_production": _FORCE})
def push(c, environment, force_production=False):
    """Send local's database and files to an environment."""
    _everything(c, "local", environment, force_production)


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
                         hint="`nself sync.history` lists the syncs and their ids")
    if runtime.options(c).dry_run:
        from nself.plan import emit
        from nself.sync.operations import rollback_plans

        emit(runtime.output(c), rollback_plans(project, servers, record, history.new_id()))
        return
    _render(c, do_rollback(_context(c, project, servers, history.new_id()), project, record))


@task(help={"environment": "only syncs into this environment", "limit": "the newest N (default 20)"})
def history(c, environment=None, limit=20):
    """List the syncs: when, what, from → to, result, snapshots kept."""
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
    """Show each environment's last sync and what rollback would restore."""
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


def _auto_section(c) -> dict:
    from nself.project import find_root, settings

    root = runtime.options(c).root or find_root()
    loaded = settings.load(root) if root else None
    return dict((loaded.section("sync", "auto") if loaded else None) or {})


def _run_entry(c, entry, force_production: bool) -> None:
    """One sync.auto entry, as sync.db / sync.files / sync.config would run it."""
    options = entry.options
    _guard(c, _pair(c, entry.source, entry.target), force_production)
    if entry.kind == "config":
        run_config(c, entry.source, entry.target, bool(options.get("include_secrets")))
        return
    if entry.kind == "db":
        record = run_db(c, entry.source, entry.target, lambda project: db_options(
            project, options.get("tables"), options.get("exclude_table_data"), bool(options.get("anonymize")),
            int(options.get("jobs") or 1), bool(options.get("keep_extra"))))
    else:
        record = run_files(c, entry.source, entry.target, options.get("paths"), options.get("exclude"),
                           bool(options.get("delete")))
    if record:
        _render(c, record)


def _schedules(c, entries, section: dict, schedule: str | None, unschedule: bool, force_production: bool):
    """[(plan, target project, inventory)] installing or removing the entries' schedules; an
    entry without a time is said and skipped."""
    from nself.errors import UsageError
    from nself.sync import auto as autosync

    out, plans = runtime.output(c), []
    for entry in entries:
        project, servers = _side(c, _pair(c, entry.source, entry.target))
        where = autosync.where(project, servers, section.get("workdir"))
        if unschedule:
            plans.append((autosync.unschedule_plan(entry, where), project, servers))
            continue
        cron = autosync.scheduled(entry, schedule)
        if cron is None:
            out.say(f"sync.auto.{entry.kind}: not scheduled ("
                    + ("on-change: `nself sync.watch` does that)" if entry.schedule == autosync.ON_CHANGE
                       else "no schedule in nself.yml; pass --schedule CRON)"))
            continue
        if project.env == "production" and not force_production:
            raise UsageError(f"sync.auto.{entry.kind} writes into production: a scheduled job cannot type its name",
                             hint="pass --force-production to schedule it anyway (the job then carries it)")
        plans.append((autosync.schedule_plan(entry, cron, where, section.get("command") or "nself",
                                             section.get("scheduler") or "cron", force_production), project, servers))
    return plans


@task(help={"only": "only this entry: db, files or config",
            "schedule": "install a schedule: a cron expression for every entry, or `config` for each entry's own "
                        "nself.yml schedule (cron.d file or systemd timer on the target's machine)",
            "unschedule": "remove the installed schedules", "force_production": _FORCE})
def auto(c, only=None, schedule=None, unschedule=False, force_production=False):
    """Run the syncs of nself.yml sync.auto, or (un)schedule them."""
    from nself.sync import auto as autosync

    section = _auto_section(c)
    entries = autosync.entries(section, only)
    if schedule is None and not unschedule:
        for entry in entries:
            _run_entry(c, entry, force_production)
        return
    for entry in entries:              # a bad expression is exit 2 before anything is touched
        if autosync.scheduled(entry, schedule) is not None and not unschedule:
            autosync.cron_fields(autosync.scheduled(entry, schedule))
    plans = _schedules(c, entries, section, schedule, unschedule, force_production)
    out = runtime.output(c)
    if runtime.options(c).dry_run:
        from nself.plan import emit

        emit(out, [plan for plan, _, _ in plans])
        return
    from nself.sync.machines import Machines

    done = []
    for plan, project, servers in plans:
        with Machines(project.root, {s.on for s in plan.steps}, servers) as run:
            run(plan.steps)
        done.append({"title": plan.title, "on": plan.steps[0].on,
                     "files": [s.spec["path"] for s in plan.steps if s.kind == "put"]})
    out.emit({"unscheduled" if unschedule else "scheduled": done},
             render=lambda d: [out.say(f"{item['title']}: done") for item in done])


def _not_built(what: str, instead: str):
    from nself.deploy.core import NotSupported

    raise NotSupported(f"{what} is not built yet", instead)


@task(positional=["source", "target"], iterable=["paths", "exclude"],
      help={"source": "the environment whose files to watch (local: this machine)", "target": _DST,
            "files": "watch files (the default)", "db": "watch the database (not built: says so)",
            "paths": "folders to watch (default sync.files.paths)",
            "exclude": "patterns whose changes start no sync, besides sync.exclude (repeatable)",
            "debounce": "milliseconds a batch of changes may collect before its sync (default 1000)",
            "force_production": _FORCE})
def watch(c, source, target, files=False, db=False, paths=None, exclude=None, debounce=1000,
          force_production=False):
    """Push local file changes to an environment, one sync per batch."""
    from nself.errors import UsageError
    from nself.sync import files as filesync
    from nself.sync import watch as watching
    from nself.sync.operations import interruptible

    if db:
        _not_built("sync.watch --db (polling the database for a change marker)",
                   "run sync.db when you need it, or schedule it with `sync.auto --schedule`")
    target_env = _pair(c, source, target)
    if _canonical(c, source) != "local":
        from nself.deploy.core import NotSupported

        raise NotSupported("watching another machine's files is not built",
                           f"watch here: sync.watch local {target_env}")
    _guard(c, target_env, force_production)
    project = runtime.load(c, env="local")
    chosen = filesync.paths(project, paths)
    folders = [project.root / p for p in chosen]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise UsageError(f"nothing to watch at {', '.join(missing)}", hint="create the folder, or pass --paths")
    record = run_files(c, "local", target_env, paths, exclude, False)       # the target starts equal
    if record is None:                                                     # --dry-run: the plan of one sync
        return
    out, count = runtime.output(c), 1
    _render(c, record)
    out.say(f"watching {', '.join(chosen)} for changes → {target_env} (Ctrl-C stops)")
    excludes = tuple((project.settings.section("sync", "exclude") if project.settings else None) or ()) \
        + tuple(exclude or ())
    with interruptible():
        for changed in watching.batches(folders, excludes, int(debounce)):
            out.say(f"{len(changed)} changed path(s): syncing")
            _render(c, run_files(c, "local", target_env, paths, exclude, False))
            count += 1
    out.say(f"stopped watching after {count} sync(s)")


ns = Collection("sync", db, files, config, pull, push, rollback, history, status, auto, watch)
ns.configure({"sync": {}})
