"""sync: a database, files and env files from one environment to another — planned, locked,
snapshotted first, audited, reversible. See docs/sync.md."""
