"""The deploy core: one driver contract for every target, one way to run a deploy.

A `Driver` (one per target kind: `nself.deploy.ssh.SshDriver`, `nself.deploy.kube.KubeDriver`)
declares every verb, Libcloud-style; a verb a target cannot do raises `NotSupported` with what
to do instead. `deploy()` is Kamal's `with_lock` flow: build the plan (pure) → take the
environment's lock → pre-deploy hooks → the driver's steps (it rolls back what it changed when
they fail) → post-deploy hooks → one audit record in the environment and in
`.nself/state/deploy.log` → release the lock, always.
"""
from __future__ import annotations

import getpass
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nself.deploy import hooks
from nself.deploy.release import Release
from nself.errors import Exit, NselfError
from nself.plan import LocalRunner, Plan

AUDIT_LOG = Path(".nself") / "state" / "deploy.log"


@dataclass(frozen=True)
class DeployOptions:
    """What one deploy asks for; passed unchanged from the task to every stage."""

    release: Release
    strategy: str = "rolling"
    timeout: float = 300.0            # seconds for the new release to become healthy
    keep_going: bool = False          # ssh: leave healthy hosts on the new release when others fail
    parallel: int = 8                 # ssh: hosts at once
    services: tuple[str, ...] = ()    # empty: every service


def who() -> str:
    """`user@machine` of the person deploying (recorded in locks and the audit log)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


class NotSupported(NselfError):
    """A verb a target cannot do: says so, and what to do instead (exit 2)."""

    def __init__(self, what: str, instead: str):
        super().__init__(what, code=Exit.USAGE, hint=instead)


class LockHeld(NselfError):
    """Someone else deploys (or syncs) this environment now (exit 1, naming them)."""

    def __init__(self, env: str, holder: dict):
        since = holder.get("since", "?")
        super().__init__(f"{env} is locked by {holder.get('who', '?')} since {since} "
                         f"({holder.get('what', 'a deploy')}, release {holder.get('release', '?')})",
                         code=Exit.GENERAL,
                         hint=f"wait for it to finish; if it is stale, `nself deploy.unlock {env}`")


class Lock:
    """One environment's lock. `acquire` is atomic (mkdir on a host, a Lease on a cluster)
    and raises LockHeld naming the holder; `release` removes only a lock this object took."""

    def acquire(self, holder: dict) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def read(self) -> dict | None:
        """The holder record, or None when the environment is not locked."""
        raise NotImplementedError

    def clear(self) -> dict | None:
        """Remove the lock whoever holds it (deploy.unlock); returns the holder it removed."""
        raise NotImplementedError


class Driver:
    """The verbs of a deploy target. Subclasses take (project, target, root, output)."""

    kind = "base"

    def __init__(self, project, target, out):
        self.project, self.target, self.out = project, target, out

    def plan(self, options: DeployOptions) -> Plan:
        """The steps of this deploy, pure (what --dry-run prints)."""
        raise NotSupported(f"{self.kind} targets cannot deploy", "use another target")

    def apply(self, options: DeployOptions, plan: Plan) -> dict:
        """Run the plan; when it fails, put back what it changed and raise (exit by cause)."""
        raise NotSupported(f"{self.kind} targets cannot deploy", "use another target")

    def current(self) -> str | None:
        """The release now live, or None before the first deploy."""
        raise NotSupported(f"{self.kind} targets have no releases", "use another target")

    def rollback(self, to: str | None) -> dict:
        raise NotSupported(f"{self.kind} targets cannot roll back", "deploy the older source again")

    def rollback_plan(self, to: str | None) -> Plan:
        """What a rollback to `to` (None: the previous release) would run (--dry-run)."""
        raise NotSupported(f"{self.kind} targets cannot roll back", "deploy the older source again")

    def status(self) -> dict:
        raise NotSupported(f"{self.kind} targets have no status", "use k8s.status or cloud.servers.status")

    def check(self) -> dict:
        """Health of every service: {"healthy": bool, "services": [...]}."""
        raise NotSupported(f"{self.kind} targets have no health check", "check the services by hand")

    def preview(self, options: DeployOptions, diff: bool) -> dict:
        raise NotSupported(f"{self.kind} targets cannot preview", "use --dry-run to see the plan")

    def logs(self, service: str | None, follow: bool, tail: int) -> None:
        raise NotSupported(f"{self.kind} targets have no logs", "use k8s.logs or cloud.servers.logs")

    def lock(self) -> Lock:
        raise NotSupported(f"{self.kind} targets have no lock", "deploy one at a time")

    def record(self, entry: dict) -> None:
        """Append one audit record in the environment itself (host file, ConfigMap)."""
        raise NotSupported(f"{self.kind} targets keep no audit log", "read .nself/state/deploy.log")

    def history(self) -> list[dict]:
        """The environment's audit records, oldest first."""
        raise NotSupported(f"{self.kind} targets keep no history", "read .nself/state/deploy.log")

    # -- progressive delivery (nself.deploy.progressive) --------------------------------------
    def canary_start(self, options: DeployOptions) -> None:
        """Run the new release beside the stable one, taking no traffic yet."""
        raise NotSupported(f"{self.kind} targets cannot run a canary", "use deploy.to (rolling)")

    def canary_weight(self, state, weight: int) -> None:
        """Send `weight` % of requests (0–100) to the canary, the rest to the stable release."""
        raise NotSupported(f"{self.kind} targets cannot run a canary", "use deploy.to (rolling)")

    def canary_requests(self, state, since: float) -> list[tuple[int, float]]:
        """(status, seconds) of the canary's requests since `since` (epoch), from the router."""
        raise NotSupported(f"{self.kind} targets cannot analyse a canary", "use a pause step instead")

    def canary_promote(self, state) -> None:
        """Make the canary the stable release (all traffic) and remove the old one."""
        raise NotSupported(f"{self.kind} targets cannot run a canary", "use deploy.to (rolling)")

    def canary_abort(self, state) -> None:
        """All traffic back to the stable release; the canary removed."""
        raise NotSupported(f"{self.kind} targets cannot run a canary", "use deploy.to (rolling)")

    def canary_load(self):
        """The environment's CanaryState, or None."""
        raise NotSupported(f"{self.kind} targets cannot run a canary", "use deploy.to (rolling)")

    def canary_save(self, state) -> None:
        raise NotSupported(f"{self.kind} targets cannot run a canary", "use deploy.to (rolling)")


def full_plan(driver: Driver, options: DeployOptions) -> Plan:
    """What --dry-run shows: the hooks around the driver's steps."""
    settings = driver.project.settings
    inner = driver.plan(options)
    plan = Plan(inner.title)
    plan.extend(hooks.steps(settings, "pre-deploy")).extend(inner.steps)
    return plan.extend(hooks.steps(settings, "post-deploy"))


def deploy(driver: Driver, options: DeployOptions, echo: Callable[[str], None] | None = None,
           ) -> dict:
    """Deploy `options.release` through `driver`, under the environment's lock, with hooks and
    an audit record. Returns the audit record; raises the driver's error after on-failure hooks."""
    project, started = driver.project, time.monotonic()
    previous = driver.current()
    plan = driver.plan(options)
    env = hooks.hook_env(project.env, options.release.id, previous, options.strategy)
    record = {**new_record(driver, options.strategy, previous, options.release.id),
              "images": dict(options.release.images)}
    lock = locked(driver, record, f"deploy ({options.strategy})")
    try:
        run_hooks(project, "pre-deploy", env, echo)
        try:
            result = driver.apply(options, plan)
        except NselfError as exc:
            record.update(result="failed", error=exc.message)
            run_hooks(project, "on-failure", env, echo)
            raise
        run_hooks(project, "post-deploy", env, echo)
        record.update(result="ok", **({"detail": result} if result else {}))
        return record
    finally:
        _close(driver, record, started, lock)


def rollback_plan(driver: Driver, to: str | None) -> Plan:
    """What `deploy.rollback --dry-run` shows: the driver's steps, then the on-rollback hooks."""
    inner = driver.rollback_plan(to)
    return Plan(inner.title).extend(inner.steps).extend(hooks.steps(driver.project.settings, "on-rollback"))


def rollback(driver: Driver, to: str | None, echo: Callable[[str], None] | None = None) -> dict:
    """Put the previous release (or `to`) back under the lock; on-rollback hooks; audited."""
    project, started = driver.project, time.monotonic()
    previous = driver.current()
    record = new_record(driver, "rollback", previous, to)
    lock = locked(driver, record, "rollback")
    try:
        result = driver.rollback(to)
        record.update(result="ok", to=result.get("to", to), detail=result)
        run_hooks(project, "on-rollback", hooks.hook_env(project.env, record["to"] or "", previous, "rollback"), echo)
        return record
    finally:
        _close(driver, record, started, lock)


def _close(driver: Driver, record: dict, started: float, lock: Lock) -> None:
    """However the run ended: its duration and result in both audit copies, then the lock freed."""
    record["duration"] = round(time.monotonic() - started, 3)
    record.setdefault("result", "failed")
    audit(driver, record)
    lock.release()


def locked(driver: Driver, record: dict, what: str) -> Lock:
    """The environment's lock, taken for `record`'s release (raises LockHeld naming the holder)."""
    lock = driver.lock()
    lock.acquire({"who": record["who"], "since": record["started"], "what": what,
                  "release": record.get("to") or "previous"})
    return lock


def new_record(driver: Driver, strategy: str, previous: str | None, to: str | None) -> dict:
    """An audit record's first fields; `result`, `duration` and details are added as it runs."""
    return {"env": driver.project.env, "who": who(), "from": previous, "to": to, "strategy": strategy,
            "started": now()}


def run_hooks(project, event: str, env: dict, echo: Callable[[str], None] | None) -> None:
    steps = hooks.steps(project.settings, event)
    if not steps:
        return
    prefix = f"{event} | "
    runner = LocalRunner(echo=(lambda line: echo(prefix + line)) if echo else None,
                         env={**os.environ, **env}, cwd=str(project.root))
    try:
        Plan(event, steps).run(runner)
    except NselfError as exc:
        raise NselfError(f"the {event} hook failed: {exc.message}", code=Exit.GENERAL,
                         hint=f"fix the hook under deploy.hooks.{event} in nself.yml (nothing was deployed)"
                         if event == "pre-deploy" else f"fix the hook under deploy.hooks.{event}") from None


def audit(driver: Driver, record: dict) -> None:
    """Both audit copies; the environment's copy may fail (host down) without hiding the result."""
    append_local(driver.project.root, record)
    try:
        driver.record(record)
    except NselfError as exc:
        driver.out.warn(f"could not write the audit record in {driver.project.env}: {exc.message}")


def append_local(root: Path, record: dict, log: Path = AUDIT_LOG) -> None:
    path = root / log
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")


def read_local(root: Path, env: str | None = None, log: Path = AUDIT_LOG) -> list[dict]:
    path = root / log
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue    # a torn last line from a killed process: skip it, keep the rest
        if isinstance(entry, dict) and (env is None or entry.get("env") == env):
            records.append(entry)
    return records


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

