"""Plans: what a task will do to the world, as data, before it does it.

A `Step` is one action with a sentence for people and one machine form:

- ``run``: an argv list (Kamal's commands-as-arrays). Locally it runs without a shell;
  on a host the words are quoted into one command line (``sh -c`` where a shell is needed).
- ``put``: a file's bytes to a path (on a host: atomically, with a mode).
- ``http``: a request (method, URL, body) sent through an API client.
- ``k8s``: an apply, patch or delete of one object through the Kubernetes API.

Where it runs (``on``): ``local``, ``cluster``, or the name of an inventory server.
Secret input (stdin, file contents) lives in ``data`` and is never shown: plans print
its size only. `Plan.show()` is what ``--dry-run`` prints, `Plan.to_json()` what ``--json``
emits (documented in docs/plans.md), and `Plan.run(runner)` executes the steps in order.

Building a Plan is pure: no process, no network, no clock. Executing belongs to runners
(`LocalRunner` here, `nself.remote.executor.HostRunner` over SSH), so a test can build
every plan with nothing installed, and a dry run shows exactly what would run.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from nself.errors import Exit, NselfError

KINDS = ("run", "put", "http", "k8s")
LOCAL, CLUSTER = "local", "cluster"


@dataclass(frozen=True)
class Step:
    """One action. `spec` holds the machine form beside `argv` for put/http/k8s steps:
    put → {"path", "mode"}; http → {"method", "url", "body"?}; k8s → {"verb", "resource"
    (the object's kind: `kind` is the step's), "name", "namespace"?}. `call` executes
    http/k8s steps through their client (it is not shown; the spec is). `error_code` is the
    exit code when the step fails (errors.Exit)."""

    summary: str
    kind: str = "run"
    argv: tuple[str, ...] = ()
    on: str = LOCAL
    spec: Mapping[str, Any] = field(default_factory=dict)
    data: bytes | str | None = field(default=None, repr=False)
    may_fail: bool = False
    timeout: float | None = None
    error_code: int = Exit.GENERAL
    call: Callable[[Step], Any] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"step kind {self.kind!r} is not one of {KINDS}")
        if self.kind == "run" and not self.argv:
            raise ValueError(f"a run step needs an argv: {self.summary}")
        object.__setattr__(self, "argv", tuple(str(a) for a in self.argv))

    @property
    def command_line(self) -> str:
        """The argv as one shell-quoted line (what a host's shell receives)."""
        return shlex.join(self.argv)

    def display(self) -> str:
        """The machine form in one line, secrets shown by size only."""
        if self.kind == "run":
            text = self.command_line
        elif self.kind == "put":
            mode = self.spec.get("mode")
            what = self.spec.get("source") or _size(self.data)
            text = f"put {what} → {self.spec.get('path')}" + (f" (mode {mode:04o})" if mode else "")
        elif self.kind == "http":
            text = f"{self.spec.get('method', 'GET')} {self.spec.get('url', '')}"
        else:
            names = (self.spec.get("namespace"), self.spec.get("resource"), self.spec.get("name"))
            where = "/".join(filter(None, names))
            text = f"{self.spec.get('verb', 'apply')} {where}"
        if self.data is not None and self.kind == "run":
            text += f" < (stdin, {_size(self.data)})"
        return text

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"summary": self.summary, "kind": self.kind, "on": self.on}
        if self.argv:
            out["argv"] = list(self.argv)
        out.update({k: v for k, v in self.spec.items() if k != "body" or self.kind != "put"})
        if self.data is not None or self.kind == "put":
            out["data"] = f"({_size(self.data)}, not shown)"
        if self.may_fail:
            out["may_fail"] = True
        return out


def _size(data: bytes | str | None) -> str:
    """How data is shown: its size only (None: a put whose bytes are read while the plan runs)."""
    if data is None:
        return "data read while the plan runs"
    n = len(data.encode() if isinstance(data, str) else data)
    return f"{n} bytes"


def run(summary: str, *argv: str, on: str = LOCAL, **kw) -> Step:
    """A run step: `run("build web", "podman", "build", ".", on="web1")`."""
    return Step(summary, "run", argv, on, **kw)


def shell(summary: str, script: str, *, on: str = LOCAL, **kw) -> Step:
    """A run step whose command needs a shell (pipes, &&, redirections): `sh -c SCRIPT`."""
    return Step(summary, "run", ("sh", "-c", script), on, **kw)


def put(summary: str, path: str, data: bytes | str | None, *, on: str = LOCAL, mode: int | None = None,
        source: str | None = None, **kw) -> Step:
    """A file to `path`: `data`, or (large files, e.g. image archives) the local file `source`,
    streamed when the step runs."""
    spec = {"path": path, **({"mode": mode} if mode is not None else {}), **({"source": source} if source else {})}
    return Step(summary, "put", (), on, spec, data, **kw)


@dataclass
class StepResult:
    step: Step
    ok: bool
    exit_code: int | None = 0
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    value: Any = None                  # what an http/k8s call returned

    def to_dict(self) -> dict:
        return {"summary": self.step.summary, "on": self.step.on, "ok": self.ok,
                "exit_code": self.exit_code, "duration": round(self.duration, 3)}


class Runner(Protocol):
    def __call__(self, step: Step) -> StepResult: ...


class StepFailed(NselfError):
    """A step failed: names the step, where, its exit code and the end of its stderr."""

    def __init__(self, result: StepResult, hint: str | None = None):
        step = result.step
        where = "" if step.on == LOCAL else f"{step.on}: "
        tail = (result.stderr or result.stdout).strip()[-400:]
        super().__init__(f"{where}could not {step.summary} (exit {result.exit_code})" + (f": {tail}" if tail else ""),
                         code=step.error_code,
                         hint=hint or "run the step printed by --dry-run by hand to see more")
        self.result = result


@dataclass
class Plan:
    """Ordered steps under a title. Pure data until `run`."""

    title: str
    steps: list[Step] = field(default_factory=list)

    def add(self, *steps: Step) -> Plan:
        self.steps.extend(steps)
        return self

    def extend(self, steps: Iterable[Step]) -> Plan:
        self.steps.extend(steps)
        return self

    def show(self) -> list[str]:
        """The lines --dry-run prints: a numbered sentence, then the machine form."""
        lines = [f"Plan: {self.title}"]
        for number, step in enumerate(self.steps, 1):
            where = "" if step.on == LOCAL else f"[{step.on}] "
            lines.append(f"  {number}. {where}{step.summary}" + (" (may fail)" if step.may_fail else ""))
            lines.append(f"       {step.display()}")
        return lines

    def to_json(self) -> dict:
        return {"title": self.title, "steps": [s.to_dict() for s in self.steps]}

    def run(self, runner: Runner, *, on_step: Callable[[Step], None] | None = None) -> list[StepResult]:
        """Run every step in order; a failing step raises StepFailed unless it may fail."""
        results = []
        for step in self.steps:
            if on_step:
                on_step(step)
            result = runner(step)
            results.append(result)
            if not result.ok and not step.may_fail:
                raise StepFailed(result)
        return results


def emit(out, plan: Plan | list[Plan]) -> None:
    """What every task does under --dry-run: print the plan(s), or one JSON document."""
    plans = plan if isinstance(plan, list) else [plan]
    document = {"plan": [p.to_json() for p in plans]} if isinstance(plan, list) else {"plan": plan.to_json()}
    out.emit(document, render=lambda d: [out.say(line) for p in plans for line in p.show()])


class LocalRunner:
    """Runs local steps: argv without a shell (stdin from `data`), puts as atomic writes,
    http/k8s steps through their `call`. Deadlines: the step's timeout, else `timeout`."""

    def __init__(self, timeout: float = 600, echo: Callable[[str], None] | None = None,
                 env: Mapping[str, str] | None = None, cwd: str | None = None):
        self.timeout, self.echo, self.env, self.cwd = timeout, echo, env, cwd

    def __call__(self, step: Step) -> StepResult:
        started = time.monotonic()
        if step.kind in ("http", "k8s"):
            return _call(step, started)
        if step.kind == "put":
            from pathlib import Path

            from nself.files import write_atomic

            source = step.spec.get("source")
            data = Path(source).read_bytes() if source else \
                step.data.encode() if isinstance(step.data, str) else step.data or b""
            write_atomic(Path(step.spec["path"]), data, mode=step.spec.get("mode", 0o644))
            return StepResult(step, True, 0, duration=time.monotonic() - started)
        return self._process(step, started)

    def _process(self, step: Step, started: float) -> StepResult:
        """The step's argv in its own process group (session), stopped as a whole on a deadline
        or an interruption: a pipeline is `bash -c 'ssh … | pg_restore …'`, and killing bash
        alone (what `subprocess.run` does) left the rest running after nself had exited. Own
        session also means a terminal's Ctrl-C reaches nself only, which then stops the group."""
        timeout = step.timeout or self.timeout
        data = step.data.encode() if isinstance(step.data, str) else step.data
        try:
            process = subprocess.Popen(list(step.argv), stdin=subprocess.PIPE if data else subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                       env=dict(self.env) if self.env is not None else None, cwd=self.cwd)
        except FileNotFoundError:
            raise NselfError(f"{step.argv[0]} was not found on this machine (needed to {step.summary})",
                             code=Exit.NOT_FOUND, hint=f"install {step.argv[0]} and put it on PATH") from None
        try:
            out, err = process.communicate(data, timeout=timeout)
        except BaseException as exc:
            stop_group(process)
            if isinstance(exc, subprocess.TimeoutExpired):
                raise NselfError(f"did not {step.summary} within {timeout:g}s", code=Exit.TIMEOUT,
                                 hint="raise the timeout, or run the command by hand to see where it waits") from None
            raise
        stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
        if self.echo:
            for line in (stdout + stderr).splitlines():
                self.echo(line)
        return StepResult(step, process.returncode == 0, process.returncode, stdout, stderr,
                          time.monotonic() - started)


STOP_GRACE = 5.0       # seconds between SIGTERM and SIGKILL to a stopped process group


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


def _call(step: Step, started: float) -> StepResult:
    if step.call is None:
        raise NselfError(f"the step '{step.summary}' has no client to run it", code=Exit.GENERAL,
                         hint="this is a bug in nself: please report it")
    value = step.call(step)
    return StepResult(step, True, 0, duration=time.monotonic() - started, value=value)


class Dispatch:
    """One runner for a plan whose steps run in several places: `on` → runner."""

    def __init__(self, runners: Mapping[str, Runner], default: Runner | None = None):
        self.runners, self.default = dict(runners), default

    def __call__(self, step: Step) -> StepResult:
        runner = self.runners.get(step.on, self.default)
        if runner is None:
            raise NselfError(f"no way to run a step on {step.on!r}: {step.summary}", code=Exit.GENERAL,
                             hint="this is a bug in nself: please report it")
        return runner(step)
