"""Running `nself db` steps where the database is: `with session(root, db, servers) as s:`
connects to its host first (unreachable exit 6, unknown key exit 7, before anything runs),
writes the 0600 password file a direct connection needs before the first step that talks to
the database, and removes it when the block ends, whatever happened. Steps that only look at
files (listing backups) run without it, so a refused restore leaves nothing behind. Steps run
through sync's machines (this machine's runner, or the SSH executor's `HostRunner`)."""
from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nself.plan import LOCAL, Step, StepResult
from nself.sync.db import cleanup_steps, secret_steps
from nself.sync.endpoints import Database
from nself.sync.history import new_id
from nself.sync.machines import Machines
from nself.sync.stream import ssh_argv


@dataclass
class Session:
    root: Path
    db: Database
    servers: Mapping
    id: str
    runner: object
    password_written: bool = False

    def run(self, *steps: Step, database: bool = True) -> list[StepResult]:
        """Run steps in order; a failing one raises StepFailed (its exit code). `database`:
        the steps talk to the database (the password file is written first)."""
        if database and not self.password_written:
            self.password_written = True
            self.runner(secret_steps([self.db], self.id))
        results = self.runner(list(steps))
        return [results[id(s)] for s in steps]

    def interactive(self, fragment: str, tty: bool) -> int:
        """Run a shell fragment on the database's machine with this terminal attached (ssh -t
        to a host when there is a terminal); returns its exit code. No deadline: the person
        at the prompt decides when it ends (connecting has one: ssh's and psql's)."""
        self.run(database=True)
        if self.db.on == LOCAL:
            argv = ["sh", "-c", fragment]
        else:
            server = self.servers[self.db.on]
            remote = f"sudo -n sh -c {shlex.quote(fragment)}" if server.sudo else fragment
            argv = [("-t" if word == "-T" and tty else word) for word in ssh_argv(self.root, server, self.servers)]
            argv.append(remote)
        return subprocess.call(argv, cwd=self.root)


@contextmanager
def session(root: Path, db: Database, servers: Mapping) -> Iterator[Session]:
    sid = new_id()
    with Machines(root, [db.on], servers) as run:
        current = Session(root, db, servers, sid, run)
        try:
            yield current
        finally:
            if current.password_written:
                current.runner(cleanup_steps([db], sid))
