"""The database sync as a plan: check → snapshot the target → stream → verify (pure builders).

Every restore is one transaction on the target: `BEGIN`, then (a mirror, the default) the
target's schemas dropped and `public` made again, then the dump as SQL, then `COMMIT` only
when the dump was read to its end — `pg_restore --clean` alone drops only the objects the
dump holds, so a table the target had and the source lacks would survive it (issue 13). A
killed restore changes nothing. Without anonymisation the SQL is `pg_restore -f -` of a
`pg_dump -Fc` stream; with it, `pg_dump` writes plain SQL and `python -m nself.sync.mask`
rewrites the COPY rows of the classified columns on the machine running nself (the personal
values never reach the target). `--keep-extra` and `--tables` drop nothing the dump lacks.
`--jobs N` (N > 1) lands the dump in a file on the target first, because parallel
`pg_restore -j` cannot read a pipe, and restores it without one transaction.

Snapshots are `pg_dump -Fc` files kept on the target's machine (`<state>/snapshots/db/<id>.dump`,
the newest `keep`), written under a temporary name and renamed, with the target's row counts
and checksums recorded beside them so a rollback can prove it restored the same data. A
snapshot is always restored into a clean schema set: the target comes back exactly as it was.
"""
from __future__ import annotations

import json
import posixpath
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nself.errors import Exit
from nself.plan import LOCAL, Plan, Step, put, shell
from nself.remote.inventory import Server
from nself.sync import mask
from nself.sync.endpoints import Database
from nself.sync.stream import on_machine, pipeline

TRANSFER_TIMEOUT = 6 * 3600
CHECK_TIMEOUT = 60
# Drop every schema but the system ones, then make `public` as initdb does (PostgreSQL ≥ 14:
# owned by pg_database_owner, usage for all). Dollar quotes: no nested shell quoting.
CLEAN_SCHEMAS = (
    "DO $clean$ DECLARE s name; BEGIN FOR s IN SELECT nspname FROM pg_namespace WHERE nspname NOT IN "
    "($q$pg_catalog$q$, $q$information_schema$q$) AND nspname NOT LIKE $q$pg\\_%$q$ LOOP "
    "EXECUTE format($q$DROP SCHEMA %I CASCADE$q$, s); END LOOP; "
    "IF EXISTS (SELECT FROM pg_roles WHERE rolname = $q$pg_database_owner$q$) THEN "
    "CREATE SCHEMA public AUTHORIZATION pg_database_owner; ELSE CREATE SCHEMA public; END IF; "
    "GRANT USAGE ON SCHEMA public TO PUBLIC; END $clean$;")
_UNFINISHED = "DO $f$ BEGIN RAISE EXCEPTION $m$the dump ended early: nothing was restored$m$; END $f$;"
_CHECKSUM = "coalesce(bit_xor(($x$x$x$ || substr(md5(t::text), 1, 16))::bit(64)::bigint), 0)"


def summary_sql(checksums: bool) -> str:
    """`schema.table|rows|checksum` for every ordinary table, in one query (query_to_xml runs
    the per-table count); the checksum is order-independent: the xor of each row's md5.
    Literals are dollar-quoted so the command line needs no nested quotes."""
    measure = f"count(*) as n, {_CHECKSUM if checksums else '0'} as s"
    return ("select format($a$%s.%s$a$, n.nspname, c.relname), (xpath($a$/row/n/text()$a$, x))[1]::text, "
            "(xpath($a$/row/s/text()$a$, x))[1]::text from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            f"cross join lateral query_to_xml(format($q$select {measure} from %I.%I t$q$, n.nspname, c.relname), "
            "false, true, $a$$a$) as x where c.relkind = $a$r$a$ and n.nspname not in ($a$pg_catalog$a$, "
            "$a$information_schema$a$) and n.nspname not like $a$pg\\_toast%$a$ order by 1")


def parse_summary(text: str) -> dict[str, list[int]]:
    """psql -At output of `summary_sql` → {schema.table: [rows, checksum]}."""
    out = {}
    for line in text.splitlines():
        name, rows, checksum = line.rsplit("|", 2)
        out[name] = [int(rows), int(checksum)]
    return out


@dataclass(frozen=True)
class DbOptions:
    """What one database sync asks for. `rules` is None without anonymisation."""

    tables: tuple[str, ...] = ()
    exclude_table_data: tuple[str, ...] = ()
    rules: Mapping[str, str] | None = None
    jobs: int = 1
    keep_extra: bool = False

    @property
    def mirror(self) -> bool:
        """Drop what the target has and the source lacks: a whole-database sync, unless asked not to."""
        return not self.keep_extra and not self.tables


@dataclass
class DbPlan:
    """The phases of a database sync. `recover` runs only when `transfer` fails."""

    title: str
    prepare: list[Step] = field(default_factory=list)
    transfer: list[Step] = field(default_factory=list)
    verify: list[Step] = field(default_factory=list)
    cleanup: list[Step] = field(default_factory=list)
    recover: list[Step] = field(default_factory=list)
    snapshot: str = ""                 # the snapshot file on the target's machine
    measure: Step | None = None        # the step whose output is the snapshot's counts and checksums

    def plan(self) -> Plan:
        """What --dry-run shows: every phase in order, the recovery marked as conditional."""
        recover = [Step(f"if the transfer fails: {s.summary}", s.kind, s.argv, s.on, s.spec, s.data)
                   for s in self.recover]
        return Plan(self.title, [*self.prepare, *self.transfer, *recover, *self.verify, *self.cleanup])


def _sql(db: Database, sync_id: str, sql: str, summary: str, **kw) -> Step:
    return shell(summary, db.tool("psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", db.name, "-c", sql,
                                  sync_id=sync_id),
                 on=db.on, error_code=Exit.DATABASE, timeout=kw.pop("timeout", CHECK_TIMEOUT), **kw)


def secret_steps(databases: list[Database], sync_id: str) -> list[Step]:
    """One 0600 pgpass file per machine, holding the passwords of the databases there."""
    steps = []
    by_file: dict[tuple[str, str], list[Database]] = {}
    for db in databases:
        if db.via == "direct" and db.password:
            by_file.setdefault((db.on, db.pgpass(sync_id)), []).append(db)
    for (on, path), dbs in by_file.items():
        lines = "".join(f"{_pgpass_field(d.host)}:{d.port}:{_pgpass_field(d.name)}:{_pgpass_field(d.user)}:"
                        f"{_pgpass_field(d.password or '')}\n" for d in dbs)
        steps += [shell("make the private sync folder", f"mkdir -p -m 0700 {shlex.quote(posixpath.dirname(path))}",
                        on=on),
                  put("write the database password file (0600)", path, lines, on=on, mode=0o600)]
    return steps


def _pgpass_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def cleanup_steps(databases: list[Database], sync_id: str) -> list[Step]:
    paths = sorted({(db.on, db.pgpass(sync_id)) for db in databases if db.via == "direct" and db.password})
    return [shell("remove the database password file", f"rm -f {shlex.quote(path)}", on=on, may_fail=True)
            for on, path in paths]


def snapshot_steps(dst: Database, sync_id: str) -> tuple[list[Step], str]:
    """Dump the target to `<state>/snapshots/db/<id>.dump` (renamed into place), record its
    counts and checksums, and keep the newest `keep`."""
    folder = dst.snapshots()
    path = posixpath.join(folder, f"{sync_id}.dump")
    dump = dst.tool("pg_dump", "-Fc", "-d", dst.name, sync_id=sync_id)
    q = shlex.quote
    steps = [
        shell(f"snapshot {dst.env}'s database to {path}",
              f"mkdir -p {q(folder)} && {dump} > {q(path + '.partial')} && mv {q(path + '.partial')} {q(path)}",
              on=dst.on, error_code=Exit.DATABASE, timeout=TRANSFER_TIMEOUT),
        _sql(dst, sync_id, summary_sql(True), f"count and checksum {dst.env}'s tables (the snapshot's record)",
             timeout=TRANSFER_TIMEOUT),
        shell(f"keep the newest {dst.keep} snapshots",
              f"ls -1t {q(folder)}/*.dump 2>/dev/null | tail -n +{dst.keep + 1} | xargs -r rm -f --",
              on=dst.on, may_fail=True),
    ]
    return steps, path


def restore_fragment(dst: Database, sync_id: str, sql: str, clean: bool) -> str:
    """A shell fragment on `dst`'s machine: the SQL that `sql` (a command) prints, restored in
    one transaction, after the clean schema set when `clean`. COMMIT only follows a `sql` that
    succeeded; otherwise an exception ends the transaction (psql exits 3, nothing changed)."""
    q = shlex.quote
    psql = dst.tool("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dst.name, sync_id=sync_id)
    head = "echo 'BEGIN; SET LOCAL client_min_messages TO warning;'; " \
        + (f"printf '%s\\n' {q(CLEAN_SCHEMAS)}; " if clean else "")
    return f"{{ {head}{sql} && echo 'COMMIT;' || printf '%s\\n' {q(_UNFINISHED)}; }} | {psql} > /dev/null"


def _as_sql(dst: Database, sync_id: str) -> str:
    """pg_restore printing a custom-format dump (stdin) as SQL; `--clean --if-exists` keeps a
    dumped `public` schema from clashing with the one the clean schema set made."""
    return dst.tool("pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", "-f", "-",
                    sync_id=sync_id)


def restore_snapshot_step(dst: Database, sync_id: str, path: str, summary: str) -> Step:
    """Put a snapshot back into a clean schema set: tables a sync added go too (issue 13)."""
    fragment = restore_fragment(dst, sync_id, f"{_as_sql(dst, sync_id)} < {shlex.quote(path)}", True)
    return shell(summary, fragment, on=dst.on, error_code=Exit.DATABASE, timeout=TRANSFER_TIMEOUT)


def _dump_args(options: DbOptions) -> list[str]:
    args = [f"--table={t}" for t in options.tables]
    args += [f"--exclude-table-data={t}" for t in options.exclude_table_data]
    if options.rules is not None:
        return [*args, "--clean", "--if-exists", "--no-owner", "--no-privileges"]    # plain SQL
    return ["-Fc", *args]


def transfer_step(root: Path, src: Database, dst: Database, options: DbOptions, sync_id: str,
                  servers: Mapping[str, Server]) -> Step:
    """The one local pipeline: dump on the source's machine → (mask here) → restore on the target's."""
    dump = on_machine(root, src.on, src.tool("pg_dump", *_dump_args(options), "-d", src.name, sync_id=sync_id),
                      servers)
    if options.rules is not None:
        masker = shlex.join([sys.executable, "-m", "nself.sync.mask", "--rules", json.dumps(options.rules)])
        parts = [dump, masker, on_machine(root, dst.on, restore_fragment(dst, sync_id, "cat", options.mirror),
                                          servers)]
    elif options.jobs > 1:
        landing = posixpath.join(dst.state, "sync", f"{sync_id}.incoming.dump")
        restore = dst.tool("pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges",
                           f"--jobs={options.jobs}", "-d", dst.name, sync_id=sync_id)
        q = shlex.quote
        clean = dst.tool("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dst.name, "-c", CLEAN_SCHEMAS,
                         sync_id=sync_id) + " && " if options.mirror else ""
        parts = [dump, on_machine(root, dst.on, f"cat > {q(landing)} && {clean}{restore} {q(landing)}; "
                                                f"status=$?; rm -f {q(landing)}; exit $status", servers)]
    else:
        parts = [dump, on_machine(root, dst.on, restore_fragment(dst, sync_id, _as_sql(dst, sync_id),
                                                                 options.mirror), servers)]
    what = "anonymised " if options.rules is not None else ""
    return Step(f"stream {src.env}'s {what}database into {dst.env}'s", "run", pipeline(*parts), LOCAL,
                error_code=Exit.DATABASE, timeout=TRANSFER_TIMEOUT)


def check_columns_step(root: Path, src: Database, rules: Mapping[str, str], sync_id: str,
                       servers: Mapping[str, Server]) -> Step:
    """Refuse (exit 3) when a personal-looking column of the source has no rule."""
    listing = ("select format($a$%s.%s.%s$a$, table_schema, table_name, column_name) from information_schema.columns"
               " where table_schema not in ($a$pg_catalog$a$, $a$information_schema$a$)")
    query = on_machine(root, src.on, src.tool("psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", src.name,
                                              "-c", listing, sync_id=sync_id), servers)
    check = shlex.join([sys.executable, "-m", "nself.sync.mask", "--check", "--rules", json.dumps(dict(rules))])
    return Step("check that every anonymisation rule names a column and every personal-looking column has one",
                "run", pipeline(query, check), LOCAL, error_code=Exit.CONFIG, timeout=CHECK_TIMEOUT)


def plan(root: Path, src: Database, dst: Database, options: DbOptions, sync_id: str,
         servers: Mapping[str, Server]) -> DbPlan:
    """Every step of one database sync, nothing run."""
    rules = options.rules
    title = f"sync database {src.env} → {dst.env}" + (f" (anonymised, rules {mask.rules_hash(rules)})"
                                                      if rules is not None else "")
    result = DbPlan(title)
    result.prepare = [*secret_steps([src, dst], sync_id),
                      _sql(src, sync_id, "select 1", f"check that {src.env}'s database answers"),
                      _sql(dst, sync_id, "select 1", f"check that {dst.env}'s database answers")]
    if rules is not None:
        result.prepare.append(check_columns_step(root, src, rules, sync_id, servers))
    snapshot, result.snapshot = snapshot_steps(dst, sync_id)
    result.prepare += snapshot
    result.measure = snapshot[1]
    result.transfer = [transfer_step(root, src, dst, options, sync_id, servers)]
    result.recover = [restore_snapshot_step(dst, sync_id, result.snapshot,
                                            f"put {dst.env}'s snapshot back (the transfer failed)")]
    result.verify = [_sql(src, sync_id, summary_sql(False), f"count {src.env}'s rows", timeout=TRANSFER_TIMEOUT),
                     _sql(dst, sync_id, summary_sql(False), f"count {dst.env}'s rows", timeout=TRANSFER_TIMEOUT)]
    result.cleanup = cleanup_steps([src, dst], sync_id)
    return result


def rollback_plan(dst: Database, snapshot: str, restore_id: str) -> DbPlan:
    """Put a snapshot back, then count and checksum the tables to compare with its record."""
    result = DbPlan(f"roll {dst.env}'s database back to snapshot {posixpath.basename(snapshot)}")
    result.prepare = [*secret_steps([dst], restore_id)]
    result.transfer = [restore_snapshot_step(dst, restore_id, snapshot, f"restore {dst.env}'s snapshot")]
    result.verify = [_sql(dst, restore_id, summary_sql(True), f"count and checksum {dst.env}'s tables",
                          timeout=TRANSFER_TIMEOUT)]
    result.cleanup = cleanup_steps([dst], restore_id)
    return result
