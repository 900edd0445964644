"""`nself db` commands as plan steps on the database's machine (pure builders).

Every step runs a PostgreSQL client through `Database.tool` (inside the compose container, or
on the machine with the password in a 0600 pgpass file named by the session id), so the same
builder serves this machine and a host over SSH. Backups are `pg_dump -Fc` files on the
database's machine, `<state>/backups/db/<env>-<UTC time>.dump`, written under a temporary name
and renamed (a failed dump leaves nothing), the newest `keep` kept. A restore is sync's: the
dump restored into a clean schema set in one transaction (`nself.sync.db`), so a failed restore
changes nothing and a finished one is an exact copy of the backup.
"""
from __future__ import annotations

import posixpath
import shlex

from nself.errors import Exit
from nself.plan import Step, shell
from nself.sync.db import restore_snapshot_step
from nself.sync.endpoints import Database

DUMP_TIMEOUT = 6 * 3600        # seconds: a large database's dump or restore
QUERY_TIMEOUT = 600            # seconds: one query, migration or seed file
LIST_TIMEOUT = 60
NULL = "\\N"                   # how `db.query` asks psql to print NULL (COPY's spelling)


def folder(db: Database) -> str:
    """Where the environment's backups live on the database's machine."""
    return posixpath.join(db.state, "backups", "db")


def backup_name(env: str, stamp: str) -> str:
    """`<env>-<stamp>.dump`; `stamp` is UTC `YYYYmmddTHHMMSSmmmZ`, so names sort by time."""
    return f"{env}-{stamp}.dump"


def backup_steps(db: Database, session: str, stamp: str, keep: int) -> tuple[list[Step], str]:
    """Dump to `<folder>/<env>-<stamp>.dump` (renamed into place), then keep the newest `keep`
    of this environment's backups. Returns (steps, the backup's path)."""
    q = shlex.quote
    path = posixpath.join(folder(db), backup_name(db.env, stamp))
    partial = path + ".partial"
    dump = db.tool("pg_dump", "-Fc", "-d", db.name, sync_id=session)
    steps = [
        shell(f"back up {db.env}'s database to {path}",
              f"mkdir -p {q(folder(db))} && if {dump} > {q(partial)}; then mv {q(partial)} {q(path)}; "
              f"else s=$?; rm -f {q(partial)}; exit $s; fi",
              on=db.on, error_code=Exit.DATABASE, timeout=DUMP_TIMEOUT),
        shell(f"keep the newest {keep} backups of {db.env}",
              f"ls -1 {q(folder(db))}/{q(db.env)}-*.dump 2>/dev/null | sort -r | tail -n +{keep + 1} "
              "| xargs -r rm -f --", on=db.on, may_fail=True, timeout=LIST_TIMEOUT),
    ]
    return steps, path


def list_step(db: Database) -> Step:
    """`path|bytes|mtime` per backup of the environment (GNU stat, as on Debian/Ubuntu hosts)."""
    q = shlex.quote
    return shell(f"list {db.env}'s backups",
                 f"for f in {q(folder(db))}/{q(db.env)}-*.dump; do [ -f \"$f\" ] && stat -c '%n|%s|%Y' \"$f\"; "
                 "done; true", on=db.on, timeout=LIST_TIMEOUT)


def parse_list(text: str) -> list[dict]:
    """list_step's output → [{"name", "path", "bytes", "modified"}], oldest first."""
    rows = []
    for line in text.splitlines():
        path, size, mtime = line.rsplit("|", 2)
        rows.append({"name": posixpath.basename(path), "path": path, "bytes": int(size), "modified": int(mtime)})
    return sorted(rows, key=lambda r: r["name"])


def exists_step(db: Database, path: str) -> Step:
    """Fails (exit 2) when `path` is not a file on the database's machine."""
    return shell(f"check that {path} exists", f"test -f {shlex.quote(path)}", on=db.on, error_code=Exit.USAGE,
                 timeout=LIST_TIMEOUT)


def restore_step(db: Database, session: str, path: str) -> Step:
    """The backup at `path` into a clean schema set, in one transaction (sync's restore)."""
    return restore_snapshot_step(db, session, path, f"restore {db.env}'s database from {path}")


def query_step(db: Database, session: str, sql: str) -> Step:
    """One SQL text through `psql -c` (its last statement's result as CSV with a header;
    NULL printed as \\N); ON_ERROR_STOP makes an SQL error a failed step (exit 5)."""
    return shell(f"run a query on {db.env}'s database",
                 db.tool("psql", "-X", "--csv", "-P", f"null={NULL}", "-v", "ON_ERROR_STOP=1", "-d", db.name,
                         "-c", sql, sync_id=session),
                 on=db.on, error_code=Exit.DATABASE, timeout=QUERY_TIMEOUT)


def value_step(db: Database, session: str, summary: str, sql: str) -> Step:
    """One SQL text whose result is read as plain text (`psql -At`)."""
    return shell(summary, db.tool("psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", db.name, "-c", sql,
                                  sync_id=session),
                 on=db.on, error_code=Exit.DATABASE, timeout=QUERY_TIMEOUT)


def script_step(db: Database, session: str, summary: str, sql: str) -> Step:
    """An SQL script (stdin, `psql -1 -f -`): one transaction, the first error ends it."""
    return shell(summary, db.tool("psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", db.name, "-f", "-",
                                  sync_id=session),
                 on=db.on, data=sql, error_code=Exit.DATABASE, timeout=QUERY_TIMEOUT)


def shell_fragment(db: Database, session: str, readonly: bool, tty: bool) -> str:
    """The interactive `psql` for `db.shell`, as a shell fragment on the database's machine.
    `readonly` starts every transaction read-only (a guard against slips, not a permission:
    `SET default_transaction_read_only = off` undoes it). `tty` gives a container exec a
    terminal (`exec -it`)."""
    conninfo = f"dbname={db.name} connect_timeout=10" \
        + (" options='-c default_transaction_read_only=on'" if readonly else "")
    fragment = db.tool("psql", "-d", conninfo, sync_id=session)
    if tty and db.via == "exec":
        fragment = fragment.replace(f"{db.runtime} exec -i ", f"{db.runtime} exec -it ", 1)
    return fragment
