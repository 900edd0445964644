"""`nself db`: one environment's PostgreSQL database — shell, queries, backups, restores,
migrations and seeds (docs/db.md).

`where` finds the database (sync's `environments.<env>.database` rules), `plans` builds the
commands as plan steps (pure), `migrations` reads the numbered SQL files, `session` runs steps
on the database's machine (here, or a host over the SSH executor) with the password file in
place only while they run.
"""
