"""The steps of an SSH deploy on one host, as data (pure; `nself.deploy.ssh` runs them).

On each host, under the target's `path` (default /srv/<project>):

    releases/<id>/      compose.yaml, slot-*.yaml, env/*.env (0600), files/, .digest
    shared/             kept across releases (images in transit land in shared/.images/)
    current → releases/<id>     the live release (an atomic symlink swap)
    previous → releases/<id>    the release before it (what `deploy.rollback` goes back to)
    slot                the live slot (a|b with router nginx, empty without a router)
    router/             nginx: nginx-a.conf, nginx-b.conf, canary-a|b.conf (a split), nginx.conf →
                        the live one, access.log (a split's requests)
    .deploy.lock/       the environment's lock (first host only), holder.json inside
    canary.json         the running canary's or blue-green's state (first host only)
    deploy.log          one JSON line per deploy (first host only)

A deploy is four phases over all hosts: *stage* (upload what differs, load missing images,
start the release in the free slot, wait until healthy), *go live* (router, `current`,
`previous`), *retire* (the old slot's containers removed, keep N) and, when something failed
or was interrupted before retiring, *revert* (the router, links and containers put back as the
probe found them: the old slot still runs until every host went live).
"""
from __future__ import annotations

import base64
import binascii
import posixpath
import shlex
from dataclasses import dataclass, field

import yaml

from nself.deploy import nginx
from nself.deploy.compose_render import ReleaseFile, Slot, container, legacy_volume, routed_ports, slot_file, slots
from nself.errors import Exit
from nself.plan import Step, put, shell
from nself.remote.releases import activate_command

q = shlex.quote
UP_TIMEOUT = 600


@dataclass(frozen=True)
class HostState:
    """What the probe found on a host before a deploy."""

    current: str | None = None
    previous: str | None = None
    slot: str | None = None            # None: nothing live yet
    digest: str = ""                   # of the release being deployed, if the host has it
    images: frozenset[str] = frozenset()
    running: int = 0                   # containers running in the live slot
    releases: tuple[str, ...] = ()
    canary: str = ""                   # the first host's canary.json (one line), if any
    legacy_volumes: frozenset[str] = frozenset()   # volumes the live release names the old shared way
    live_images: tuple[tuple[str, str], ...] = ()  # (service, image) of the live compose.yaml, when asked


@dataclass(frozen=True)
class Runtime:
    """The commands of a container runtime on a host: podman with podman-compose, or docker
    with the Compose v2 plugin (`docker compose`; the old Python `docker-compose` v1 is not
    driven). Where they differ: `docker rm` has no stop timeout (`docker stop -t` first),
    docker runs healthchecks itself (podman without systemd does not)."""

    name: str = "podman"

    def compose(self, slot: Slot, *args: str) -> str:
        """The compose command for `slot`, after a check that says plainly when the host lacks
        the compose tool (exit 127) instead of a shell's "command not found"."""
        base = ["podman-compose"] if self.name == "podman" else ["docker", "compose"]
        return f"{self._require_compose()} && " + shlex.join(
            [*base, "-p", slot.project, "-f", "compose.yaml", "-f", slot_file(slot), *args])

    def _require_compose(self) -> str:
        if self.name == "podman":
            test, wanted = "command -v podman-compose >/dev/null 2>&1", "podman-compose (pip install podman-compose)"
        else:
            test, wanted = ("docker compose version >/dev/null 2>&1",
                            "the Docker Compose v2 plugin (`docker compose`, Debian/Ubuntu: docker-compose-plugin "
                            "or docker-compose-v2); the old docker-compose v1 is not supported")
        return f"{{ {test} || {{ echo {q(f'runtime {self.name}: this host lacks {wanted}')} >&2; exit 127; }}; }}"

    def image_exists(self, image: str) -> str:
        if self.name == "podman":
            return f"podman image exists {q(image)}"
        return f"docker image inspect {q(image)} >/dev/null 2>&1"

    def remove_project(self, project: str) -> str:
        """Every container of a compose project, gone (stopped within 10 s); checked again, as a
        container still being set up can outlive one `rm`."""
        ids = f"{self.name} ps -aq --filter label=com.docker.compose.project={q(project)}"
        remove = "podman rm -f -t 10 $ids" if self.name == "podman" else "docker stop -t 10 $ids; docker rm -f $ids"
        return (f"for attempt in 1 2 3; do ids=$({ids}); [ -z \"$ids\" ] && exit 0; "
                f"{{ {remove}; }} >/dev/null; sleep 1; done; [ -z \"$({ids})\" ]")

    def remove_legacy(self, project: str, base: str) -> str:
        """The containers of compose project `project` that a release under `base` started,
        gone; another environment's containers of the same name are left alone (told apart by
        the compose working_dir label, which podman-compose and docker compose both set)."""
        fmt = '{{.ID}} {{index .Labels "com.docker.compose.project.working_dir"}}'
        releases = posixpath.join(base, "releases", "")
        return (f"{self.name} ps -a --filter label=com.docker.compose.project={q(project)} --format {q(fmt)} | "
                f"awk -v b={q(releases)} 'index($2, b) == 1 {{print $1}}' | xargs -r {self.name} rm -f >/dev/null")

    def running(self, project: str) -> str:
        return f"{self.name} ps -q --filter label=com.docker.compose.project={q(project)} | wc -l"

    def healthy(self, name: str) -> str:
        """Exit 0 when the container's compose healthcheck passes now. podman runs none by
        itself without systemd: run it explicitly; docker runs them, so read the status."""
        if self.name == "podman":
            return f"podman healthcheck run {q(name)}"
        return f"[ \"$(docker inspect -f '{{{{.State.Health.Status}}}}' {q(name)})\" = healthy ]"

    def is_running(self, name: str) -> str:
        return f"[ \"$({self.name} inspect -f '{{{{.State.Running}}}}' {q(name)} 2>/dev/null)\" = true ]"

    def load(self, archive: str) -> str:
        return f"{self.name} load -q -i {q(archive)} && rm -f {q(archive)}"

    def pull(self, image: str) -> str:
        return f"{self.name} pull -q {q(image)}"


@dataclass(frozen=True)
class Check:
    """One health check of one service: the healthcheck, an HTTP GET, or "is it running"."""

    service: str
    kind: str                 # healthcheck | http | running
    command: str


@dataclass(frozen=True)
class HostTarget:
    """Everything the builders need about where a release goes on hosts."""

    base: str
    project: str              # compose_render.compose_name: `<project>-<env>`
    runtime: Runtime
    router: str
    keep: int
    services: tuple[str, ...] = field(default=())
    legacy: str = ""          # the names' prefix before they held the environment (`<project>`)
    volumes: tuple[str, ...] = ()   # compose_render.own_volumes: named per environment

    def slot(self, name: str) -> Slot:
        return slots(self.project, self.router)[name]

    def retire_legacy(self, on: str) -> Step:
        """Remove this environment's containers named as before the environment was in the
        names (`<project>-a|b`, `<project>`): the first deploy after the upgrade retires them."""
        names = [s.project for s in slots(self.legacy, self.router).values()] if self.legacy else []
        return shell("remove containers named without the environment (from before nself put it in names)",
                     " ; ".join([*(self.runtime.remove_legacy(n, self.base) for n in names), "true"]),
                     on=on, timeout=120, may_fail=True)


def probe_script(t: HostTarget, release: str, images: list[str], slots: dict[str, Slot], live: bool = False) -> str:
    """Prints key=value lines (HostState) and never fails on a fresh host. `live`: the live
    compose.yaml too (base64), for a deploy of some services only."""
    b = q(t.base)
    running = "; ".join(f"[ \"$s\" = {q(s.name)} ] && echo running=$({t.runtime.running(s.project)})"
                        for s in slots.values())
    lines = [f"cd {b} 2>/dev/null || exit 0",
             "echo current=$(basename \"$(readlink current)\" 2>/dev/null)",
             "echo previous=$(basename \"$(readlink previous)\" 2>/dev/null)",
             "[ -e slot ] && echo slot=$(cat slot)",
             f"echo digest=$(cat releases/{q(release)}/.digest 2>/dev/null)",
             "echo releases=$(ls -1 releases 2>/dev/null | grep -v '^\\.' | tr '\\n' ' ')",
             *(f"{t.runtime.image_exists(i)} && echo image={q(i)}" for i in images),
             "[ -s canary.json ] && printf 'canary=%s\\n' \"$(tr -d '\\n' < canary.json)\"",
             *(f"grep -qxF {q('    name: ' + legacy_volume(t.legacy, v))} current/compose.yaml 2>/dev/null && "
               f"echo legacy_volume={q(v)}" for v in (t.volumes if t.legacy else ())),
             *(["[ -f current/compose.yaml ] && echo live_compose=$(base64 -w0 current/compose.yaml)"] if live else []),
             "s=$(cat slot 2>/dev/null)", running, "true"]
    return "\n".join(lines)


def parse_probe(text: str) -> HostState:
    values: dict[str, str] = {}
    images, legacy = set(), set()
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "image":
            images.add(value.strip())
        elif key == "legacy_volume":
            legacy.add(value.strip())
        else:
            values[key] = value.strip()
    return HostState(current=values.get("current") or None, previous=values.get("previous") or None,
                     slot=values["slot"] if "slot" in values else None, digest=values.get("digest", ""),
                     images=frozenset(images), running=int(values.get("running") or 0),
                     releases=tuple(values.get("releases", "").split()), canary=values.get("canary", ""),
                     legacy_volumes=frozenset(legacy), live_images=_images_of(values.get("live_compose", "")))


def _images_of(encoded: str) -> tuple[tuple[str, str], ...]:
    """(service, image) of a base64 compose.yaml as `compose_render` writes it ("" → none)."""
    try:
        doc = yaml.safe_load(base64.b64decode(encoded, validate=True)) if encoded else None
    except (binascii.Error, yaml.YAMLError):
        return ()
    services = doc.get("services") if isinstance(doc, dict) else None
    return tuple(sorted((str(name), str(spec["image"])) for name, spec in (services or {}).items()
                        if isinstance(spec, dict) and spec.get("image")))


def upload(t: HostTarget, release: str, files: list[ReleaseFile], digest: str, on: str) -> list[Step]:
    """The release's files into a hidden folder, renamed into place (a half upload is never a release)."""
    folder = posixpath.join(t.base, "releases", release)
    partial = posixpath.join(t.base, "releases", f".{release}.partial")
    dirs = sorted({posixpath.dirname(posixpath.join(partial, f.path)) for f in files})
    steps = [shell("prepare the release folder",
                   f"mkdir -p {q(t.base)}/releases {q(t.base)}/shared && rm -rf {q(partial)} && "
                   f"mkdir -p {' '.join(q(d) for d in dirs)}", on=on, timeout=60)]
    steps += [put(f"upload {f.path}" + (" (secret, 0600)" if f.secret else ""), posixpath.join(partial, f.path),
                  f.data, on=on, mode=f.mode) for f in files]
    steps.append(put("record the release digest", posixpath.join(partial, ".digest"), digest + "\n", on=on))
    steps.append(shell(f"move release {release} into place", f"rm -rf {q(folder)} && mv {q(partial)} {q(folder)}",
                       on=on, timeout=60))
    return steps


def image_steps(t: HostTarget, missing: list[str], archives: dict[str, str], on: str) -> list[Step]:
    """Missing images onto the host: pulled from the registry, or (no registry) the local
    archive uploaded and loaded. `archives`: image → local archive path (empty with a registry)."""
    steps: list[Step] = []
    for index, image in enumerate(missing):
        if image not in archives:
            steps.append(shell(f"pull {image}", t.runtime.pull(image), on=on, timeout=UP_TIMEOUT,
                               error_code=Exit.RUNTIME))
            continue
        remote = posixpath.join(t.base, "shared", ".images", f"{index}.tar")
        steps += [shell("prepare the image folder", f"mkdir -p {q(posixpath.dirname(remote))}", on=on, timeout=30),
                  put(f"send {image}", remote, None, on=on, source=archives[image]),
                  shell(f"load {image}", t.runtime.load(remote), on=on, timeout=UP_TIMEOUT, error_code=Exit.RUNTIME)]
    return steps


def start(t: HostTarget, release: str, slot: Slot, live: str | None, on: str,
          services: tuple[str, ...] = ()) -> list[Step]:
    """Start `release` in `slot` (emptied first unless it is the live one, as without a router).
    `services`: without a router, only these containers are recreated (`up -d --no-deps S…`,
    as `docker compose up -d S` does); a slot of its own always starts whole."""
    folder = posixpath.join(t.base, "releases", release)
    steps = []
    if slot.name and slot.name != live:
        steps.append(shell(f"empty slot {slot.name}", t.runtime.remove_project(slot.project), on=on, timeout=120))
    if not slot.name and t.legacy:
        steps.append(t.retire_legacy(on))      # they hold the ports the new names publish
    only = ("--no-deps", *services) if services and not slot.name else ()
    steps.append(shell(f"start release {release} in {slot.project}" + (f" ({', '.join(services)})" if only else ""),
                       f"cd {q(folder)} && {t.runtime.compose(slot, 'up', '-d', *only)}", on=on, timeout=UP_TIMEOUT,
                       error_code=Exit.RUNTIME))
    return steps


def checks(project, runtime: Runtime, slot: Slot) -> list[Check]:
    """Per service: its compose healthcheck (run explicitly), an HTTP GET where the healthcheck
    is a plain local curl/wget on a published port, else whether the container runs."""
    from nself.k8s.probes import http_get

    published = {(s, target): pub for s, pub, target, _ip in routed_ports(project)}
    out = []
    for name, service in sorted(project.services.items()):
        box = container(slot, name)
        hc = service.healthcheck
        if hc is not None and not hc.disabled and hc.test:
            out.append(Check(name, "healthcheck", runtime.healthy(box)))
            http = http_get(hc)
            port = published.get((name, http["port"])) if http and "scheme" not in http else None
            if port:
                url = f"http://127.0.0.1:{slot.port(port)}{http['path']}"
                out.append(Check(name, "http", f"get {q(url)}"))
        else:
            out.append(Check(name, "running", runtime.is_running(box)))
    return out


def health_script(items: list[Check], timeout: float) -> str:
    """Rounds of every check until all pass or `timeout` seconds pass (0: one round). Prints
    `service<TAB>kind<TAB>ok|fail` for the last round; exit 1 when one failed."""
    get = ('get() { if command -v curl >/dev/null 2>&1; then curl -fsS -o /dev/null --max-time 3 "$1"; '
           'else wget -q -O /dev/null -T 3 "$1"; fi; }')
    rounds = [f"  if {c.command} >/dev/null 2>&1; then r=\"${{r}}{c.service}\t{c.kind}\tok\n\"; "
              f"else r=\"${{r}}{c.service}\t{c.kind}\tfail\n\"; bad=1; fi" for c in items]
    return "\n".join([get, f"deadline=$(( $(date +%s) + {int(timeout)} ))", "while :; do", "  r=''; bad=0",
                      *rounds, '  if [ $bad = 0 ] || [ $(date +%s) -ge $deadline ]; then printf "$r"; exit $bad; fi',
                      "  sleep 1", "done"])


def wait_healthy(items: list[Check], timeout: float, slot: Slot, on: str) -> Step:
    return shell(f"wait until {slot.project} is healthy (at most {timeout:g} s)", health_script(items, timeout),
                 on=on, timeout=timeout + 60, error_code=Exit.TIMEOUT)


def switch(t: HostTarget, release: str, slot: Slot, state: HostState, on: str) -> list[Step]:
    """Make `release` in `slot` the live one, then retire the old slot and old releases."""
    return [*go_live(t, release, slot, state, on), *retire(t, release, slot, state, on)]


def go_live(t: HostTarget, release: str, slot: Slot, state: HostState, on: str) -> list[Step]:
    """Point the router at `slot` and the links at `release`; the old slot still runs, so
    `revert` can put the host back at once (a deploy goes live on every host before it
    retires anything)."""
    b = q(t.base)
    steps = []
    if t.router == "nginx":
        steps.append(nginx.switch(t.base, slot, on))
    links = f"printf %s {q(slot.name)} > {b}/.slot.new && mv -f {b}/.slot.new {b}/slot"
    if state.current and state.current != release:
        links += " && " + previous_link(t.base, state.current)
    steps.append(shell(f"make release {release} current", f"{links} && {activate_command(t.base, release)}",
                       on=on, timeout=30))
    return steps


def retire(t: HostTarget, release: str, slot: Slot, state: HostState, on: str) -> list[Step]:
    """After `go_live`: the old slot's containers removed, releases beyond `keep` deleted."""
    steps = []
    if t.router == "nginx" and state.slot and state.slot != slot.name:
        steps.append(stop_slot(t, t.slot(state.slot), on))
    steps.append(keep(t, release, state.current if state.current != release else state.previous, on))
    return steps


def stop_slot(t: HostTarget, slot: Slot, on: str) -> Step:
    """Remove `slot`'s containers once nginx's old workers have finished what they hold."""
    legacy = [t.runtime.remove_legacy(f"{t.legacy}-{slot.name}", t.base)] if t.legacy else []
    return shell(f"stop slot {slot.name} (once nginx has drained it)",
                 "; ".join([nginx.drain(t.base), *legacy, t.runtime.remove_project(slot.project)]), on=on,
                 timeout=120 + nginx.DRAIN_SECONDS, may_fail=True)


def previous_link(base: str, release: str) -> str:
    """`previous` → releases/<release>, swapped atomically like `current`."""
    b = q(base)
    return f"ln -sfn {q('releases/' + release)} {b}/.previous.new && mv -Tf {b}/.previous.new {b}/previous"


def keep(t: HostTarget, current: str, previous: str | None, on: str) -> Step:
    """Remove releases beyond `keep`, newest kept first; never the live or previous one."""
    spare = max(t.keep - 1 - (1 if previous else 0), 0)
    skip = " ".join(f"-e {q(n)}" for n in (current, previous) if n)
    return shell(f"keep {t.keep} release(s)",
                 f"cd {q(t.base)}/releases && ls -1t | grep -v '^\\.' | grep -vx {skip} | tail -n +{spare + 1} "
                 "| xargs -r rm -rf", on=on, timeout=60, may_fail=True)


def revert(t: HostTarget, release: str, slot: Slot, state: HostState, on: str) -> list[Step]:
    """Put the host back as the probe found it (each step best effort)."""
    b = q(t.base)
    steps: list[Step] = []
    if t.router == "nginx":
        if state.slot:
            steps.append(nginx.switch(t.base, t.slot(state.slot), on))
        else:
            steps.append(nginx.stop(t.base, on))
        if state.slot != slot.name:
            steps.append(shell(f"remove the containers of slot {slot.name}", t.runtime.remove_project(slot.project),
                               on=on, timeout=120))
    elif state.current:
        steps += start(t, state.current, slot, slot.name, on)
    else:
        steps.append(shell("remove the new containers", t.runtime.remove_project(slot.project), on=on, timeout=120))
    links = [f"printf %s {q(state.slot)} > {b}/slot" if state.slot is not None else f"rm -f {b}/slot",
             activate_command(t.base, state.current) if state.current else f"rm -f {b}/current",
             previous_link(t.base, state.previous) if state.previous else f"rm -f {b}/previous"]
    if release not in state.releases:
        links.append(f"rm -rf {q(posixpath.join(t.base, 'releases', release))}")
    steps.append(shell("put the links back", " ; ".join(links), on=on, timeout=30))
    return [Step(s.summary, s.kind, s.argv, s.on, s.spec, s.data, True, s.timeout, s.error_code) for s in steps]
