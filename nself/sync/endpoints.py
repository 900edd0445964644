"""Where an environment's database is, and how nself reaches it (docs/sync.md "Databases").

`environments.<env>.database` in nself.yml says it; every key has a default:

- `via: exec` runs the PostgreSQL tools inside the compose service's container
  (`<runtime> exec -i CONTAINER pg_dump …`, the container's own socket, no password) — the
  default on ssh targets, where the postgres service runs in a container;
  `via: kubectl` (the default on Kubernetes environments) runs them in the service's running
  pod (`kubectl exec -i POD -- pg_dump …`, the pod found by nself's labels
  `app.kubernetes.io/name=<service>,app.kubernetes.io/instance=<project>`), from this machine
  with the environment's context, kubeconfig and namespace; its snapshots are kept here
  (`.nself/state/<env>/`): a file in a pod's container goes with the pod;
  `via: direct` runs the tools on the machine itself and connects to `host:port` with a
  password — the default for `local` (the published port of the postgres service).
- the machine: `local`, or `server` (an inventory name; default the environment's first server).
- `name`/`user`/password: `POSTGRES_DB`/`POSTGRES_USER`/`POSTGRES_PASSWORD` of the postgres
  service (after the env files), or a URL in the variable named by `url_env`; `password_env`
  names another variable. The password never reaches an argv: it goes in a 0600 pgpass file.
- `state`: where snapshots and the short-lived pgpass file live on that machine (default
  `<path>/.nself` on a host, `.nself/state` locally); `keep` snapshots (default 5).

Resolving is pure: it reads the Project and the inventory it is given.
"""
from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from nself.errors import ConfigError
from nself.plan import LOCAL

DEFAULT_KEEP = 5


@dataclass(frozen=True)
class Database:
    """One environment's PostgreSQL database as sync sees it. `on` is `local` or an inventory
    server name; `state` is a folder on that machine. `password` is secret (never shown)."""

    env: str
    on: str
    name: str
    user: str
    via: str = "direct"
    host: str = "127.0.0.1"
    port: int = 5432
    password: str | None = field(default=None, repr=False)
    runtime: str = "podman"
    container: str = ""              # exec: a container name, or "" to find it by compose labels
    project: str = ""
    service: str = "postgres"
    state: str = ".nself/state"
    keep: int = DEFAULT_KEEP
    kubectl: tuple[str, ...] = ()    # kubectl: `kubectl [--context C] [--kubeconfig K] -n NAMESPACE`

    def describe(self) -> str:
        where = "this machine" if self.on == LOCAL else self.on
        how = f"{self.runtime} exec {self.container or self.service}" if self.via == "exec" \
            else f"kubectl exec into {self.service}'s pod: {shlex.join(self.kubectl[1:])}" if self.via == "kubectl" \
            else f"{self.host}:{self.port}"
        return f"{self.env}: database {self.name} as {self.user} on {where} ({how})"

    def same_as(self, other: Database) -> bool:
        """Whether `other` is this very database (same machine, way in, address and name)."""
        return (self.on, self.via, self.host, self.port, self.container, self.project, self.service, self.name,
                self.kubectl) == (other.on, other.via, other.host, other.port, other.container, other.project,
                                  other.service, other.name, other.kubectl)

    def pgpass(self, sync_id: str) -> str:
        """The short-lived 0600 password file of one sync on this machine."""
        return posixpath.join(self.state, "sync", f"{sync_id}.pgpass")

    def snapshots(self) -> str:
        return posixpath.join(self.state, "snapshots", "db")

    def tool(self, program: str, *args: str, sync_id: str = "") -> str:
        """A shell fragment that runs a PostgreSQL client program against this database on its
        machine: inside the container (exec), or with this sync's pgpass file (direct). `-w`:
        never wait for a password prompt."""
        if self.via == "exec":
            return f"{self.runtime} exec -i {self._container()} " + \
                shlex.join([program, "-w", "-U", self.user, *args])
        if self.via == "kubectl":
            return f"{shlex.join(self.kubectl)} exec -i {self._pod()} " + \
                (f"-c {shlex.quote(self.container)} " if self.container else "") + \
                "-- " + shlex.join([program, "-w", "-U", self.user, *args])
        password = f"PGPASSFILE={shlex.quote(self.pgpass(sync_id))} " if self.password and sync_id else ""
        return password + shlex.join([program, "-w", "-h", self.host, "-p", str(self.port), "-U", self.user, *args])

    def _container(self) -> str:
        if self.container:
            return shlex.quote(self.container)
        # docker compose and podman-compose both label containers with project and service
        return (f'"$({self.runtime} ps -q --filter label=com.docker.compose.project={shlex.quote(self.project)}'
                f' --filter label=com.docker.compose.service={shlex.quote(self.service)} | head -n 1)"')


    def _pod(self) -> str:
        """The first running pod of the service (a name kubectl's error will show when none runs)."""
        labels = f"app.kubernetes.io/name={self.service},app.kubernetes.io/instance={self.project}"
        return (f'"$({shlex.join(self.kubectl)} get pods -l {shlex.quote(labels)} '
                f'--field-selector=status.phase=Running -o name | head -n 1 | grep . '
                f'|| echo pod/no-running-pod-of-{self.service})"')


def resolve(project, inventory: Mapping | None = None) -> Database:
    """The database of `project.env`. Raises ConfigError (exit 3) naming the key to set."""
    settings = project.settings
    spec = dict((settings.env_target(project.env) if settings is not None else {}).get("database") or {})
    where = f"environments.{project.env}.database"
    service = _service(project, spec, where)
    env = dict(service.environment) if service is not None else {}
    values = dict(project.variables.values) if project.variables is not None else {}
    lookup = {**values, **env}
    url = _url(lookup, spec, where)
    kube = _kube(project, spec, inventory or {})
    if kube is not None:
        return _in_pod(project, spec, kube, service, lookup)
    on, path, runtime = _machine(project, spec, inventory or {}, where)
    via = spec.get("via") or ("direct" if on == LOCAL or url else "exec")
    name = spec.get("name") or url.get("name") or lookup.get("POSTGRES_DB") or lookup.get("POSTGRES_USER") \
        or "postgres"
    user = spec.get("user") or url.get("user") or lookup.get("POSTGRES_USER") or "postgres"
    password = lookup.get(spec["password_env"]) if spec.get("password_env") else \
        url.get("password") or lookup.get("POSTGRES_PASSWORD")
    default_port = _published_port(service) if on == LOCAL else 5432
    state = spec.get("state") or (str(project.root / ".nself" / "state") if on == LOCAL
                                  else posixpath.join(path, ".nself"))
    return Database(project.env, on, name, user, via, spec.get("host") or url.get("host") or "127.0.0.1",
                    int(spec.get("port") or url.get("port") or default_port), password, runtime,
                    spec.get("container", ""), project.name, service.name if service else spec.get("service", ""),
                    state, int(spec.get("keep") or DEFAULT_KEEP))


def _kube(project, spec: Mapping, inventory: Mapping):
    """The environment's KubeTarget when it runs on Kubernetes (and no `server` is named)."""
    if project.env == "local" or spec.get("server") or spec.get("via") in ("direct", "exec"):
        return None
    from nself.deploy.targets import KubeTarget, resolve as target

    chosen = target(project, inventory) if _has_target(project) else None
    return chosen if isinstance(chosen, KubeTarget) else None


def _in_pod(project, spec: Mapping, kube, service, lookup: Mapping) -> Database:
    """A database in the service's pod, reached with `kubectl exec` from this machine."""
    if service is None:
        raise ConfigError(f"{project.env} runs on Kubernetes and no service looks like PostgreSQL",
                          hint=f"name it with environments.{project.env}.database.service")
    kubectl = ("kubectl", *(("--context", kube.context) if kube.context else ()),
               *(("--kubeconfig", kube.kubeconfig) if kube.kubeconfig else ()), "-n", kube.namespace)
    return Database(project.env, LOCAL, spec.get("name") or lookup.get("POSTGRES_DB") or lookup.get("POSTGRES_USER")
                    or "postgres", spec.get("user") or lookup.get("POSTGRES_USER") or "postgres", "kubectl",
                    "", 0, None, "kubectl", spec.get("container", ""), project.name,
                    service.object_name, str(project.root / ".nself" / "state" / project.env),
                    int(spec.get("keep") or DEFAULT_KEEP), kubectl)


def _service(project, spec: Mapping, where: str):
    wanted = spec.get("service")
    if wanted:
        if wanted not in project.services:
            raise ConfigError(f"{where}.service names {wanted!r}, which is not a service of the project",
                              hint="services: " + ", ".join(project.services))
        return project.services[wanted]
    found = [s for s in project.services.values()
             if (s.image or "").split("/")[-1].startswith(("postgres", "postgis")) or s.name == "postgres"]
    if len(found) > 1:
        raise ConfigError(f"several services look like PostgreSQL: {', '.join(s.name for s in found)}",
                          hint=f"name the one to sync with {where}.service")
    return found[0] if found else None


def _url(lookup: Mapping, spec: Mapping, where: str) -> dict:
    if not spec.get("url_env"):
        return {}
    raw = lookup.get(spec["url_env"])
    if not raw:
        raise ConfigError(f"{where}.url_env names {spec['url_env']}, which no env file sets",
                          hint=f"set {spec['url_env']}=postgres://user:password@host:5432/db in the env files")
    parts = urlsplit(raw)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(f"{spec['url_env']} is not a postgres:// URL", hint="postgres://user:password@host/db")
    return {"host": parts.hostname, "port": parts.port, "user": unquote(parts.username or "") or None,
            "password": unquote(parts.password or "") or None, "name": parts.path.lstrip("/") or None}


def _machine(project, spec: Mapping, inventory: Mapping, where: str) -> tuple[str, str, str]:
    """(where the tools run, the project folder there, the container runtime)."""
    if project.env == "local" and not spec.get("server"):
        return LOCAL, str(project.root), "podman"
    from nself.deploy.targets import SshTarget, resolve as target

    if spec.get("server"):
        if spec["server"] not in inventory:
            raise ConfigError(f"{where}.server names {spec['server']!r}, which is not in the inventory",
                              hint="servers: " + (", ".join(sorted(inventory)) or "none (cloud.servers.add)"))
        chosen = target(project, inventory) if _has_target(project) else None
        path = chosen.path if isinstance(chosen, SshTarget) else f"/srv/{project.name}"
        runtime = chosen.runtime if isinstance(chosen, SshTarget) else "podman"
        return spec["server"], path, runtime
    chosen = target(project, inventory)
    if not isinstance(chosen, SshTarget):
        raise ConfigError(f"{project.env} runs on Kubernetes: syncing its database is not built yet",
                          hint=f"set {where}.server (a host that reaches the database) with via: direct")
    return chosen.servers[0], chosen.path, chosen.runtime


def _has_target(project) -> bool:
    spec = project.settings.env_target(project.env) if project.settings is not None else {}
    return bool(spec.get("target") or spec.get("hosts") or spec.get("roles") or spec.get("context"))


def _published_port(service) -> int:
    """The host port the compose file publishes for 5432 (`127.0.0.1:${POSTGRES_PORT}:5432`)."""
    for port in getattr(service, "ports", ()) or ():
        if str(getattr(port, "target", "")) == "5432" and getattr(port, "published", None):
            return int(str(port.published).split("-")[0])
    return 5432
