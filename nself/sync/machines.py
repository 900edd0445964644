"""Runners for the machines one sync touches: `LocalRunner` here, and the SSH executor's
`HostRunner` over one strictly checked connection per server (sudo honoured). Opening every
connection first means an unreachable host (exit 6) or an unknown key (exit 7) stops the
sync before anything changed."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from nself.plan import LOCAL, Dispatch, LocalRunner, Plan, Step, StepResult
from nself.remote.connection import connect, open_checked
from nself.remote.executor import HostRunner
from nself.remote.inventory import Server


class Machines:
    """`with Machines(root, names, servers) as run: run(steps)` → the steps' results."""

    def __init__(self, root: Path, names: Iterable[str], servers: Mapping[str, Server], timeout: float = 600):
        self.root, self.servers, self.timeout = root, dict(servers), timeout
        self.names = sorted({n for n in names if n != LOCAL})
        self.connections: list = []

    def __enter__(self):
        runners = {LOCAL: LocalRunner(timeout=self.timeout)}
        try:
            for name in self.names:
                server = self.servers[name]
                connection = connect(self.root, server, self.servers)
                self.connections.append(connection)
                open_checked(connection, server)
                runners[name] = HostRunner(connection, server, timeout=self.timeout)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.dispatch = Dispatch(runners)
        return self.run

    def run(self, steps: list[Step]) -> dict[int, StepResult]:
        """Run steps in order (a failure raises StepFailed); results keyed by id(step)."""
        return {id(r.step): r for r in Plan("sync", list(steps)).run(self.dispatch)}

    def __exit__(self, *exc) -> None:
        for connection in self.connections:
            connection.close()
        self.connections = []
