"""The pod side of a service: container, init containers, security, placement."""
from __future__ import annotations

import re
from collections.abc import Mapping

from nself.k8s.objects import cpu, memory, seconds
from nself.k8s.probes import probes
from nself.k8s.settings import PRESETS
from nself.project.model import Resources, Service
from nself.project.warnings import Warning

WAIT_IMAGE = "busybox:1.36.1"
JOB_WAIT_IMAGE = "bitnami/kubectl:1.31"
_PULL = {"always": "Always", "never": "Never", "missing": "IfNotPresent",
         "if_not_present": "IfNotPresent", "build": "IfNotPresent", "daily": "Always",
         "weekly": "Always"}
_CONSTRAINT = re.compile(r"^\s*(node\.[\w.-]+)\s*(==|!=)\s*(.+?)\s*$")
_NODE_KEYS = {"node.hostname": "kubernetes.io/hostname", "node.platform.os": "kubernetes.io/os",
              "node.platform.arch": "kubernetes.io/arch"}


def image(project_name: str, svc: Service, warnings: list[Warning],
          tags: Mapping[str, str] | None = None) -> str:
    """The service's image; an environment may pin another tag (`environments.<env>.images`)."""
    if svc.image:
        repository = svc.image.split("@", 1)[0]
        if ":" in repository.rsplit("/", 1)[-1]:
            repository = repository.rsplit(":", 1)[0]
        return f"{repository}:{tags[repository]}" if tags and repository in tags else svc.image
    name = f"{project_name}-{svc.object_name}:latest"
    warnings.append(Warning("build-only", svc.name, "build",
                            f"built locally, no image: push it and set `image:` (using {name!r})"))
    return name


def resources(svc: Service, conf: Mapping, preset: str | None) -> dict | None:
    """Explicit compose resources win; then the nself.yml preset; then the environment's."""
    res = svc.deploy.resources
    if any(v is not None for v in (res.cpu_limit, res.memory_limit, res.cpu_request,
                                   res.memory_request)):
        return _explicit(res)
    chosen = conf.get("resources") or preset
    return {k: dict(v) for k, v in PRESETS[chosen].items()} if chosen else None


def _explicit(res: Resources) -> dict:
    out: dict = {}
    requests = {k: v for k, v in (("cpu", res.cpu_request and cpu(res.cpu_request)),
                                  ("memory", res.memory_request and memory(res.memory_request))) if v}
    limits = {k: v for k, v in (("cpu", res.cpu_limit and cpu(res.cpu_limit)),
                                ("memory", res.memory_limit and memory(res.memory_limit))) if v}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def container(project_name: str, svc: Service, env_fields: dict, mounts: list[dict],
              ports: list[dict], res: dict | None, warnings: list[Warning],
              tags: Mapping[str, str] | None = None, conf: Mapping | None = None) -> dict:
    """One container; `conf`: the service's x-nself settings (a numeric identity there
    answers a `user:` given by name)."""
    out: dict = {"name": svc.object_name, "image": image(project_name, svc, warnings, tags)}
    if svc.pull_policy:
        out["imagePullPolicy"] = _PULL.get(svc.pull_policy, "IfNotPresent")
    if svc.entrypoint is not None:
        out["command"] = list(svc.entrypoint)
    if svc.command is not None:
        out["args"] = list(svc.command)
    if svc.working_dir:
        out["workingDir"] = svc.working_dir
    if ports:
        out["ports"] = [{"name": p["name"], "containerPort": p["port"], "protocol": p["protocol"]}
                        for p in ports]
    out.update(env_fields)
    if res:
        out["resources"] = res
    out.update(probes(svc.healthcheck))
    security = _container_security(svc, conf or {}, warnings)
    if security:
        out["securityContext"] = security
    if mounts:
        out["volumeMounts"] = mounts
    if svc.tty:
        out["tty"] = True
    if svc.stdin_open:
        out["stdin"] = True
    return out


def numeric_id(name: str) -> int | None:
    """A user or group as Kubernetes takes it: a number, or `root` (0 in every image); other
    names live in the image's /etc/passwd, which nself does not read."""
    if name.isdigit():
        return int(name)
    return 0 if name == "root" else None


def _container_security(svc: Service, conf: Mapping, warnings: list[Warning]) -> dict:
    out: dict = {}
    if svc.user:
        user, _, group = svc.user.partition(":")
        uid, gid = numeric_id(user), numeric_id(group) if group else None
        if uid is not None:
            out["runAsUser"] = uid
        if gid is not None:
            out["runAsGroup"] = gid
        names = []
        if uid is None and "run_as_user" not in conf:
            names.append(f"user {user!r}")
        if group and gid is None and "run_as_group" not in conf:
            names.append(f"group {group!r}")
        if names:
            warnings.append(Warning(
                "user-name", svc.name, "user",
                f"{' and '.join(names)} {'is a name' if len(names) == 1 else 'are names'}, not "
                "carried: Kubernetes takes numbers "
                "(runAsUser/runAsGroup), so the image's default stays; set x-nself: {run_as_user: "
                "<uid>, run_as_group: <gid>} (`id` inside the image prints them)"))
    caps = {}
    if svc.cap_add:
        caps["add"] = [capability(c) for c in svc.cap_add]
    if svc.cap_drop:
        caps["drop"] = [capability(c) for c in svc.cap_drop]
    if caps:
        out["capabilities"] = caps
    out.update(_security_options(svc, warnings))
    if svc.privileged:
        out["privileged"] = True
    if svc.read_only:
        out["readOnlyRootFilesystem"] = True
    return out


def _security_options(svc: Service, warnings: list[Warning]) -> dict:
    """`security_opt`: `no-new-privileges` (Docker also reads `no-new-privileges:true` and
    `=true`) is allowPrivilegeEscalation false; the rest (seccomp, apparmor, label profiles
    of the host) are named in a warning."""
    out: dict = {}
    for option in svc.security_opt:
        name, _, value = option.replace("=", ":", 1).partition(":")
        if name.strip() == "no-new-privileges":
            if value.strip().lower() in ("", "true", "1"):
                out["allowPrivilegeEscalation"] = False
        else:
            warnings.append(Warning("not-converted", svc.name, "security_opt",
                                    f"{option!r} is not converted: set securityContext "
                                    "seccompProfile/appArmorProfile in a patch under "
                                    "k8s/patches/<env>/ (docs/k8s.md)"))
    return out


def capability(name: str) -> str:
    """Docker accepts `CAP_NET_ADMIN`, `NET_ADMIN` and `net_admin`; Kubernetes wants
    `NET_ADMIN` (the runtime prefixes `CAP_` itself: istio/old_pilot_repo#1161)."""
    upper = name.strip().upper()
    return upper[4:] if upper.startswith("CAP_") else upper


def wait_container(target: str, port: int) -> dict:
    script = (f"until nc -z -w 2 {target} {port}; do echo waiting for {target}:{port}; "
              "sleep 2; done")
    return {"name": f"wait-for-{target}", "image": WAIT_IMAGE, "command": ["sh", "-c", script],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                          "limits": {"cpu": "100m", "memory": "32Mi"}}}


def job_wait_container(job: str) -> dict:
    command = ["kubectl", "wait", "--for=condition=complete", f"job/{job}", "--timeout=600s"]
    return {"name": f"wait-for-{job}", "image": JOB_WAIT_IMAGE, "command": command,
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                          "limits": {"cpu": "200m", "memory": "128Mi"}}}


def _pod_identity(svc: Service, conf: Mapping) -> dict:
    """runAsUser/runAsGroup/fsGroup from x-nself, else from compose `user: uid[:gid]`. fsGroup
    makes mounted claims group-writable, so a non-root image can write its volumes."""
    user, _, group = (svc.user or "").partition(":")
    out = {}
    for field, key, fallback in (("runAsUser", "run_as_user", None),
                                 ("runAsGroup", "run_as_group", None),
                                 ("fsGroup", "fs_group", group if group.isdigit() else
                                  user if user.isdigit() and user != "0" else None)):
        value = conf.get(key, fallback)
        if value is not None:
            out[field] = int(value)
    return out


def pod_extras(svc: Service, conf: Mapping, selector: dict, warnings: list[Warning]) -> dict:
    """Pod-level fields: placement, DNS, host aliases, sysctls, grace period."""
    out: dict = {}
    terms, spread = _placement(svc, selector, warnings)
    if terms:
        out["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": terms}]}}}
    if spread:
        out["topologySpreadConstraints"] = spread
    if svc.platform:
        os_name, _, arch = svc.platform.partition("/")
        out["nodeSelector"] = {"kubernetes.io/os": os_name,
                               **({"kubernetes.io/arch": arch.split("/")[0]} if arch else {})}
    if svc.extra_hosts:
        by_ip: dict[str, list[str]] = {}
        for host, ip in sorted(svc.extra_hosts.items()):
            if ip == "host-gateway":
                warnings.append(Warning("host-gateway", svc.name, f"extra_hosts.{host}",
                                        "host-gateway has no pod equivalent; left out"))
                continue
            by_ip.setdefault(ip, []).append(host)
        if by_ip:
            out["hostAliases"] = [{"ip": ip, "hostnames": names} for ip, names in sorted(by_ip.items())]
    if svc.dns or svc.dns_search:
        dns: dict = {}
        if svc.dns:
            dns["nameservers"] = list(svc.dns)
        if svc.dns_search:
            dns["searches"] = list(svc.dns_search)
        out["dnsConfig"] = dns
    security: dict = {}
    if svc.sysctls:
        security["sysctls"] = [{"name": k, "value": v} for k, v in sorted(svc.sysctls.items())]
    groups = [int(g) for g in svc.group_add if g.isdigit()]
    if groups:
        security["supplementalGroups"] = groups
    security.update(_pod_identity(svc, conf))
    if security:
        out["securityContext"] = security
    if svc.stop_grace_period is not None:
        out["terminationGracePeriodSeconds"] = seconds(svc.stop_grace_period, 30)
    if svc.network_mode == "host":
        out["hostNetwork"] = True
        out["dnsPolicy"] = "ClusterFirstWithHostNet"   # else Service names stop resolving
        warnings.append(Warning("host-network", svc.name, "network_mode",
                                "network_mode: host → hostNetwork: the pod shares the node's network"))
    for key, value, why in (("ulimits", svc.ulimits, "ulimits are set by the container runtime, "
                                                      "not per pod"),
                            ("stop_signal", svc.stop_signal, "pods stop with SIGTERM"),
                            ("init", svc.init, "add an init process to the image (tini)"),
                            ("hostname", svc.hostname, "pods are named by Kubernetes; use the "
                                                       "Service name")):
        if value:
            warnings.append(Warning("not-converted", svc.name, key, why))
    return out


def _placement(svc: Service, selector: dict, warnings: list[Warning]) -> tuple[list, list]:
    terms = []
    for text in svc.deploy.constraints:
        match = _CONSTRAINT.match(text)
        key = None
        if match:
            field, op, value = match.groups()
            key = _NODE_KEYS.get(field) or (field[len("node.labels."):]
                                            if field.startswith("node.labels.") else None)
        if key is None:
            warnings.append(Warning("placement", svc.name, "deploy.placement.constraints",
                                    f"{text!r} has no node-label equivalent; left out"))
            continue
        terms.append({"key": key, "operator": "In" if op == "==" else "NotIn",
                      "values": [value.strip("'\"")]})
    spread = []
    for pref in svc.deploy.preferences:
        key = pref[len("node.labels."):] if pref.startswith("node.labels.") else _NODE_KEYS.get(pref)
        if key is None:
            warnings.append(Warning("placement", svc.name, "deploy.placement.preferences",
                                    f"spread over {pref!r} has no node-label equivalent; left out"))
            continue
        spread.append({"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
                       "labelSelector": {"matchLabels": dict(selector)}})
    return terms, spread
