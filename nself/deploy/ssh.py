"""The ssh target: the compose project on inventory servers, one release folder per deploy,
nginx in front (docs/deploy.md, "SSH targets").

Every verb talks to hosts through `nself.remote.executor.run_plans` (all hosts in parallel,
strict host keys, sudo as the inventory says). A deploy first reads each host's state (one
probe), then builds the host's steps from it (`nself.deploy.ssh_plan`, pure): a host that
already runs the same release with the same files is left alone, so an unchanged deploy costs
one probe per host. A host that fails is rolled back and named; the others are rolled back
too unless `keep_going`.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import posixpath
import re
import secrets
import shlex
import socket
import weakref

from nself.deploy import compose_render, nginx
from nself.deploy.compose_render import ReleaseFile, Slot, compose_name, host_ports, own_volumes, slots
from nself.deploy.ssh_hosts import Footprint, refuse_overlaps
from nself.deploy.core import DeployOptions, Driver, Lock, LockHeld
from nself.deploy.ssh_canary import SshCanary
from nself.deploy.ssh_plan import HostState, HostTarget, Runtime, checks, go_live, health_script, \
    image_steps, parse_probe, probe_script, retire, revert, start, upload, wait_healthy
from nself.errors import Exit, NselfError
from nself.plan import LocalRunner, Plan, StepResult, put, run, shell
from nself.remote.executor import Connections

ARCHIVES = ".nself/cache/images"
PROBE_TIMEOUT = 60


class SshDriver(SshCanary, Driver):
    kind = "ssh"

    def __init__(self, project, target, out):
        from nself.remote import inventory

        super().__init__(project, target, out)
        self.servers = inventory.load(project.root)
        self.hosts = list(target.servers)
        self.runtime = Runtime(target.runtime)
        self.where = HostTarget(target.path, compose_name(project), self.runtime, target.router, target.keep,
                                tuple(sorted(project.services)), legacy=project.name, volumes=own_volumes(project))
        self.slots = slots(compose_name(project), target.router)
        self.registry = project.settings.section("deploy", "registry") if project.settings else None
        self._log_offsets: dict[str, int] = {}       # canary_requests: per host, bytes of the log read
        self._log_lines: dict[str, list[str]] = {}   # and the canary's lines among them
        # one connection per host for all of this driver's rounds (state, lock, check, swap…)
        self.connections = Connections()
        weakref.finalize(self, self.connections.close)

    # -- the deploy ------------------------------------------------------------------------
    def plan(self, options: DeployOptions) -> Plan:
        """Every step on hosts that have nothing yet (what --dry-run prints; a real deploy leaves
        out what a host has already)."""
        self._refuse_shared_hosts()
        carried = {}
        if options.services:      # the others' images come from the hosts, read when it runs
            carried = {name: f"<the live release's image of {name}>" for name in self.project.services
                       if name not in options.services}
            options = dataclasses.replace(options, release=dataclasses.replace(
                options.release, images={**options.release.images, **carried}))
        files, digest = self._files(options)
        states = {host: HostState(images=frozenset(carried.values())) for host in self.hosts}
        plan = Plan(f"deploy release {options.release.id} to {self.target.describe()}")
        plan.extend(self._save_steps([i for i in self._images(options) if i not in carried.values()]))
        for host in self.hosts:
            plan.extend(self._stage(options, host, states[host], files, digest, self._archives(options)))
        for phase in (go_live, retire):
            for host in self.hosts:
                plan.extend(phase(self.where, options.release.id, self._next_slot(states[host]), states[host], host))
        return plan

    def apply(self, options: DeployOptions, plan: Plan) -> dict:
        self._refuse_shared_hosts()
        release = options.release.id
        states = self._probe(release, self._images(options), live=bool(options.services))
        options, states = self._only(options, states)
        files, digest = self._files(options, states)
        self._refuse_during_canary(states[self.hosts[0]], "a deploy")
        changed = [h for h in self.hosts if not self._unchanged(states[h], release, digest)]
        if not changed:
            return {"release": release, "unchanged": list(self.hosts)}
        self.out.say(f"starting release {release} on {', '.join(changed)}")
        stage = self._stage_plans(options, states, changed)
        return self._finish(options, release, states, stage, unchanged=[h for h in self.hosts if h not in changed])

    def _only(self, options: DeployOptions, states: dict) -> tuple[DeployOptions, dict]:
        """`--service S`: the other services keep the images the first host's live release
        gives them (so they are carried over, not upgraded); those images are on the hosts."""
        if not options.services:
            return options, states
        chosen = {self.project.service(name).name for name in options.services}
        live = dict(states[self.hosts[0]].live_images)
        others = {name: live.get(name) for name in self.project.services if name not in chosen}
        lacking = sorted(name for name, image in others.items() if not image)
        if lacking:
            raise NselfError(f"--service {', '.join(sorted(chosen))}: the live release of {self.project.env} on "
                             f"{self.hosts[0]} has no image for {', '.join(lacking)} to carry over",
                             code=Exit.USAGE, hint=f"deploy every service first: `nself deploy.to {self.project.env}`")
        carried = frozenset(others.values())
        options = dataclasses.replace(options, services=tuple(sorted(chosen)), release=dataclasses.replace(
            options.release, images={**options.release.images, **others}))
        return options, {h: dataclasses.replace(s, images=s.images | carried) for h, s in states.items()}

    def _refuse_shared_hosts(self) -> None:
        """Exit 3 when another ssh environment on one of these hosts has the same path or ports."""
        refuse_overlaps(self._footprint(self.project, self.target), [
            self._footprint(project, target) for project, target in self._neighbours()])

    def _footprint(self, project, target) -> Footprint:
        return Footprint(project.env, frozenset(target.servers), target.path,
                         frozenset(host_ports(project, target.router)))

    def _neighbours(self) -> list:
        """(project, target) of every other ssh environment in nself.yml sharing a host with
        this one; each loaded leniently (this machine may not hold its secrets), and left out
        when its configuration does not load."""
        from nself.deploy.targets import SshTarget, resolve
        from nself.project import load_project
        from nself.project.envfiles import canonical_env

        settings = self.project.settings
        if settings is None:
            return []
        envs = settings.environments()
        out = []
        for name in envs:
            env = canonical_env(name, envs)
            if env == self.project.env or not (envs[name].get("hosts") or envs[name].get("roles")):
                continue
            try:
                project = load_project(self.project.root, env=env, settings=settings, lenient=True)
                target = resolve(project, self.servers)
            except NselfError as exc:       # its own deploy says so; it cannot be on a host then
                self.out.verbose(f"not checked against environment {env}: {exc.message}")
                continue
            if isinstance(target, SshTarget) and set(target.servers) & set(self.hosts):
                out.append((project, target))
        return out

    def _stage_plans(self, options: DeployOptions, states: dict, hosts: list) -> dict[str, Plan]:
        """Per host, the steps that start the release in its free slot and wait until healthy
        (images the hosts lack saved locally first, when there is no registry)."""
        files, digest = self._files(options, states)
        missing = sorted({i for h in hosts for i in self._images(options) if i not in states[h].images})
        if missing and not self.registry:
            Plan("save images", self._save_steps(missing)).run(LocalRunner(timeout=1800))
        archives = self._archives(options)
        return {h: Plan(f"stage on {h}", self._stage(options, h, states[h], files, digest, archives)) for h in hosts}

    def _finish(self, options: DeployOptions, release: str, states: dict, stage: dict, unchanged: list) -> dict:
        """Stage, go live on the hosts that staged, then retire their old slots; revert as the
        failure rules say. An interrupt (Ctrl-C) while staging or going live reverts every host
        it reached, before the lock goes; one while retiring leaves the release live (it is,
        everywhere) and the next deploy empties what is left of the old slot."""
        results = self._interruptible(stage, options.parallel, "starting the release", release, states, list(stage))
        failed = [r.name for r in results if not r.ok]
        ok = [h for h in stage if h not in failed]
        if failed and not options.keep_going:
            self._revert(release, states, list(stage), options.parallel)
            raise self._failure(results, "rolled back on every host: the previous release still serves")
        flips = {h: Plan(f"switch {h}", go_live(self.where, release, self._next_slot(states[h]), states[h], h))
                 for h in ok}
        switched = self._interruptible(flips, options.parallel, "switching to the release", release, states,
                                       list(stage))
        bad = [r.name for r in switched if not r.ok]
        if bad:
            self._revert(release, states, bad if options.keep_going else ok, options.parallel)
        if failed:
            self._revert(release, states, failed, options.parallel)
        if failed or bad:
            raise self._failure([*results, *switched], "the failed hosts were rolled back"
                                + ("" if options.keep_going else "; so were the others"))
        self._retire(release, states, ok, options.parallel)
        return {"release": release, "hosts": {h: self._next_slot(states[h]).name or "-" for h in ok},
                "unchanged": unchanged}

    def _interruptible(self, plans: dict, parallel: int, doing: str, release: str, states: dict,
                       reached: list) -> list:
        """Run `plans`; on Ctrl-C (the running steps finish first) revert `reached`, then re-raise."""
        try:
            return self._run(plans, parallel)
        except KeyboardInterrupt:
            self.out.warn(f"interrupted while {doing}")
            self._revert(release, states, reached, parallel)
            raise

    def _retire(self, release: str, states: dict, hosts: list, parallel: int) -> None:
        """The old slots and old releases removed (best effort: the release is live already)."""
        plans = {h: Plan(f"retire on {h}", retire(self.where, release, self._next_slot(states[h]), states[h], h))
                 for h in hosts}
        try:
            results = self._run(plans, parallel)
        except KeyboardInterrupt:
            self.out.warn(f"interrupted while retiring the old slot: release {release} serves on every host; "
                          "the next deploy removes what is left")
            return
        for result in results:
            if not result.ok:
                self.out.warn(f"{result.name}: could not retire the old slot: {result.error}")

    def _stage(self, options, host, state, files, digest, archives) -> list:
        release, slot = options.release.id, self._next_slot(state)
        steps = []
        if state.digest != digest:
            steps += upload(self.where, release, files, digest, host)
        if self.target.router == "nginx":
            steps += nginx.upload(self.project, self.where.base, host)
        missing = [i for i in self._images(options) if i not in state.images]
        steps += image_steps(self.where, missing, archives, host)
        steps += start(self.where, release, slot, state.slot, host, options.services)
        steps.append(wait_healthy(checks(self.project, self.runtime, slot), options.timeout, slot, host))
        return steps

    def _revert(self, release: str, states: dict, hosts: list, parallel: int) -> None:
        self.out.warn(f"rolling back {', '.join(hosts)}")
        plans = {h: Plan(f"revert {h}", revert(self.where, release, self._next_slot(states[h]), states[h], h))
                 for h in hosts}
        for result in self._run(plans, parallel):
            if not result.ok:
                self.out.warn(f"{result.name}: could not roll back: {result.error}")

    def _next_slot(self, state: HostState) -> Slot:
        if self.target.router != "nginx":
            return self.slots[""]
        return self.slots["b" if state.slot == "a" else "a"]

    def _unchanged(self, state: HostState, release: str, digest: str) -> bool:
        return state.current == release and state.digest == digest and state.running >= len(self.project.services)

    def _files(self, options: DeployOptions, states: dict | None = None) -> tuple[list[ReleaseFile], str]:
        """The release's files and digest; volumes some host's live release still names the old
        shared way keep that name (`compose_render.volume_docs`)."""
        legacy = frozenset().union(*(s.legacy_volumes for s in (states or {}).values()))
        folder = posixpath.join(self.where.base, "releases", options.release.id)
        files = compose_render.render(self.project, dict(options.release.images), folder, self.target.router, legacy)
        return files, compose_render.digest(files)

    def _images(self, options: DeployOptions) -> list[str]:
        return sorted(set(options.release.images.values()))

    def _archives(self, options: DeployOptions) -> dict[str, str]:
        if self.registry:
            return {}
        return {i: str(self.project.root / ARCHIVES / _archive_name(i)) for i in self._images(options)}

    def _save_steps(self, images: list[str]) -> list:
        if self.registry:
            return []
        folder = self.project.root / ARCHIVES
        return [shell(f"save {image} for the hosts",
                      f"mkdir -p {shlex.quote(str(folder))} && {self.runtime.name} save -o "
                      f"{shlex.quote(str(folder / _archive_name(image)))}.new {shlex.quote(image)} && mv -f "
                      f"{shlex.quote(str(folder / _archive_name(image)))}.new "
                      f"{shlex.quote(str(folder / _archive_name(image)))}",
                      error_code=Exit.RUNTIME, timeout=1800) for image in images]

    # -- rollback, state, health, logs -----------------------------------------------------------
    def current(self) -> str | None:
        return self._probe("-", [], self.hosts[:1])[self.hosts[0]].current

    def rollback(self, to: str | None) -> dict:
        states = self._probe(to or "-", [])
        first = states[self.hosts[0]]
        self._refuse_during_canary(first, "a rollback")
        target = to or first.previous
        if not target:
            raise NselfError(f"{self.project.env} has no previous release to go back to", code=Exit.GENERAL,
                             hint="releases on the first host: " + (", ".join(first.releases) or "none"))
        lacking = [h for h in self.hosts if target not in states[h].releases]
        if lacking:
            raise NselfError(f"release {target} is not on {', '.join(lacking)}", code=Exit.GENERAL,
                             hint="releases on the first host: " + ", ".join(first.releases))
        from nself.deploy.release import Release

        options = DeployOptions(Release(target))
        report = self._finish(options, target, states, self._restart(target, states, options.timeout), unchanged=[])
        return {"from": first.current, "to": target, **report}

    def rollback_plan(self, to: str | None) -> Plan:
        """What `deploy.rollback --dry-run` prints, without reading the hosts: each host starts the
        release (`to`, else the one before the live one, known when it runs) in its free slot and
        waits until it is healthy; then every host goes live and retires the other slot."""
        release = to or "<the previous release>"
        states = {h: HostState() for h in self.hosts}
        plan = Plan(f"roll {self.project.env} back to {release} on {self.target.describe()}")
        for host_plan in self._restart(release, states, DeployOptions.timeout).values():
            plan.extend(host_plan.steps)
        for phase in (go_live, retire):
            for host in self.hosts:
                plan.extend(phase(self.where, release, self._next_slot(states[host]), states[host], host))
        return plan

    def _restart(self, release: str, states: dict, timeout: float) -> dict[str, Plan]:
        """Per host: start `release` (its folder is on the host) in the free slot, wait until healthy."""
        def steps(host):
            slot = self._next_slot(states[host])
            return [*start(self.where, release, slot, states[host].slot, host),
                    wait_healthy(checks(self.project, self.runtime, slot), timeout, slot, host)]
        return {h: Plan(f"start {release} on {h}", steps(h)) for h in self.hosts}

    def status(self) -> dict:
        states = self._probe("-", [])
        rows = [{"host": h, "release": s.current or "-", "previous": s.previous or "-",
                 "slot": s.slot or "-", "running": s.running, "releases": len(s.releases)}
                for h, s in states.items()]
        return {"env": self.project.env, "release": states[self.hosts[0]].current, "rows": rows}

    def check(self) -> dict:
        states = self._probe("-", [])
        plans = {}
        for host, state in states.items():
            slot = self.slots.get(state.slot or "", self.slots.get(""))
            if state.slot is None or slot is None:
                continue
            plans[host] = Plan("check", [shell("check every service", health_script(
                checks(self.project, self.runtime, slot), 0), on=host, may_fail=True, timeout=120)])
        services = [{"service": h, "where": h, "healthy": False, "detail": "nothing deployed"}
                    for h in self.hosts if h not in plans]
        for result in self._run(plans, 8):
            if result.error and not result.steps:
                raise self._failure([result], "")
            for line in result.stdout.splitlines():
                service, kind, verdict = (line.split("\t") + ["", ""])[:3]
                services.append({"service": service, "where": result.name, "healthy": verdict == "ok",
                                 "detail": kind})
        return {"env": self.project.env, "healthy": all(s["healthy"] for s in services), "services": services}

    def logs(self, service: str | None, follow: bool, tail: int) -> None:
        names = [self.project.service(service).name] if service else sorted(self.project.services)
        states = self._probe("-", [])
        plans = {}
        for host, state in states.items():
            slot = self.slots.get(state.slot or "")
            if slot is None or state.slot is None:
                continue
            steps = [run(f"logs of {name}", self.runtime.name, "logs", "--tail", str(tail),
                         *(["--follow"] if follow else []), compose_render.container(slot, name), on=host,
                         may_fail=True, timeout=None if follow else 120) for name in names]
            plans[host] = Plan("logs", steps)
        self._run(plans, 8, echo=self.out.say)

    def preview(self, options: DeployOptions, diff: bool) -> dict:
        """Per host, the release files that would change (secret files by hash only)."""
        files, digest = self._files(options, self._probe("-", []))
        listing = "cd {} 2>/dev/null && find . -type f ! -name .digest -exec sha256sum {{}} + || true"
        plans = {h: Plan("read the live release", [shell("hash the live release files",
                                                          listing.format(shlex.quote(self.where.base + "/current")),
                                                          on=h, timeout=PROBE_TIMEOUT)]) for h in self.hosts}
        if diff:
            for h in self.hosts:
                plans[h].add(shell("read the live compose files",
                                   f"cd {shlex.quote(self.where.base + '/current')} 2>/dev/null && "
                                   "for f in compose.yaml slot*.yaml; do echo \"==> $f <==\"; cat \"$f\"; done "
                                   "|| true", on=h, timeout=PROBE_TIMEOUT))
        results = self._run(plans, options.parallel)
        self._raise_unreachable(results)
        changes, lines = [], [f"release {options.release.id} ({digest[:12]}) on {self.target.describe()}"]
        for result in results:
            live = _hashes(result.steps[0].stdout)
            new = {f.path: hashlib.sha256(f.data).hexdigest() for f in files}
            for path in sorted(set(live) | set(new)):
                change = "added" if path not in live else "removed" if path not in new else \
                    "changed" if live[path] != new[path] else None
                if change:
                    changes.append({"host": result.name, "file": path, "change": change})
                    lines.append(f"  {result.name}: {change} {path}")
            if diff and len(result.steps) > 1:
                lines += _diff(result.steps[1].stdout, files)
        if not changes:
            lines.append("  no file would change")
        return {"env": self.project.env, "release": options.release.id, "changes": changes, "lines": lines}

    # -- lock and audit (first host) -------------------------------------------------------------
    def lock(self) -> Lock:
        return SshLock(self)

    def record(self, entry: dict) -> None:
        log = posixpath.join(self.where.base, "deploy.log")
        self._send(self.hosts[0], json.dumps(entry, sort_keys=True) + "\n", "append to the deploy log",
                   lambda f: f"cat {f} >> {shlex.quote(log)}; status=$?; rm -f {f}; exit $status")

    def _send(self, host: str, data: str, summary: str, command, may_fail: bool = False) -> StepResult:
        """Small data to the host as a file (SFTP), then `command(file)` in one connection:
        Invoke feeds a run's stdin one byte per 10 ms, which makes stdin slow for records."""
        base = shlex.quote(self.where.base)
        temp = posixpath.join(self.where.base, f".nself-{secrets.token_hex(6)}")
        steps = [shell("prepare the project folder", f"mkdir -p {base}", on=host, timeout=PROBE_TIMEOUT),
                 put("send the record", temp, data, on=host, mode=0o600),
                 shell(summary, command(shlex.quote(temp)), on=host, timeout=PROBE_TIMEOUT, may_fail=may_fail)]
        result, = self._run({host: Plan(summary, steps)}, 1)
        if result.error is not None or len(result.steps) < 3:
            raise self._failure([result], "")
        return result.steps[-1]

    def history(self) -> list[dict]:
        log = shlex.quote(posixpath.join(self.where.base, "deploy.log"))
        result = self._one(shell("read the deploy log", f"cat {log} 2>/dev/null || true", on=self.hosts[0],
                                 timeout=PROBE_TIMEOUT))
        records = []
        for line in result.stdout.splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue      # a torn line from an interrupted append
        return [r for r in records if isinstance(r, dict)]

    # -- execution ----------------------------------------------------------------------------
    def _probe(self, release: str, images: list[str], hosts: list[str] | None = None,
               live: bool = False) -> dict[str, HostState]:
        script = probe_script(self.where, release, images, self.slots, live)
        plans = {h: Plan("probe", [shell("read the host's state", script, on=h, timeout=PROBE_TIMEOUT)])
                 for h in hosts or self.hosts}
        results = self._run(plans, 8)
        self._raise_unreachable(results)
        return {r.name: parse_probe(r.stdout) for r in results}

    def _one(self, step) -> StepResult:
        result, = self._run({step.on: Plan(step.summary, [step])}, 1)
        if result.error is not None or not result.steps:      # a may_fail step's exit is the caller's
            raise self._failure([result], "")
        return result.steps[0]

    def _run(self, plans: dict[str, Plan], parallel: int, echo=None) -> list:
        from nself.remote.executor import run_plans

        return run_plans(self.project.root, plans, self.servers, parallel=parallel, echo=echo,
                         connections=self.connections) if plans else []

    def _raise_unreachable(self, results: list) -> None:
        if any(not r.ok for r in results):
            raise self._failure(results, "nothing was changed")

    def _failure(self, results: list, after: str) -> NselfError:
        """One error naming each failed host; the hosts' own code when they agree (6, 7, 10…)."""
        failed = {r.name: r for r in results if not r.ok}
        codes = {r.error_code for r in failed.values()}
        code = codes.pop() if len(codes) == 1 and None not in codes else Exit.GENERAL
        details = [f"{name}: {r.error or f'exit {r.exit_code}'}" for name, r in sorted(failed.items())]
        summary = f"{len(failed)} of {len(set(r.name for r in results))} host(s) failed ({', '.join(sorted(failed))})"
        return NselfError(f"{self.project.env}: {summary}" + (f"; {after}" if after else ""), code=code,
                          details=details, hint=_hint(code, self.project.env))


class SshLock(Lock):
    """`mkdir <path>/.deploy.lock` on the first host (atomic), holder.json inside."""

    HELD = 75

    def __init__(self, driver: SshDriver):
        self.driver = driver
        self.folder = shlex.quote(posixpath.join(driver.where.base, ".deploy.lock"))
        self.token: str | None = None
        self.taken_over = False

    def acquire(self, holder: dict) -> None:
        token = secrets.token_hex(8)
        lock = self.folder
        driver = self.driver    # whoever takes the lock goes on to every host: connect meanwhile
        driver.connections.warm(driver.project.root, driver.servers, driver.hosts)
        record = {**holder, "token": token, "machine": socket.gethostname(), "pid": os.getpid()}
        result = self.driver._send(
            self.driver.hosts[0], json.dumps(record), "take the deploy lock",
            lambda f: f"if mkdir {lock} 2>/dev/null; then mv -f {f} {lock}/holder.json; else rm -f {f}; "
                      f"cat {lock}/holder.json; exit {self.HELD}; fi", may_fail=True)
        if result.exit_code == self.HELD:
            found = _json(result.stdout, keep_token=True)
            if not _gone(found) or self.taken_over:
                raise LockHeld(self.driver.project.env, _json(result.stdout))
            self._take_over(found)
            return self.acquire(holder)
        if result.exit_code:
            raise NselfError(f"could not take the deploy lock on {self.driver.hosts[0]}: {result.stderr.strip()}",
                             code=Exit.GENERAL, hint=f"check that {self.driver.where.base} is writable")
        self.token = token

    def _take_over(self, holder: dict) -> None:
        """Remove a lock whose holder was a process of this machine that is gone (killed with
        SIGKILL, so its `finally` never ran); only that holder's lock, checked by its token."""
        self.driver.out.warn(f"the lock of {holder.get('who', '?')} ({holder.get('what', '?')}, pid "
                             f"{holder.get('pid')}) was left by a process that is gone: taking it over")
        script = (f"grep -q {shlex.quote(str(holder.get('token', '-')))} {self.folder}/holder.json 2>/dev/null && "
                  f"rm -rf {self.folder}; true")
        self.driver._one(shell("remove the dead process's lock", script, on=self.driver.hosts[0],
                               timeout=PROBE_TIMEOUT))
        self.taken_over = True

    def release(self) -> None:
        if self.token is None:
            return
        script = (f"grep -q {shlex.quote(self.token)} {self.folder}/holder.json 2>/dev/null && "
                  f"rm -rf {self.folder}; true")
        try:
            self.driver._one(shell("release the deploy lock", script, on=self.driver.hosts[0], timeout=PROBE_TIMEOUT))
        except NselfError as exc:
            self.driver.out.warn(f"could not release the lock: {exc.message} (`nself deploy.unlock "
                                 f"{self.driver.project.env}` clears it)")
        self.token = None

    def read(self) -> dict | None:
        result = self.driver._one(shell("read the deploy lock", f"cat {self.folder}/holder.json 2>/dev/null || true",
                                        on=self.driver.hosts[0], timeout=PROBE_TIMEOUT))
        return _json(result.stdout) if result.stdout.strip() else None

    def clear(self) -> dict | None:
        holder = self.read()
        self.driver._one(shell("remove the deploy lock", f"rm -rf {self.folder}", on=self.driver.hosts[0],
                               timeout=PROBE_TIMEOUT))
        return holder


def _json(text: str, keep_token: bool = False) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {"who": "unknown (unreadable lock)"}
    value = value if isinstance(value, dict) else {}
    if not keep_token:
        value.pop("token", None)
    return value


def _gone(holder: dict) -> bool:
    """The lock's holder was a process on this machine that no longer runs. (Another
    machine's process cannot be checked from here: `deploy.unlock` is for that.)"""
    pid = holder.get("pid")
    if holder.get("machine") != socket.gethostname() or not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)           # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:       # it exists, as another user
        return False
    return False


def _archive_name(image: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", image) + ".tar"


def _hashes(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        digest, _, path = line.partition("  ")
        if path:
            out[path.removeprefix("./")] = digest
    return out


def _diff(live_text: str, files: list[ReleaseFile]) -> list[str]:
    """Unified diffs of the compose files (never the env files: they hold secrets)."""
    live, name, lines = {}, None, []
    for line in live_text.splitlines(keepends=True):
        header = re.match(r"^==> (.+) <==$", line.strip())
        if header:
            name = header.group(1)
            live[name] = []
        elif name:
            live[name].append(line)
    for f in files:
        if f.path.endswith(".yaml") and not f.secret:
            new = f.data.decode().splitlines(keepends=True)
            old = live.get(f.path, [])
            lines += [line.rstrip("\n") for line in difflib.unified_diff(old, new, f"live/{f.path}", f"new/{f.path}")]
    return lines


def _hint(code: int, env: str) -> str:
    if code == Exit.NETWORK:
        return "check the address, the port, firewalls and that the host is up (`nself cloud.servers.status`)"
    if code == Exit.PERMISSION:
        return "check the host key (`nself cloud.servers.add NAME --host H --trust-new` after checking it) and the user"
    if code == Exit.TIMEOUT:
        return f"the new release never became healthy: `nself deploy.logs {env}`, or raise --timeout"
    return f"see each host's error above; `nself deploy.status {env}` shows what runs where"

