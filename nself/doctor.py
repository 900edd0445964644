"""`nself doctor`: what this project needs on this machine, each check with a fix.

A check is *required* when the project uses what it checks: helm and kubectl when an
environment runs on Kubernetes, a container runtime when a service is built here, SSH keys and
known_hosts entries when the inventory has servers, credentials for the providers it names, a
reachable cluster for each Kubernetes environment's context. Python and a valid nself.yml are
always required. Everything else is reported as optional. Every probe has a deadline; credential
values are never read into the report (only whether they are set and where from).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from nself.errors import NselfError

PROBE_TIMEOUT = 10          # seconds for a tool's version command
KUBE_TIMEOUT = 5            # seconds for a cluster's /version
HELM_MAJORS = (3, 4)        # what nself.helm.binary speaks
KEY_NAMES = ("id_ed25519", "id_ecdsa", "id_rsa")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    required: bool
    detail: str
    fix: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Needs:
    """What the project uses, read from its files (or nothing, outside a project)."""

    root: Path | None = None
    project: object = None
    servers: dict | None = None
    kube_envs: dict | None = None        # env → (context, kubeconfig)
    builds: bool = False
    providers: tuple[str, ...] = ()


def run(root: Path | None) -> list[Check]:
    """Every check, in a stable order."""
    checks = [python()]
    needs, loaded = project_needs(root)
    checks.append(loaded)
    checks += [helm(bool(needs.kube_envs)), kubectl(bool(needs.kube_envs)), container_runtime(needs.builds)]
    if needs.servers:
        checks += [ssh_keys(needs.servers), *known_hosts(needs.root, needs.servers)]
    checks += [credentials(name) for name in needs.providers]
    checks += [kube_context(env, *where) for env, where in sorted((needs.kube_envs or {}).items())]
    return checks


def python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    return Check("python", sys.version_info >= (3, 11), True, f"Python {version} at {sys.executable}",
                 "" if sys.version_info >= (3, 11) else "install Python 3.11 or newer and reinstall nself with it")


def project_needs(root: Path | None) -> tuple[Needs, Check]:
    """What the project needs, and the check that its files load (nself.yml, compose, env files)."""
    if root is None:
        return Needs(), Check("nself.yml", True, True, "no project here (nothing to check)")
    from nself.project import load_project
    from nself.remote import inventory

    try:
        project = load_project(root)
        servers = inventory.load(root)
    except NselfError as exc:
        problems = "; ".join([exc.message, *exc.details])
        return Needs(root), Check("nself.yml", False, True, f"the project does not load: {problems}",
                                  exc.hint or "fix the file named above (`nself config.validate`)")
    settings = project.settings
    kube = {}
    for env in settings.environments() if settings is not None else ():
        spec = settings.env_target(env)
        if spec.get("target") == "k8s" or (spec.get("context") and spec.get("target") != "ssh"):
            kube[env] = (spec.get("context"), spec.get("kubeconfig"))
    default = settings.section("providers", "default") if settings is not None else None
    providers = {s.provider for s in servers.values() if s.provider} | ({default} if default else set())
    builds = any(getattr(s, "build", None) for s in project.services.values())
    needs = Needs(root, project, servers, kube, builds, tuple(sorted(providers)))
    return needs, Check("nself.yml", True, True, f"project {project.name} loads ({len(project.services)} services)")


def _version(argv: list[str]) -> tuple[str | None, str]:
    """(stdout, error) of a version command, within PROBE_TIMEOUT."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"`{' '.join(argv)}` did not answer within {PROBE_TIMEOUT}s"
    except OSError as exc:
        return None, str(exc)
    if done.returncode:
        return None, (done.stderr or done.stdout).strip()[-200:]
    return done.stdout.strip(), ""


def helm(required: bool) -> Check:
    fix = "install Helm 3 or 4 (https://helm.sh/docs/intro/install/) and put `helm` on PATH, or set NSELF_HELM"
    binary = os.environ.get("NSELF_HELM") or shutil.which("helm")
    if not binary:
        return Check("helm", False, required, "helm is not on PATH", fix)
    out, error = _version([binary, "version", "--short"])
    match = re.match(r"v(\d+)\.", out or "")
    if not match:
        return Check("helm", False, required, f"{binary} does not tell its version: {error or out}", fix)
    major = int(match.group(1))
    return Check("helm", major in HELM_MAJORS, required, f"{out} at {binary}",
                 "" if major in HELM_MAJORS else f"nself speaks Helm {' and '.join(map(str, HELM_MAJORS))}: {fix}")


def kubectl(required: bool) -> Check:
    fix = "install kubectl (https://kubernetes.io/docs/tasks/tools/) and put it on PATH"
    binary = shutil.which("kubectl")
    if not binary:
        return Check("kubectl", False, required, "kubectl is not on PATH", fix)
    out, error = _version([binary, "version", "--client"])
    return Check("kubectl", out is not None, required, f"{(out or error).splitlines()[0]} at {binary}",
                 "" if out is not None else fix)


def container_runtime(required: bool) -> Check:
    for name in ("podman", "docker"):
        binary = shutil.which(name)
        if binary:
            out, error = _version([binary, "--version"])
            if out is not None:
                return Check("container runtime", True, required, f"{out} at {binary}")
            return Check("container runtime", False, required, f"{binary} does not answer: {error}",
                         f"repair the {name} installation")
    return Check("container runtime", False, required, "neither podman nor docker is on PATH",
                 "install podman (https://podman.io/docs/installation) or Docker")


def ssh_keys(servers: dict) -> Check:
    """Each server's own key file, else an agent or a default key in ~/.ssh."""
    missing = [f"{s.name} ({s.key})" for s in servers.values()
               if s.key and not Path(os.path.expanduser(s.key)).is_file()]
    if missing:
        return Check("ssh keys", False, True, "key files not found: " + ", ".join(missing),
                     "fix `key:` of those servers in .nself/servers.yml, or create the key with ssh-keygen")
    if any(not s.key for s in servers.values()):
        defaults = [n for n in KEY_NAMES if (Path.home() / ".ssh" / n).is_file()]
        if not defaults and not os.environ.get("SSH_AUTH_SOCK"):
            return Check("ssh keys", False, True, "servers without `key:` need a default key or an agent; "
                         "none found in ~/.ssh and SSH_AUTH_SOCK is not set",
                         "ssh-keygen -t ed25519, or start ssh-agent, or set `key:` per server")
    return Check("ssh keys", True, True, f"a key for each of {len(servers)} servers")


def known_hosts(root: Path, servers: dict) -> Iterator[Check]:
    from nself.remote.connection import is_known

    for server in sorted(servers.values(), key=lambda s: s.name):
        known = is_known(root, server)
        yield Check(f"known_hosts {server.name}", known, True,
                    f"{server.host}:{server.port} is " + ("known" if known else "not in .nself/known_hosts or "
                                                                              "~/.ssh/known_hosts"),
                    "" if known else f"check the fingerprint, then `nself cloud.servers.add {server.name} "
                                     f"--host {server.host} --port {server.port} --trust-new`")


def credentials(provider: str) -> Check:
    from nself.providers import credentials as store
    from nself.providers import registry

    try:
        entry = registry.info(provider)
    except NselfError as exc:
        return Check(f"credentials {provider}", False, True, exc.message, exc.hint or "")
    try:
        _, source = store.resolve(entry)
    except NselfError as exc:
        return Check(f"credentials {provider}", False, True, exc.message, exc.hint or "")
    return Check(f"credentials {provider}", True, True, f"set (from {source})")


def kube_context(env: str, context: str | None, kubeconfig: str | None) -> Check:
    """The environment's cluster answers GET /version within KUBE_TIMEOUT."""
    from nself.k8s.cluster import Cluster

    name = f"cluster {env}"
    where = context or "(current context)"
    try:
        cluster = Cluster(kubeconfig, context)
        info = cluster.request("GET", "/version", timeout=KUBE_TIMEOUT)
    except NselfError as exc:
        return Check(name, False, True, f"{where}: {exc.message}", exc.hint or "check the kube context")
    version = info.get("gitVersion", "?") if isinstance(info, dict) else "?"
    return Check(name, True, True, f"{where} answers (Kubernetes {version}) at {cluster.server}")
