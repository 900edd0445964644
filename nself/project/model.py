"""The immutable project model: what the compose files, env files and nself.yml say.

Plain frozen dataclasses, tuples and read-only mappings; no Kubernetes, Helm or
provider types. Renderers and plans read it; nothing writes to it after load.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from nself.project.envfiles import EnvVars
from nself.project.warnings import Warning

EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True)
class Port:
    target: int
    published: str | None = None      # a port or a range "8000-8010"
    host_ip: str | None = None
    protocol: str = "tcp"
    mode: str | None = None
    name: str | None = None
    app_protocol: str | None = None


@dataclass(frozen=True)
class Mount:
    type: str                          # volume | bind | tmpfs | npipe | cluster | image
    target: str
    source: str | None = None          # volume name or absolute host path
    read_only: bool = False
    size: int | None = None            # tmpfs bytes
    subpath: str | None = None
    mode: int | None = None            # tmpfs permission bits


@dataclass(frozen=True)
class Healthcheck:
    test: tuple[str, ...] = ()
    shell: bool = False                # CMD-SHELL / string form: run through `sh -c`
    disabled: bool = False             # NONE or disable: true
    interval: float | None = None      # seconds
    timeout: float | None = None
    start_period: float | None = None
    start_interval: float | None = None
    retries: int | None = None


@dataclass(frozen=True)
class Resources:
    cpu_limit: float | None = None
    memory_limit: int | None = None    # bytes
    cpu_request: float | None = None
    memory_request: int | None = None
    pids_limit: int | None = None


@dataclass(frozen=True)
class RestartPolicy:
    condition: str | None = None       # none | on-failure | any
    delay: float | None = None
    max_attempts: int | None = None
    window: float | None = None


@dataclass(frozen=True)
class UpdateConfig:
    parallelism: int | None = None
    delay: float | None = None
    failure_action: str | None = None
    monitor: float | None = None
    max_failure_ratio: float | None = None
    order: str | None = None           # stop-first | start-first


@dataclass(frozen=True)
class Deploy:
    mode: str = "replicated"           # replicated | global | replicated-job | global-job
    replicas: int | None = None
    resources: Resources = Resources()
    restart_policy: RestartPolicy | None = None
    update_config: UpdateConfig | None = None
    rollback_config: UpdateConfig | None = None
    constraints: tuple[str, ...] = ()
    preferences: tuple[str, ...] = ()  # spread expressions
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    endpoint_mode: str | None = None


@dataclass(frozen=True)
class Dependency:
    service: str
    condition: str = "service_started"  # service_started | service_healthy | service_completed_successfully
    required: bool = True
    restart: bool = False


@dataclass(frozen=True)
class Build:
    context: str | None = None
    dockerfile: str | None = None
    target: str | None = None
    args: Mapping[str, str | None] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True)
class FileRef:
    """A service's use of a top-level secret or config."""

    source: str
    target: str
    uid: str | None = None
    gid: str | None = None
    mode: int | None = None


@dataclass(frozen=True)
class NetworkAttachment:
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None


@dataclass(frozen=True)
class Service:
    name: str
    object_name: str                   # DNS-1035 form of `name`, used for every object
    image: str | None = None
    build: Build | None = None
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    secret_env: frozenset[str] = frozenset()
    env_files: tuple[str, ...] = ()
    ports: tuple[Port, ...] = ()
    expose: tuple[str, ...] = ()
    volumes: tuple[Mount, ...] = ()
    depends_on: tuple[Dependency, ...] = ()
    links: tuple[str, ...] = ()
    healthcheck: Healthcheck | None = None
    deploy: Deploy = field(default_factory=Deploy)
    restart: str | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    annotations: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    networks: Mapping[str, NetworkAttachment] = field(default_factory=lambda: EMPTY)
    network_mode: str | None = None
    secrets: tuple[FileRef, ...] = ()
    configs: tuple[FileRef, ...] = ()
    profiles: tuple[str, ...] = ()
    user: str | None = None
    group_add: tuple[str, ...] = ()
    working_dir: str | None = None
    hostname: str | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    privileged: bool = False
    read_only: bool = False
    init: bool = False
    tty: bool = False
    stdin_open: bool = False
    stop_grace_period: float | None = None
    stop_signal: str | None = None
    sysctls: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    ulimits: Mapping[str, tuple[int, int]] = field(default_factory=lambda: EMPTY)   # name -> (soft, hard)
    extra_hosts: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    shm_size: int | None = None
    pull_policy: str | None = None
    platform: str | None = None
    # x-* keys, x-nself among them
    extensions: Mapping[str, Any] = field(default_factory=lambda: EMPTY)

    @property
    def nself(self) -> Mapping[str, Any]:
        """Per-service conversion settings from `x-nself:`."""
        return self.extensions.get("x-nself") or EMPTY


@dataclass(frozen=True)
class Resource:
    """A top-level volume, network, secret or config."""

    name: str
    external: bool = False
    driver: str | None = None
    driver_opts: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    file: str | None = None            # secrets/configs from a file
    environment: str | None = None     # secrets/configs from a variable
    content: str | None = None         # configs inline
    internal: bool = False             # networks
    external_name: str | None = None   # `name:` of the resource outside compose


@dataclass(frozen=True)
class Project:
    name: str
    root: Path
    env: str
    compose_files: tuple[Path, ...]
    services: Mapping[str, Service]
    volumes: Mapping[str, Resource] = field(default_factory=lambda: EMPTY)
    networks: Mapping[str, Resource] = field(default_factory=lambda: EMPTY)
    secrets: Mapping[str, Resource] = field(default_factory=lambda: EMPTY)
    configs: Mapping[str, Resource] = field(default_factory=lambda: EMPTY)
    variables: EnvVars | None = None
    settings: Any = None               # nself.project.settings.Settings
    namespace: str = ""
    profiles: tuple[str, ...] = ()
    used_variables: frozenset[str] = frozenset()   # what the compose model read from the env
    warnings: tuple[Warning, ...] = field(default_factory=tuple)
    extensions: Mapping[str, Any] = field(default_factory=lambda: EMPTY)

    def service(self, name: str) -> Service:
        from nself.errors import UsageError

        if name in self.services:
            return self.services[name]
        by_object = {s.object_name: s for s in self.services.values()}
        if name in by_object:
            return by_object[name]
        raise UsageError(f"no service named {name!r} in project {self.name!r}",
                         hint="services: " + ", ".join(self.services))
