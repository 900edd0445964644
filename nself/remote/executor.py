"""A bounded parallel executor over servers: `--parallel N`, live output prefixed with the
host name, fail-fast or continue, a summary (host, exit code, duration) and one error
naming the hosts that failed (Fabric's Group has no limit, no prefix and no summary)."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from nself.errors import Exit, NselfError
from nself.remote.connection import connect, open_checked
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


def run_command(root: Path, servers: list[Server], command: str, *, parallel: int = 8,
                fail_fast: bool = False, echo: Callable[[str], None] | None = None,
                inventory: dict[str, Server] | None = None, timeout: float | None = None) -> list[HostResult]:
    width = max(len(s.name) for s in servers)
    stop = threading.Event()

    def one(server: Server) -> HostResult:
        started = time.monotonic()
        if stop.is_set():
            return HostResult(server.name, server.host, None, 0.0, error="skipped (an earlier host failed)")
        try:
            connection = connect(root, server, inventory)
            open_checked(connection, server)
            streams = {}
            if echo is not None:
                streams = {"out_stream": Prefixed(server.name, echo, width),
                           "err_stream": Prefixed(server.name, echo, width)}
            result = (connection.sudo if server.sudo else connection.run)(
                command, hide=True, warn=True, in_stream=False, timeout=timeout, **streams)
            for stream in streams.values():
                stream.flush()
            connection.close()
            outcome = HostResult(server.name, server.host, result.exited, time.monotonic() - started,
                                 result.stdout, result.stderr)
        except NselfError as exc:
            outcome = HostResult(server.name, server.host, None, time.monotonic() - started,
                                 error=exc.message, error_code=exc.code)
        except Exception as exc:  # noqa: BLE001 - one host's failure must not stop the others
            outcome = HostResult(server.name, server.host, None, time.monotonic() - started,
                                 error=f"{type(exc).__name__}: {exc}", error_code=Exit.NETWORK)
        if fail_fast and not outcome.ok:
            stop.set()
        return outcome

    results: list[HostResult] = []
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(servers)))) as pool:
        futures = [pool.submit(one, server) for server in servers]
        for future in as_completed(futures):
            results.append(future.result())
    return sorted(results, key=lambda r: r.name)


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
