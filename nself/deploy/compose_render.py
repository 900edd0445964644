"""The compose files of one release on an SSH host, rendered from the Project (pure).

A release folder holds:

- `compose.yaml`: every service with its image pinned to the release's, no published ports
  and no container names (so the same file serves either slot, and `deploy.preview` diffs
  what matters);
- `slot-<name>.yaml`: per slot, the ports published on the host and the container names
  (`<compose project>-<service>`) the health checks address;
- `env/<service>.env` (mode 0600): the service's secret variables, never in compose.yaml;
- `files/…`: bind-mounted files and folders that live inside the project.

Slots: with `router: nginx` a release runs in slot `a` or `b` (compose project
`<project>-<env>-a`/`-b`), publishing port P on 127.0.0.1:P+10000 (a) or P+20000 (b) while
nginx listens on P and forwards to the live slot; the other slot is free for the next release.
With `router: none` there is one slot, the compose project `<project>-<env>`, publishing ports
as declared (a new release replaces the containers in place). The environment is in every
name because two environments may share a host (staging and production on web1): without it
one's deploy would remove the other's containers. Named volumes carry an explicit `name:` so
both slots use the same data, with the environment in it too (`volume_docs`): staging's
database never writes into production's volume.
"""
from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from pathlib import Path

import yaml

from nself.errors import ConfigError
from nself.project.model import Healthcheck, Mount, Project, Service

SLOT_OFFSETS = {"a": 10000, "b": 20000}
SECRET_MODE = 0o600


@dataclass(frozen=True)
class Slot:
    """Where a release runs on a host: a compose project and a rule for published ports."""

    name: str                 # "a" | "b" (router nginx) or "" (router none)
    project: str              # the compose project name

    def port(self, published: int) -> int:
        return published + SLOT_OFFSETS[self.name] if self.name else published


def compose_name(project: Project) -> str:
    """`<project>-<env>`: the prefix of the environment's compose projects and containers on a host."""
    return f"{project.name}-{project.env}"


def slots(prefix: str, router: str) -> dict[str, Slot]:
    """The slots of one environment on a host; `prefix` from `compose_name`."""
    if router == "nginx":
        return {name: Slot(name, f"{prefix}-{name}") for name in SLOT_OFFSETS}
    return {"": Slot("", prefix)}


def host_ports(project: Project, router: str) -> set[tuple[str | None, int]]:
    """(host_ip, port) of every TCP port the environment takes on a host: what nginx listens
    on and both slots' loopback ports (router nginx), or the published ports (router none)."""
    out = set()
    for _service, published, _target, host_ip in routed_ports(project):
        out.add((host_ip, published))
        if router == "nginx":
            out |= {("127.0.0.1", published + offset) for offset in SLOT_OFFSETS.values()}
    return out


def container(slot: Slot, service: str) -> str:
    return f"{slot.project}-{service}"


@dataclass(frozen=True)
class ReleaseFile:
    path: str                 # relative to the release folder
    data: bytes
    mode: int = 0o644
    secret: bool = False


def render(project: Project, images: dict[str, str], folder: str, router: str,
           legacy_volumes: frozenset[str] = frozenset()) -> list[ReleaseFile]:
    """The files of a release living in `folder` on the host (an absolute path).
    `legacy_volumes`: volumes this environment already uses under their old shared name
    (`volume_names`)."""
    files: list[ReleaseFile] = []
    services = {}
    for name, service in sorted(project.services.items()):
        doc, extra = _service(project, service, images.get(name) or service.image, folder)
        services[name] = doc
        files.extend(extra)
    volumes = volume_docs(project, legacy_volumes)
    compose = {"name": project.name, "services": services, **({"volumes": volumes} if volumes else {})}
    files.insert(0, ReleaseFile("compose.yaml", _yaml(compose)))
    for slot in slots(compose_name(project), router).values():
        files.insert(1, ReleaseFile(slot_file(slot), _yaml(_slot_doc(project, slot, router))))
    return files


def volume_docs(project: Project, legacy: frozenset[str] = frozenset()) -> dict[str, dict]:
    """The top-level `volumes:` of a release. Each environment has its own volumes,
    `<project>-<env>_<volume>` (the name compose gives a volume of compose project
    `<project>-<env>`), and both slots of a release share them. Kept as declared: `external`
    volumes and volumes with an explicit `name:` (the user chose to share those). A volume in
    `legacy` keeps `<project>_<volume>`, the name every environment shared before nself put the
    environment in it: an environment already running on it is not moved onto an empty one."""
    out = {}
    for name, volume in sorted(project.volumes.items()):
        if volume.external:
            out[name] = {"external": True, "name": volume.external_name or name}
            continue
        default = legacy_volume(project.name, name) if name in legacy else f"{compose_name(project)}_{name}"
        doc: dict = {"name": volume.external_name or default}
        if volume.driver:
            doc["driver"] = volume.driver
        if volume.driver_opts:
            doc["driver_opts"] = dict(sorted(volume.driver_opts.items()))
        if volume.labels:
            doc["labels"] = dict(sorted(volume.labels.items()))
        out[name] = doc
    return out


def legacy_volume(project_name: str, volume: str) -> str:
    """The name every environment of a project shared for `volume` before nself 0.2."""
    return f"{project_name}_{volume}"


def own_volumes(project: Project) -> tuple[str, ...]:
    """The volumes that get per-environment names (not external, no explicit `name:`)."""
    return tuple(sorted(n for n, v in project.volumes.items() if not v.external and not v.external_name))


def slot_file(slot: Slot) -> str:
    return f"slot-{slot.name}.yaml" if slot.name else "slot.yaml"


def digest(files: list[ReleaseFile]) -> str:
    """One hash over every file of a release (names, modes and contents)."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.path):
        h.update(f"{f.path}\0{f.mode:o}\0{len(f.data)}\0".encode())
        h.update(f.data)
    return h.hexdigest()


def routed_ports(project: Project) -> list[tuple[str, int, int, str | None]]:
    """(service, published, target, host_ip) of every published TCP port, the router's inputs."""
    out = []
    for name, service in sorted(project.services.items()):
        for port in service.ports:
            if port.published and port.protocol == "tcp":
                for published, target in _expand(port.published, port.target):
                    out.append((name, published, target, port.host_ip))
    return out


def _expand(published: str, target: int) -> list[tuple[int, int]]:
    if "-" in str(published):
        low, high = (int(p) for p in str(published).split("-", 1))
        return [(p, target + i) for i, p in enumerate(range(low, high + 1))]
    return [(int(published), target)]


def _slot_doc(project: Project, slot: Slot, router: str) -> dict:
    services = {}
    for name in sorted(project.services):
        doc: dict = {"container_name": container(slot, name)}
        ports = []
        for service, published, target, host_ip in routed_ports(project):
            if service != name:
                continue
            host_port = slot.port(published)
            if host_port > 65535:
                raise ConfigError(f"service {name}: published port {published} + {SLOT_OFFSETS[slot.name]} "
                                  f"(slot {slot.name}) is above 65535",
                                  hint="publish it below 45536, or set router: none for this environment")
            address = "127.0.0.1" if router == "nginx" else host_ip
            ports.append(f"{address}:{host_port}:{target}" if address else f"{host_port}:{target}")
        if ports:
            doc["ports"] = ports
        services[name] = doc
    return {"services": services}


def _service(project: Project, service: Service, image: str | None, folder: str) -> tuple[dict, list[ReleaseFile]]:
    if not image:
        raise ConfigError(f"service {service.name} has no image for this release",
                          hint="give it `image:`, or build it first with `nself deploy.build`")
    doc: dict = {"image": image}
    for key in ("command", "entrypoint"):
        value = getattr(service, key)
        if value is not None:
            doc[key] = [_escape(v) for v in value]
    plain = {k: _escape(v) for k, v in sorted(service.environment.items()) if k not in service.secret_env}
    if plain:
        doc["environment"] = plain
    extra: list[ReleaseFile] = []
    secret = {k: v for k, v in sorted(service.environment.items()) if k in service.secret_env}
    if secret:
        path = f"env/{service.name}.env"
        extra.append(ReleaseFile(path, env_file(secret), SECRET_MODE, secret=True))
        doc["env_file"] = [posixpath.join(folder, path)]
    volumes = []
    for mount in service.volumes:
        text, uploads = _mount(project, mount, folder)
        volumes.append(text)
        extra.extend(uploads)
    if volumes:
        doc["volumes"] = volumes
    if service.depends_on:
        doc["depends_on"] = {d.service: {"condition": d.condition} for d in service.depends_on}
    if service.healthcheck is not None:
        doc["healthcheck"] = healthcheck(service.healthcheck)
    doc.update(_simple(service))
    return doc, extra


def _simple(service: Service) -> dict:
    """Keys carried as they are (scalars and lists)."""
    doc: dict = {}
    for key in ("restart", "user", "working_dir", "hostname", "stop_signal", "shm_size"):
        if getattr(service, key) is not None:
            doc[key] = getattr(service, key)
    for key in ("init", "privileged", "read_only", "tty", "stdin_open"):
        if getattr(service, key):
            doc[key] = True
    for key in ("cap_add", "cap_drop", "dns", "dns_search", "group_add"):
        if getattr(service, key):
            doc[key] = list(getattr(service, key))
    if service.stop_grace_period is not None:
        doc["stop_grace_period"] = f"{service.stop_grace_period:g}s"
    if service.labels:
        doc["labels"] = {k: _escape(v) for k, v in sorted(service.labels.items())}
    if service.extra_hosts:
        doc["extra_hosts"] = [f"{h}:{ip}" for h, ip in sorted(service.extra_hosts.items())]
    if service.ulimits:
        doc["ulimits"] = {k: {"soft": s, "hard": h} for k, (s, h) in sorted(service.ulimits.items())}
    if service.sysctls:
        doc["sysctls"] = dict(sorted(service.sysctls.items()))
    return doc


def healthcheck(check: Healthcheck) -> dict:
    if check.disabled or not check.test:
        return {"disable": True}
    doc: dict = {"test": ["CMD-SHELL", check.test[0]] if check.shell else ["CMD", *check.test]}
    for key in ("interval", "timeout", "start_period", "start_interval"):
        if getattr(check, key) is not None:
            doc[key] = f"{getattr(check, key):g}s"
    if check.retries is not None:
        doc["retries"] = check.retries
    return doc


def _mount(project: Project, mount: Mount, folder: str) -> tuple[str, list[ReleaseFile]]:
    """A mount in short syntax; bind sources inside the project travel with the release."""
    suffix = ":ro" if mount.read_only else ""
    if mount.type == "volume" and mount.source:
        return f"{mount.source}:{mount.target}{suffix}", []
    if mount.type != "bind" or not mount.source:
        return mount.target, []
    source = Path(mount.source)
    try:
        relative = source.resolve().relative_to(project.root.resolve())
    except ValueError:
        return f"{mount.source}:{mount.target}{suffix}", []      # a host path: used as it is
    paths = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    uploads = [ReleaseFile(posixpath.join("files", p.resolve().relative_to(project.root.resolve()).as_posix()),
                           p.read_bytes(), 0o644) for p in paths]
    return f"{posixpath.join(folder, 'files', relative.as_posix())}:{mount.target}{suffix}", uploads


def env_file(values: dict[str, str]) -> bytes:
    """KEY='value' lines; single quotes keep values literal for both compose implementations
    (a value holding a single quote falls back to double quotes with escapes)."""
    lines = []
    for key, value in values.items():
        if "'" not in value and "\n" not in value:
            lines.append(f"{key}='{value}'")
        else:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            lines.append(f'{key}="{escaped}"')
    return ("\n".join(lines) + "\n").encode()


def _escape(value: str) -> str:
    """Values were interpolated already: `$` must reach the container as it is."""
    return str(value).replace("$", "$$")


def _yaml(doc: dict) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False).encode()
