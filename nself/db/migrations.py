"""Plain numbered SQL migrations: `db/migrations/NNNN_name.up.sql` and (optional)
`NNNN_name.down.sql`, recorded in the table `nself_migrations` (version, name, sha256 of the
up file, when) — golang-migrate's file names, so the files also work with that tool.

Each migration is one transaction: the table made if missing, a refusal when the version is
already recorded (two `migrate up` at once), the file, the record — all or nothing. A file
that must run outside a transaction (`CREATE INDEX CONCURRENTLY`) does not fit this shape.
Reading files is the only I/O here; the SQL is built from them, nothing runs.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from nself.errors import ConfigError, UsageError

TABLE = "nself_migrations"
_FILE = re.compile(r"^(\d+)_([a-z0-9_]+)\.(up|down)\.sql$")
CREATE_TABLE = (f"CREATE TABLE IF NOT EXISTS {TABLE} (version bigint PRIMARY KEY, name text NOT NULL, "
                "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());")
# Status must not fail (or write) on a database never migrated: the WHERE keeps query_to_xml
# from reading a table that does not exist (a plain subquery would fail when parsed).
APPLIED_SQL = ("SELECT coalesce((xpath('/row/v/text()', query_to_xml($q$SELECT string_agg(version || ':' || "
               f"checksum, ',' ORDER BY version) AS v FROM public.{TABLE}$q$, false, true, '')))[1]::text, '') "
               f"WHERE to_regclass('public.{TABLE}') IS NOT NULL")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: Path
    down: Path | None

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.up.read_bytes()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


def discover(folder: Path) -> list[Migration]:
    """The migrations in `folder`, by version. A version used twice, a down file without its up
    file, or another .sql file name is a ConfigError (exit 3) naming it."""
    found: dict[int, dict] = {}
    for path in sorted(folder.glob("*.sql")) if folder.is_dir() else ():
        match = _FILE.match(path.name)
        if not match:
            raise ConfigError(f"{path} is not named NNNN_name.up.sql or NNNN_name.down.sql",
                              hint="rename it, e.g. 0003_add_orders.up.sql (lowercase letters, digits, _)")
        version, name, direction = int(match[1]), match[2], match[3]
        entry = found.setdefault(version, {"name": name})
        if entry["name"] != name or direction in entry:
            raise ConfigError(f"migration version {version} is used twice in {folder}",
                              hint="give each migration its own number (`nself db migrate create NAME`)")
        entry[direction] = path
    migrations = []
    for version, entry in sorted(found.items()):
        if "up" not in entry:
            raise ConfigError(f"{entry['down']} has no up file", hint=f"add {entry['down'].name[:-9]}.up.sql")
        migrations.append(Migration(version, entry["name"], entry["up"], entry.get("down")))
    return migrations


def parse_applied(text: str) -> dict[int, str]:
    """APPLIED_SQL's output → {version: checksum}."""
    return {int(v): c for v, c in (item.split(":", 1) for item in text.strip().split(",") if item)}


def status(migrations: list[Migration], applied: dict[int, str]) -> list[dict]:
    """One row per version: applied, pending, changed (the file differs from what was applied),
    or missing (recorded, but no file)."""
    rows = []
    files = {m.version: m for m in migrations}
    for version in sorted(set(files) | set(applied)):
        m = files.get(version)
        if m is None:
            state = "missing"
        elif version not in applied:
            state = "pending"
        else:
            state = "applied" if applied[version] == m.checksum else "changed"
        rows.append({"version": version, "name": m.name if m else "", "state": state})
    return rows


def pending(migrations: list[Migration], applied: dict[int, str]) -> list[Migration]:
    return [m for m in migrations if m.version not in applied]


def to_revert(migrations: list[Migration], applied: dict[int, str], steps: int) -> list[Migration]:
    """The newest `steps` applied migrations, newest first. Refuses (exit 2) when one has no
    down file or no file at all."""
    files = {m.version: m for m in migrations}
    chosen = []
    for version in sorted(applied, reverse=True)[:steps]:
        m = files.get(version)
        if m is None or m.down is None:
            raise UsageError(f"migration {version} cannot be reverted: it has no "
                             + ("file" if m is None else "down file"),
                             hint=f"write {m.label if m else f'{version:04d}_name'}.down.sql, or revert by hand")
        chosen.append(m)
    return chosen


def up_sql(m: Migration) -> str:
    """The migration's one transaction (psql -1 wraps it)."""
    return (f"{CREATE_TABLE}\nLOCK TABLE {TABLE} IN EXCLUSIVE MODE;\n"
            f"DO $nself$ BEGIN IF EXISTS (SELECT FROM {TABLE} WHERE version = {m.version}) THEN "
            f"RAISE EXCEPTION 'migration {m.version} is already applied'; END IF; END $nself$;\n"
            f"{m.up.read_text()}\n;\n"
            f"INSERT INTO {TABLE} (version, name, checksum) VALUES ({m.version}, '{m.name}', '{m.checksum}');\n")


def down_sql(m: Migration) -> str:
    assert m.down is not None
    return (f"LOCK TABLE {TABLE} IN EXCLUSIVE MODE;\n{m.down.read_text()}\n;\n"
            f"DELETE FROM {TABLE} WHERE version = {m.version};\n")


def new_files(folder: Path, name: str) -> tuple[Path, Path]:
    """The up and down files a new migration `name` gets: the next number, 4 digits."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise UsageError(f"{name!r} is not a migration name", hint="use letters and digits, e.g. add_orders")
    version = max((m.version for m in discover(folder)), default=0) + 1
    base = folder / f"{version:04d}_{slug}"
    return base.with_name(base.name + ".up.sql"), base.with_name(base.name + ".down.sql")


def seeds(folder: Path, name: str | None) -> list[Path]:
    """The seed files to run: `<folder>/<name>.sql`, or every .sql there by name. Exit 2 when
    there is none."""
    available = sorted(folder.glob("*.sql")) if folder.is_dir() else []
    names = ", ".join(p.stem for p in available) or "none"
    if name is None:
        if not available:
            raise UsageError(f"no seed files in {folder}", hint=f"add {folder}/NAME.sql (plain SQL)")
        return available
    chosen = [p for p in available if p.stem == name]
    if not chosen:
        raise UsageError(f"no seed named {name!r} in {folder}", hint=f"seeds: {names}")
    return chosen
