"""Environments as deploy targets, from `environments.<env>` in nself.yml (docs/deploy.md).

`target: ssh` deploys the compose project to inventory servers (`hosts:`/`roles:`), run by
`runtime` (podman or docker) under `path` (default /srv/<project>) behind `router` (nginx or
none). `target: k8s` applies to a cluster (`context:`, the environment's namespace) `via`
kustomize (the generated overlay) or helm (the generated chart). Without `target:`, an
environment with a `context:` is k8s, one with `hosts:`/`roles:` is ssh.
Resolving is pure: it reads the Project and the inventory it is given.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nself.errors import ConfigError

DEFAULT_KEEP = 5


@dataclass(frozen=True)
class SshTarget:
    """Compose on inventory servers. `servers` are inventory names, sorted."""

    env: str
    project: str
    servers: tuple[str, ...]
    runtime: str = "podman"
    path: str = ""
    router: str = "nginx"
    keep: int = DEFAULT_KEEP
    kind = "ssh"

    def describe(self) -> str:
        return f"{self.env}: ssh → {', '.join(self.servers)} ({self.runtime}, {self.path}, router {self.router})"


@dataclass(frozen=True)
class KubeTarget:
    """A Kubernetes cluster. `context` None means the kubeconfig's current context."""

    env: str
    project: str
    namespace: str
    context: str | None = None
    kubeconfig: str | None = None
    via: str = "kustomize"
    keep: int = DEFAULT_KEEP
    kind = "k8s"

    def describe(self) -> str:
        return f"{self.env}: k8s → {self.context or '(current context)'}/{self.namespace} via {self.via}"


Target = SshTarget | KubeTarget


def resolve(project, inventory: Mapping | None = None) -> Target:
    """The deploy target of `project.env`. Raises ConfigError (exit 3) naming the keys to set,
    or naming hosts/roles that match no inventory server."""
    settings = project.settings
    spec = settings.env_target(project.env) if settings is not None else {}
    keep = int((settings.section("deploy", "keep_releases") if settings is not None else None) or DEFAULT_KEEP)
    kind = spec.get("target") or ("k8s" if spec.get("context") else
                                  "ssh" if spec.get("hosts") or spec.get("roles") else None)
    where = f"environments.{project.env}"
    if not spec.get("target") and spec.get("context") and (spec.get("hosts") or spec.get("roles")):
        raise ConfigError(f"{where} names both a kube context and SSH servers",
                          hint=f"set {where}.target: k8s or ssh to say which one deploys")
    if kind is None:
        raise ConfigError(f"environment {project.env!r} has no deploy target",
                          hint=f"in nself.yml set {where}.context (Kubernetes) or {where}.hosts / "
                               f"{where}.roles (SSH servers), or {where}.target: ssh|k8s")
    if kind == "k8s":
        return KubeTarget(project.env, project.name, project.namespace, spec.get("context"),
                          spec.get("kubeconfig"), spec.get("via", "kustomize"), keep)
    servers = _servers(spec, inventory or {}, where)
    return SshTarget(project.env, project.name, servers, spec.get("runtime", "podman"),
                     spec.get("path") or f"/srv/{project.name}", spec.get("router", "nginx"), keep)


def _servers(spec: Mapping, inventory: Mapping, where: str) -> tuple[str, ...]:
    hosts, roles = list(spec.get("hosts") or ()), set(spec.get("roles") or ())
    if not hosts and not roles:
        raise ConfigError(f"{where}.target is ssh but names no servers",
                          hint=f"set {where}.hosts: [web1] or {where}.roles: [web] (servers from "
                               "`nself cloud.servers.add` or `cloud.provision`)")
    unknown = [h for h in hosts if h not in inventory]
    if unknown:
        raise ConfigError(f"{where}.hosts names servers that are not in the inventory: {', '.join(unknown)}",
                          hint="add them with `nself cloud.servers.add NAME --host ADDRESS`; servers: "
                               + (", ".join(sorted(inventory)) or "none"))
    chosen = set(hosts) | {name for name, server in inventory.items() if roles & set(server.roles)}
    if not chosen:
        raise ConfigError(f"{where}.roles {sorted(roles)} match no server in the inventory",
                          hint="give servers roles with `nself cloud.servers.add NAME --host H --roles web`")
    return tuple(sorted(chosen))
