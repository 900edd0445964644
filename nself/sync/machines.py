"""Runners for the machines one sync touches: `GroupRunner` here, and the SSH executor's
`HostRunner` over one strictly checked connection per server (sudo honoured). Opening every
connection first means an unreachable host (exit 6) or an unknown key (exit 7) stops the
sync before anything changed."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from nself.errors import Exit, NselfError
from nself.plan import LOCAL, Dispatch, LocalRunner, Plan, Step, StepResult
from nself.remote.connection import connect, open_checked
from nself.remote.executor import HostRunner
from nself.remote.inventory import Server

STOP_GRACE = 5.0       # seconds between SIGTERM and SIGKILL to a stopped process group


class GroupRunner(LocalRunner):
    """LocalRunner whose commands run in their own process group, stopped as a whole when nself
    is interrupted or a deadline passes. A stream is `bash -c 'ssh … | pg_restore …'`:
    killing bash alone (what `subprocess.run` does) left ssh and the restore running to the
    end after nself had exited (issue 13). Own session also means a terminal's Ctrl-C reaches
    nself only, which then stops the group and puts the snapshot back."""

    def _process(self, step: Step, started: float) -> StepResult:
        timeout = step.timeout or self.timeout
        data = step.data.encode() if isinstance(step.data, str) else step.data
        try:
            process = subprocess.Popen(list(step.argv), stdin=subprocess.PIPE if data else subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except FileNotFoundError:
            return super()._process(step, started)            # its error names the missing program
        try:
            stdout, stderr = process.communicate(data, timeout=timeout)
        except BaseException as exc:
            stop_group(process)
            if isinstance(exc, subprocess.TimeoutExpired):
                raise NselfError(f"did not {step.summary} within {timeout:g}s", code=Exit.TIMEOUT,
                                 hint="raise the timeout, or run the command by hand to see where it waits") from None
            raise
        return StepResult(step, process.returncode == 0, process.returncode, stdout.decode(errors="replace"),
                          stderr.decode(errors="replace"), time.monotonic() - started)


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process's whole group, SIGKILL after STOP_GRACE; reaps the leader."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + STOP_GRACE
        while time.monotonic() < deadline and _group_alive(process.pid):
            process.poll()
            time.sleep(0.05)
    process.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


class Machines:
    """`with Machines(root, names, servers) as run: run(steps)` → the steps' results."""

    def __init__(self, root: Path, names: Iterable[str], servers: Mapping[str, Server], timeout: float = 600):
        self.root, self.servers, self.timeout = root, dict(servers), timeout
        self.names = sorted({n for n in names if n != LOCAL})
        self.connections: list = []

    def __enter__(self):
        runners = {LOCAL: GroupRunner(timeout=self.timeout)}
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
