"""Canary and blue-green on the ssh target: the `Driver.canary_*` verbs of `SshDriver`.

The two slots of every host are exactly stable and canary (blue and green): the live slot
(`<path>/slot`) holds the stable release, the other one the canary. `canary_start` stages the
new release in the free slot with the deploy's health wait but does not switch;
`canary_weight` gives nginx a weighted upstream over both slots (`nginx.check_split` on every
host first, then `nginx.apply_split`: a config that fails `nginx -t` anywhere reloads nothing
anywhere); `canary_requests` reads each host's access log from where the last read stopped;
`canary_promote` is a deploy's switch to the canary's slot (router, links, old slot stopped
after nginx drained it, keep N), host by host idempotent; `canary_abort` points nginx back at
the stable slot and removes the canary's. The `CanaryState` is `<path>/canary.json` on the
first host, next to the lock, written atomically (SFTP to a temporary name, renamed).
"""
from __future__ import annotations

import json
import posixpath
import shlex

from nself.deploy import analysis, nginx
from nself.deploy.canary import CanaryState
from nself.deploy.compose_render import routed_ports
from nself.deploy.core import DeployOptions, NotSupported
from nself.deploy.ssh_plan import HostState, stop_slot, switch
from nself.errors import Exit, NselfError
from nself.plan import Plan, put, shell

STATE_FILE = "canary.json"


class SshCanary:
    """Mixed into SshDriver (uses its probe, stage, run and failure helpers)."""

    def canary_start(self, options: DeployOptions) -> None:
        self._split_possible()
        release = options.release.id
        states = self._probe(release, self._images(options))
        bare = [h for h in self.hosts if states[h].slot is None or not states[h].current]
        if bare:
            raise NselfError(f"{self.project.env}: nothing runs on {', '.join(bare)} yet, so there is no stable "
                             "release to run the new one beside", code=Exit.GENERAL,
                             hint=f"deploy one first: `nself deploy.to {self.project.env}`")
        stage = self._stage_plans(options, states, self.hosts)
        for host, plan in stage.items():
            plan.add(nginx.fresh_log(self.where.base, host))
        results = self._run(stage, options.parallel)
        if any(not r.ok for r in results):
            self._revert(release, states, self.hosts, options.parallel)
            raise self._failure(results, "the new release was removed on every host: the stable one still serves")
        slot = self._next_slot(states[self.hosts[0]])
        ports = ", ".join(f"{service} on 127.0.0.1:{slot.port(published)}"
                          for service, published, _t, _ip in routed_ports(self.project))
        self.out.say(f"release {release} runs in slot {slot.name} on every host, taking no traffic yet "
                     f"(preview on each host: {ports})")

    def canary_weight(self, state: CanaryState, weight: int) -> None:
        """Every host's nginx config checked first, then swapped and reloaded (one host: both
        in one connection)."""
        base = self.where.base
        check = {h: Plan(f"check the {weight}% split on {h}", nginx.check_split(self.project, base, weight, h))
                 for h in self.hosts}
        if len(self.hosts) > 1:
            self._must(self._run(check, len(self.hosts)), "nothing was reloaded: traffic is as it was")
            check = {h: Plan(f"split {weight}% on {h}") for h in self.hosts}
        for host, plan in check.items():
            plan.add(nginx.apply_split(base, weight, host))
        self._must(self._run(check, len(self.hosts)), "the other hosts have the new split; `nself "
                   f"deploy.canary.rollback {self.project.env}` puts all traffic back on the stable release")

    def canary_requests(self, state: CanaryState, since: float) -> list[tuple[int, float]]:
        """The canary's requests in every host's access log since `since` (epoch). Each host's
        log is read from the byte where this driver's last read ended; only lines naming the
        canary slot's upstreams cross the network."""
        offsets, kept = self._log_offsets, self._log_lines
        plans = {h: Plan("read the access log", [nginx.read_log(self.project, self.where.base, offsets.get(h, 0), h)])
                 for h in self.hosts}
        results = self._run(plans, len(self.hosts))
        self._must(results, "the canary's requests could not be read")
        out: list[tuple[int, float]] = []
        for result in results:
            head, lines = _log_header(result.stdout)
            if head.get("from") == "0":
                kept[result.name] = []
            kept.setdefault(result.name, []).extend(lines)
            offsets[result.name] = int(head.get("size") or 0)
            slot = self.slots[head["slot"]]
            out += analysis.canary_requests(kept[result.name], set(nginx.canary_addresses(self.project, slot)), since)
        return out

    def canary_promote(self, state: CanaryState) -> None:
        states = self._probe(state.release, [])
        plans = {h: Plan(f"promote on {h}", switch(self.where, state.release, self._next_slot(s), s, h))
                 for h, s in states.items() if not _promoted(s, state)}
        self._must(self._run(plans, 8), f"run `nself deploy.canary.promote {self.project.env} --full` again "
                                        "to finish the other hosts")

    def canary_abort(self, state: CanaryState) -> None:
        states = self._probe(state.release, [])
        plans = {}
        for host, s in states.items():
            if _promoted(s, state):
                self.out.warn(f"{host} runs {state.release} as its live release already; "
                              f"`nself deploy.rollback {self.project.env}` goes back there")
                continue
            live, canary = self.slots[s.slot], self._next_slot(s)
            steps = [nginx.switch(self.where.base, live, host), stop_slot(self.where, canary, host)]
            if state.release not in (s.current, s.previous):
                folder = posixpath.join(self.where.base, "releases", state.release)
                steps.append(shell(f"remove release {state.release}", f"rm -rf {shlex.quote(folder)}", on=host,
                                   timeout=60, may_fail=True))
            plans[host] = Plan(f"abort on {host}", steps)
        self._must(self._run(plans, 8), f"run `nself deploy.canary.rollback {self.project.env}` again")

    def canary_load(self) -> CanaryState | None:
        path = shlex.quote(self._state_path())
        text = self._one(shell("read the canary state", f"cat {path} 2>/dev/null || true", on=self.hosts[0],
                               timeout=60)).stdout
        return _state(text, self.hosts[0], self._state_path())

    def canary_save(self, state: CanaryState) -> None:
        first = self.hosts[0]
        step = put("save the canary state", self._state_path(), json.dumps(state.to_dict(), sort_keys=True) + "\n",
                   on=first)
        self._must(self._run({first: Plan("save the canary state", [step])}, 1), "")

    # -- helpers ---------------------------------------------------------------------------------
    def _state_path(self) -> str:
        return posixpath.join(self.where.base, STATE_FILE)

    def _split_possible(self) -> None:
        if self.target.router != "nginx":
            raise NotSupported(f"{self.project.env} has router: none, so traffic cannot be split",
                               f"set environments.{self.project.env}.router: nginx, or use deploy.to")
        if not routed_ports(self.project):
            raise NotSupported(f"{self.project.name} publishes no TCP port: there is no traffic to split",
                               "publish the port clients use (ports: [\"80:8080\"]), or use deploy.to")

    def _refuse_during_canary(self, first: HostState, what: str) -> None:
        """A deploy or rollback while a canary or blue-green runs would pull the slots from
        under it: refused, naming it."""
        state = _state(first.canary, self.hosts[0], self._state_path()) if first.canary else None
        if state is None or state.done:
            return
        from nself.deploy.progressive import busy

        raise busy(state, self.project.env, what)

    def _must(self, results: list, after: str) -> None:
        if any(not r.ok for r in results):
            raise self._failure(results, after)


def _promoted(host: HostState, state: CanaryState) -> bool:
    """This host switched to the canary's release already (an earlier promote got that far)."""
    return host.current == state.release and state.stable != state.release


def _log_header(text: str) -> tuple[dict[str, str], list[str]]:
    head, lines = {}, []
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("slot", "size", "from") and key not in head and not lines:
            head[key] = value.strip()
        else:
            lines.append(line)
    return head, lines


def _state(text: str, host: str, path: str) -> CanaryState | None:
    if not text.strip():
        return None
    try:
        return CanaryState.from_dict(json.loads(text))
    except (ValueError, TypeError) as exc:
        raise NselfError(f"{host}:{path} is not a canary state ({exc})", code=Exit.GENERAL,
                         hint="look at it; remove it by hand if no canary runs") from None
