"""A bounded parallel executor over servers: `--parallel N`, live output prefixed with the
host name, fail-fast or continue, a summary (host, exit code, duration) and one error
naming the hosts that failed (Fabric's Group has no limit, no prefix and no summary).

A command that talks to the same hosts several times (a deploy verb: state, lock, check,
swap, record) passes one `Connections` to every `run_plans`: each host's connection is opened
(and its host key checked) once and reused, like OpenSSH's ControlMaster, instead of a new
handshake for every round."""
from __future__ import annotations

import shlex
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from nself.errors import Exit, NselfError
from nself.plan import Plan, Step, StepFailed, StepResult, run, shell
from nself.remote.connection import CONNECT_TIMEOUT, connect, open_checked
from nself.remote.inventory import Server


@dataclass
class HostResult:
    name: str
    host: str
    exit_code: int | None          # None: never ran (unreachable, refused, skipped)
    duration: float
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    error_code: int | None = None
    hint: str | None = None
    steps: list[StepResult] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.error is None

    def to_dict(self) -> dict:
        return {"host": self.name, "address": self.host, "exit_code": self.exit_code,
                "duration": round(self.duration, 3), "stdout": self.stdout, "stderr": self.stderr,
                "error": self.error}


class Prefixed:
    """A stream that writes whole lines, each prefixed with the host name."""

    lock = threading.Lock()

    def __init__(self, name: str, write: Callable[[str], None], width: int):
        self.prefix = f"{name:<{width}} | "
        self.write_line = write
        self.buffer = ""

    def write(self, text: str) -> int:
        self.buffer += text
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            with self.lock:
                self.write_line(self.prefix + line)
        return len(text)

    def flush(self) -> None:
        if self.buffer:
            with self.lock:
                self.write_line(self.prefix + self.buffer)
            self.buffer = ""


class Connections:
    """Open connections kept for reuse within one command (OpenSSH's ControlMaster and
    ControlPersist, in process). `take` gives a host's idle connection, or opens a new one
    (strict host keys, as `connect`); `give` puts it back after a plan that ran to its end
    (a plan broken off by an exception closes its connection instead). A connection idle for
    more than `persist` seconds, or no longer open, is closed rather than reused: a command
    pausing for minutes (a canary's pause) connects afresh. `warm` opens connections in the
    background for hosts a command will reach after its first steps elsewhere (`take` then
    waits for one being opened, and raises the error it met: an unreachable host costs one
    connect timeout, not two). Thread-safe: a connection is used by one plan at a time."""

    def __init__(self, persist: float = 60.0):
        self.persist = persist
        self._idle: dict[Server, tuple[object, float]] = {}
        self._opening: dict[Server, threading.Event] = {}
        self._failed: dict[Server, Exception] = {}     # what a warm-up met, for `take` to raise
        self._generation = 0                   # close() starts a new one: late warm-ups are dropped
        self._lock = threading.Lock()

    def take(self, root: Path, server: Server, servers: dict[str, Server]):
        with self._lock:
            opening = self._opening.get(server)
        if opening is not None:            # being warmed: wait for it rather than open a second one
            opening.wait(3 * CONNECT_TIMEOUT)
        with self._lock:
            connection, since = self._idle.pop(server, (None, 0.0))
            failed = self._failed.pop(server, None)
        if failed is not None:
            raise failed
        if connection is not None:
            if connection.is_connected and time.monotonic() - since <= self.persist:
                return connection
            connection.close()
        connection = connect(root, server, servers)
        open_checked(connection, server)
        return connection

    def give(self, server: Server, connection) -> None:
        with self._lock:
            old, _ = self._idle.pop(server, (None, 0.0))
            self._idle[server] = (connection, time.monotonic())
        if old is not None:
            old.close()

    def warm(self, root: Path, servers: dict[str, Server], names) -> None:
        """Start opening the connections of `names` (not open yet) in the background."""
        for name in names:
            server = servers[name]
            with self._lock:
                if server in self._idle or server in self._opening:
                    continue
                opening = self._opening[server] = threading.Event()
                generation = self._generation
            threading.Thread(target=self._open, args=(root, server, servers, opening, generation),
                             daemon=True).start()

    def _open(self, root: Path, server: Server, servers: dict[str, Server], opening, generation: int) -> None:
        connection, failed = None, None
        try:
            connection = connect(root, server, servers)
            open_checked(connection, server)
        except Exception as exc:  # noqa: BLE001 - raised by `take`, in the plan's thread
            connection, failed = None, exc
        with self._lock:
            current = generation == self._generation
            if connection is not None and current and server not in self._idle:
                self._idle[server], connection = (connection, time.monotonic()), None
            if failed is not None and current:
                self._failed[server] = failed
            self._opening.pop(server, None)
        if connection is not None:         # not wanted any more
            connection.close()
        opening.set()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = list(self._idle.values()), {}
            self._opening, self._failed, self._generation = {}, {}, self._generation + 1
        for connection, _ in idle:
            connection.close()


# A sudo server's put: copy beside the target (same file system), set the mode, rename over it.
_MOVE = ('tmp="$2.nself-tmp"; cp "$1" "$tmp" && chmod "$3" "$tmp" && mv -f "$tmp" "$2"; '
         'status=$?; rm -f "$1" "$tmp"; exit $status')


_STDIN = 'f="$1"; shift; "$@" < "$f"; status=$?; rm -f "$f"; exit $status'


class HostRunner:
    """Runs a plan's steps on one server over one open connection: run steps through the
    server's shell (with sudo when the inventory says so; stdin from the step's data), put
    steps as atomic SFTP writes (on a sudo server: uploaded as the user, moved into place by
    root). Live output goes to `streams` (prefixed by host)."""

    def __init__(self, connection, server: Server, streams: dict | None = None, timeout: float | None = None):
        self.connection, self.server, self.streams, self.timeout = connection, server, streams or {}, timeout

    def __call__(self, step: Step) -> StepResult:
        from nself.remote.files import put

        started = time.monotonic()
        if step.kind == "put":
            mode = step.spec.get("mode", 0o644)
            source = step.spec.get("source")
            # a local file is streamed, never whole in memory
            data = open(source, "rb") if source else \
                (step.data.encode() if isinstance(step.data, str) else step.data or b"")
            try:
                if not self.server.sudo:
                    put(self.connection, data, step.spec["path"], mode=mode)
                    return StepResult(step, True, 0, duration=time.monotonic() - started)
                # As the user into a private temporary file, then moved into place as root.
                upload = f"/tmp/.nself-put-{uuid.uuid4().hex}"
                put(self.connection, data, upload, mode=0o600)
            finally:
                if source:
                    data.close()
            return self(run(step.summary, "sh", "-c", _MOVE, "sh", upload, step.spec["path"], f"{mode:o}",
                            on=step.on, error_code=step.error_code))
        if step.kind != "run":
            raise NselfError(f"a {step.kind} step cannot run on a host: {step.summary}", code=Exit.GENERAL,
                             hint="this is a bug in nself: please report it")
        command = step.command_line
        if step.data is not None:
            # Invoke feeds in_stream a byte per read (10 ms each): send the data as a private
            # file instead, and give it to the command on stdin there.
            upload = f"/tmp/.nself-stdin-{uuid.uuid4().hex}"
            data = step.data.encode() if isinstance(step.data, str) else step.data
            put(self.connection, data, upload, mode=0o600)
            command = shlex.join(["sh", "-c", _STDIN, "sh", upload, *step.argv])
        execute = self.connection.sudo if self.server.sudo else self.connection.run
        result = execute(command, hide=True, warn=True, in_stream=False,
                         timeout=step.timeout or self.timeout, **self.streams)
        for stream in self.streams.values():
            stream.flush()
        return StepResult(step, result.exited == 0, result.exited, result.stdout, result.stderr,
                          time.monotonic() - started)


def _code_of(exc: Exception) -> int:
    """Connection trouble is a network failure (6); anything else (a missing remote file, a
    bug) is general (1), not misreported as the network's."""
    network = (ConnectionError, TimeoutError, EOFError)
    return Exit.NETWORK if isinstance(exc, network) or type(exc).__module__.startswith("paramiko") else Exit.GENERAL


def run_plans(root: Path, plans: dict[str, Plan], servers: dict[str, Server], *, parallel: int = 8,
              fail_fast: bool = False, echo: Callable[[str], None] | None = None,
              timeout: float | None = None, connections: Connections | None = None) -> list[HostResult]:
    """Run one plan per server (name → plan), at most `parallel` at once, each over its own
    connection (from `connections` when given, else opened and closed here). A host's result
    carries the last step's output; a failed step ends that host's plan with its exit code and
    message. The one SSH execution path of nself.

    On KeyboardInterrupt no host starts another step (the running ones finish theirs, each
    within its deadline), then the interrupt goes on to the caller, which can undo what ran."""
    chosen = [servers[name] for name in plans]
    width = max((len(s.name) for s in chosen), default=0)
    stop, interrupted = threading.Event(), threading.Event()

    def next_step(step: Step) -> None:
        if interrupted.is_set():
            raise NselfError(f"interrupted before: {step.summary}", code=Exit.GENERAL)

    def one(server: Server) -> HostResult:
        started = time.monotonic()
        if stop.is_set() or interrupted.is_set():
            return HostResult(server.name, server.host, None, 0.0, error="skipped (an earlier host failed)")
        streams = {}
        if echo is not None:
            streams = {"out_stream": Prefixed(server.name, echo, width),
                       "err_stream": Prefixed(server.name, echo, width)}
        try:
            results = _over(root, server, servers, connections,
                            lambda c: plans[server.name].run(HostRunner(c, server, streams, timeout),
                                                             on_step=next_step))
            last = results[-1] if results else None
            outcome = HostResult(server.name, server.host, last.exit_code if last else 0,
                                 time.monotonic() - started, last.stdout if last else "",
                                 last.stderr if last else "", steps=results)
        except StepFailed as exc:
            failed = exc.result
            outcome = HostResult(server.name, server.host, failed.exit_code, time.monotonic() - started,
                                 failed.stdout, failed.stderr, error=exc.message, error_code=exc.code,
                                 hint=exc.hint)
        except NselfError as exc:
            outcome = HostResult(server.name, server.host, None, time.monotonic() - started,
                                 error=exc.message, error_code=exc.code, hint=exc.hint)
        except Exception as exc:  # noqa: BLE001 - one host's failure must not stop the others
            outcome = HostResult(server.name, server.host, None, time.monotonic() - started,
                                 error=f"{type(exc).__name__}: {exc}", error_code=_code_of(exc))
        if fail_fast and not outcome.ok:
            stop.set()
        return outcome

    results: list[HostResult] = []
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(chosen)))) as pool:
        futures = [pool.submit(one, server) for server in chosen]
        try:
            for future in as_completed(futures):
                results.append(future.result())
        except KeyboardInterrupt:
            interrupted.set()
            raise
    return sorted(results, key=lambda r: r.name)


def _over(root: Path, server: Server, servers: dict[str, Server], connections: Connections | None, work):
    """`work(connection)` over the server's connection: a pooled one goes back to the pool when
    the plan ran to its end or stopped at a failed step (the connection is sound); otherwise,
    and without a pool, it is closed."""
    if connections is None:
        connection = connect(root, server, servers)
        open_checked(connection, server)
    else:
        connection = connections.take(root, server, servers)
    sound = False
    try:
        outcome = work(connection)
        sound = True
        return outcome
    except StepFailed:
        sound = True
        raise
    finally:
        if connections is not None and sound:
            connections.give(server, connection)
        else:
            connection.close()


def command_plans(servers: list[Server], command: str) -> dict[str, Plan]:
    """One shell command per server (name → plan); its exit is the host's result, so it may fail."""
    return {s.name: Plan(f"run on {s.name}", [shell("run the command", command, on=s.name, may_fail=True)])
            for s in servers}


def run_command(root: Path, servers: list[Server], command: str, *, parallel: int = 8,
                fail_fast: bool = False, echo: Callable[[str], None] | None = None,
                inventory: dict[str, Server] | None = None, timeout: float | None = None) -> list[HostResult]:
    """One shell command on every server; a non-zero exit is the host's result, not an error."""
    plans = command_plans(servers, command)
    known = {**(inventory or {}), **{s.name: s for s in servers}}
    return run_plans(root, plans, known, parallel=parallel, fail_fast=fail_fast, echo=echo, timeout=timeout)


def run_on(root: Path, servers: dict[str, Server], plan: Plan, *, echo: Callable[[str], None] | None = None,
           timeout: float | None = None) -> list[StepResult]:
    """A plan whose steps all run on one server (the `on` of its steps), over one connection;
    a failure is raised with its own exit code and hint (connection: 6/7, a step: its code)."""
    names = {step.on for step in plan.steps}
    if len(names) != 1:
        raise ValueError(f"run_on needs the steps of one server, not {sorted(names)}")
    result, = run_plans(root, {names.pop(): plan}, servers, echo=echo, timeout=timeout)
    if not result.ok:
        raise NselfError(result.error or f"{result.name}: exit {result.exit_code}",
                         code=result.error_code or Exit.GENERAL,
                         hint=result.hint or "run the steps printed by --dry-run by hand to see more")
    return result.steps


def failure(results: list[HostResult]) -> NselfError | None:
    """One error for a fan-out: exit 1 naming the failed hosts (or the domain code for one host)."""
    failed = [r for r in results if not r.ok]
    if not failed:
        return None
    if len(results) == 1 and failed[0].error_code:
        code = failed[0].error_code
    else:
        code = Exit.GENERAL
    details = [f"{r.name}: " + (r.error or f"exit {r.exit_code}") for r in failed]
    return NselfError(f"{len(failed)} of {len(results)} host(s) failed", code=code, details=details,
                      hint="see each host's output above; rerun on them with --hosts",
                      reported=True)
