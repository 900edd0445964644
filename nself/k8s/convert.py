"""Project (+ an environment's overlay) → Kubernetes objects as plain dicts.

Pure: no clock, no subprocess, no writes. The same inputs give the same
objects in the same order, so generated files are byte-identical run to run.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from nself.errors import ConfigError
from nself.k8s import kinds, network, pods
from nself.k8s.environment import env_objects, renamed_hosts, secrets_in_commands, shield
from nself.k8s.objects import labels, obj, selector
from nself.k8s.settings import BASE, GenerateSettings, Overlay, generate_settings, service_settings
from nself.k8s.volumes import StorageConverter, holds_data
from nself.project.model import Project, Service
from nself.project.warnings import Warning

INGRESS_NAMESPACE = "ingress-nginx"
# On the pod template: changes when a ConfigMap the pod reads changes, so the pods roll
# (Helm's chart writes the same key as `include … | sha256sum` of the rendered file).
CONFIG_CHECKSUM = "checksum/config"
JOB_WAITER = "nself-job-waiter"
_API = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
        "Job": "batch/v1", "CronJob": "batch/v1"}


@dataclass
class Manifests:
    """Objects grouped by service folder ("" for project-wide ones), plus Secrets kept apart."""

    objects: list[tuple[str, dict]] = field(default_factory=list)
    secrets: list[dict] = field(default_factory=list)
    warnings: list[Warning] = field(default_factory=list)
    _secret_names: set[str] = field(default_factory=set, repr=False, compare=False)

    def all(self) -> list[dict]:
        return [o for _, o in self.objects]

    def add_secret(self, secret: dict) -> None:
        """One Secret per name (a claim's file Secret may be mounted by several services)."""
        if secret["metadata"]["name"] not in self._secret_names:
            self._secret_names.add(secret["metadata"]["name"])
            self.secrets.append(secret)


@dataclass(frozen=True)
class Options:
    """How to convert, beside the project and its overlay. `network_policies` None: as
    `kubernetes.generate.network_policies` says; `namespace` None: the project's."""

    include_secrets: bool = False
    namespace: str | None = None
    network_policies: bool | None = None


@dataclass
class _Pod:
    """What the containers of one pod (a service and its `network_mode: service:` sidecars)
    need: built by one function for every container, so sidecars get every step."""

    containers: list[dict] = field(default_factory=list)
    volumes: list[dict] = field(default_factory=list)
    claims: list[dict] = field(default_factory=list)
    single_attach: list[str] = field(default_factory=list)
    shared_with: list[str] = field(default_factory=list)


@dataclass
class _Conversion:
    """Everything the project decides once, before any one service is converted."""

    project: Project
    overlay: Overlay
    options: Options
    settings: GenerateSettings
    out: Manifests
    storage: StorageConverter
    confs: dict[str, dict]
    sidecars: dict[str, list[str]]
    kind_of: dict[str, str]
    ports: dict[str, list[dict]]
    annotations: dict[str, str]
    renamed: dict[str, str]
    service_names: set[str]              # Services' names so far: aliases may not take one


def convert(project: Project, overlay: Overlay = BASE, options: Options = Options()) -> Manifests:
    """The project's objects for one environment's overlay (`BASE`: no environment)."""
    run = _prepare(project, overlay, options)
    run.out.objects.append(("", obj("v1", "Namespace", options.namespace or project.namespace,
                                    labels(project.name))))
    if any(run.kind_of.get(dep.service) == "Job" for svc in project.services.values()
           for dep in svc.depends_on if dep.condition == "service_completed_successfully"):
        run.out.objects += [("", o) for o in _job_waiter_rbac(project)]
    policies = options.network_policies
    if policies if policies is not None else run.settings.network_policies:
        run.out.objects += [("", o) for o in network.network_policies(project, INGRESS_NAMESPACE)]
    for name in run.kind_of:
        _service(run, project.services[name])
    return run.out


def _prepare(project: Project, overlay: Overlay, options: Options) -> _Conversion:
    out = Manifests()
    warnings = out.warnings
    _check_cycles(project)
    refs = network.references(project)
    waiters = kinds.completion_waiters(project)
    confs = {name: service_settings(project, svc) for name, svc in project.services.items()}
    sidecars = _sidecars(project, warnings)
    in_other_pod = {name for names in sidecars.values() for name in names}
    owners = [svc for name, svc in project.services.items() if name not in in_other_pod]
    settings = generate_settings(project)
    annotations = {}
    if overlay.ingress.get("tls") and overlay.ingress.get("cluster_issuer"):
        annotations["cert-manager.io/cluster-issuer"] = overlay.ingress["cluster_issuer"]
    annotations.update(overlay.ingress.get("annotations") or {})
    return _Conversion(
        project, overlay, options, settings, out,
        StorageConverter(project, settings, warnings, options.include_secrets), confs, sidecars,
        kind_of={s.name: kinds.workload_kind(project, s, confs[s.name], s.name in waiters,
                                             holds_data(project, s), warnings) for s in owners},
        ports={s.name: network.service_ports(s, refs.get(s.name), warnings) for s in owners},
        annotations=annotations, renamed=renamed_hosts(project),
        service_names={s.object_name for s in project.services.values()})


def _service(run: _Conversion, svc: Service) -> None:
    """A service's objects: its pod's ConfigMaps, claims and Secrets, the workload, and the
    Service, Ingress, HPA and PDB it needs."""
    project, overlay, out, group = run.project, run.overlay, run.out, svc.object_name
    kind, conf = run.kind_of[svc.name], run.confs[svc.name]
    members = [svc, *(project.services[s] for s in run.sidecars.get(svc.name, ()))]
    pod, first = _Pod(), len(out.objects)
    for member in members:
        _container(run, member, group=group, stateful=kind == "StatefulSet", pod=pod,
                   ports=run.ports[svc.name] if member is svc else [])
    replicas, explicit = _replicas(svc, conf, kind, overlay, run.settings)
    one_pod = kind == "Deployment" and bool(pod.single_attach)
    if one_pod and explicit and (replicas or 1) > 1:
        out.warnings.append(Warning("single-attach", svc.name, "replicas",
                                    f"{replicas} replicas asked, but ReadWriteOnce claim(s) "
                                    f"{', '.join(sorted(set(pod.single_attach)))} attach to one "
                                    "node: one pod (set x-nself access_mode: ReadWriteMany, or "
                                    "kind: statefulset for a claim per pod)"))
    if one_pod:
        replicas = 1
    configs = [o for _, o in out.objects[first:] if o["kind"] == "ConfigMap"]  # this pod's own
    template = _template(run, svc, kind, conf, pod, configs)
    out.objects.append((group, _workload(project, svc, kind, conf, template, replicas, pod.claims,
                                         recreate=one_pod)))
    ports = run.ports[svc.name]
    if ports and kind not in ("Job", "CronJob"):
        out.objects += [(group, o) for o in _reachable(run, svc, conf, kind, ports)]
    if kind == "Deployment" and not one_pod and not kinds.is_stateful_image(svc.image):
        hpa = _autoscaler(project, svc, conf, overlay, replicas, explicit)
        if hpa:
            out.objects.append((group, hpa))
    if kind in ("Deployment", "StatefulSet") and (replicas or 0) > 1 and \
            overlay.pod_disruption_budget.get("enabled", True):
        out.objects.append((group, _disruption_budget(project, svc, overlay)))
    _tag_policy(svc, overlay, out.warnings)


def _container(run: _Conversion, svc: Service, *, group: str, stateful: bool, pod: _Pod,
               ports: list[dict]) -> None:
    """One container of a pod, with the ConfigMaps, Secrets and claims it needs (written to
    the folder `group`): the same steps for a service's own container and for each sidecar."""
    project, out, conf = run.project, run.out, run.confs[svc.name]
    storage = run.storage.pod(svc, conf, stateful=stateful)
    in_commands = secrets_in_commands(project, svc)
    configmap, secret, env_fields = env_objects(project, svc, out.warnings,
                                                run.options.include_secrets, in_commands,
                                                run.renamed)
    if configmap:
        out.objects.append((group, configmap))
    out.objects += [(group, o) for o in storage.objects]
    for each in ([secret] if secret else []) + storage.secrets:
        out.add_secret(each)
    container = pods.container(project.name, svc, env_fields, storage.mounts, ports,
                               pods.resources(svc, conf, run.overlay.resources), out.warnings,
                               run.overlay.images, conf)
    shield(container, in_commands)
    pod.containers.append(container)
    pod.volumes += [v for v in storage.volumes if not any(v["name"] == p["name"] for p in pod.volumes)]
    pod.claims += storage.claims
    pod.single_attach += storage.single_attach
    pod.shared_with += storage.shared_with


def _template(run: _Conversion, svc: Service, kind: str, conf: dict, pod: _Pod,
              configs: list[dict]) -> dict:
    """The pod template: containers, init containers (waits), pod-level fields, labels, and the
    config checksum that rolls the pods when one of `configs` (the ConfigMaps it reads) changes."""
    project, group = run.project, svc.object_name
    init = _init_containers(project, svc, run.kind_of, run.ports, run.out.warnings)
    spec: dict = {}
    if init:
        spec["initContainers"] = init
    spec["containers"] = pod.containers
    if pod.volumes:
        spec["volumes"] = pod.volumes
    if any(c["image"] == pods.JOB_WAIT_IMAGE for c in init):
        spec["serviceAccountName"] = JOB_WAITER
    if kind in ("Job", "CronJob"):
        spec["restartPolicy"] = "OnFailure"
    if run.settings.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": n} for n in run.settings.image_pull_secrets]
    spec.update(pods.pod_extras(svc, conf, selector(project.name, group), run.out.warnings))
    if pod.shared_with:
        spec["affinity"] = {**spec.get("affinity", {}), "podAffinity": _near(project, pod.shared_with)}
    meta: dict = {"labels": {**labels(project.name, group, _component(svc, kind)),
                             **network.network_labels(svc)}}
    annotations = {**svc.labels, **svc.annotations}
    if configs:
        annotations[CONFIG_CHECKSUM] = checksum(configs)
    if annotations:
        meta["annotations"] = dict(sorted(annotations.items()))
    return {"metadata": meta, "spec": spec}


def _reachable(run: _Conversion, svc: Service, conf: dict, kind: str,
               ports: list[dict]) -> list[dict]:
    """The Service for the service's ports, one per network alias, and an Ingress when it
    is public."""
    project, overlay = run.project, run.overlay
    found = [network.service_object(project, svc, ports, headless=kind == "StatefulSet")]
    found += network.alias_services(svc, found[0], run.service_names, run.out.warnings)
    if overlay.ingress.get("enabled", True) and network.is_public(svc, conf):
        ingress = network.ingress_object(project, svc, conf, ports, run.settings.ingress_class,
                                         run.settings.domain, bool(overlay.ingress.get("tls")),
                                         run.annotations, run.out.warnings)
        if ingress:
            found.append(ingress)
    return found


def _disruption_budget(project: Project, svc: Service, overlay: Overlay) -> dict:
    return obj("policy/v1", "PodDisruptionBudget", svc.object_name,
               labels(project.name, svc.object_name), spec={
                   "minAvailable": overlay.pod_disruption_budget.get("min_available", 1),
                   "selector": {"matchLabels": selector(project.name, svc.object_name)}})


def checksum(objects: list[dict]) -> str:
    """sha256 of the objects' data, in a stable form."""
    data = [(o["metadata"]["name"], o.get("data"), o.get("binaryData")) for o in objects]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _component(svc: Service, kind: str) -> str:
    if kind in ("Job", "CronJob"):
        return "job"
    if kinds.is_stateful_image(svc.image):
        return "datastore"
    return "server"


def _replicas(svc: Service, conf: dict, kind: str, overlay: Overlay,
              settings: GenerateSettings) -> tuple[int | None, bool]:
    """(pod count, whether the user chose it). A count from nself.yml, x-nself or compose's
    `deploy.replicas` wins over the environment's preset."""
    if kind not in ("Deployment", "StatefulSet"):
        return None, False
    if "replicas" in conf:
        return int(conf["replicas"]), True
    if svc.deploy.replicas is not None:
        return svc.deploy.replicas, True
    # An environment scales stateless servers; a datastore image (redis, postgres…) keeps
    # one instance: two independent copies behind one Service would split its data.
    if kind == "Deployment" and overlay.replicas is not None and not kinds.is_stateful_image(svc.image):
        return overlay.replicas, False
    return (settings.default_replicas if settings.default_replicas is not None else 1), False


def _near(project: Project, owners: list[str]) -> dict:
    """Pods sharing another service's ReadWriteOnce claim run on that service's node
    (a RWO volume attaches to one node; pods on that node may all mount it)."""
    return {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": selector(project.name,
                                                   project.services[owner].object_name)},
         "topologyKey": "kubernetes.io/hostname"} for owner in sorted(set(owners))]}


def _workload(project: Project, svc: Service, kind: str, conf: dict, template: dict,
              replicas: int | None, claims: list[dict], recreate: bool = False) -> dict:
    """`recreate`: the old pod stops before the new one starts (it holds a ReadWriteOnce claim
    that the new pod could not attach on another node, and two writers would share its data)."""
    lbls = labels(project.name, svc.object_name, _component(svc, kind))
    match = {"matchLabels": selector(project.name, svc.object_name)}
    if kind == "Deployment":
        spec: dict = {"replicas": replicas, "selector": match}
        update = svc.deploy.update_config
        if recreate:
            spec["strategy"] = {"type": "Recreate"}
        elif update and (update.order == "start-first" or update.parallelism):
            rolling = {"maxSurge": update.parallelism or 1, "maxUnavailable": 0} \
                if update.order == "start-first" else {"maxSurge": 0,
                                                        "maxUnavailable": update.parallelism or 1}
            spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": rolling}
        spec["template"] = template
    elif kind == "StatefulSet":
        spec = {"serviceName": svc.object_name, "replicas": replicas, "selector": match,
                "template": template}
        if claims:
            spec["volumeClaimTemplates"] = claims
    elif kind == "DaemonSet":
        spec = {"selector": match, "template": template}
    elif kind == "Job":
        attempts = svc.deploy.restart_policy.max_attempts if svc.deploy.restart_policy else None
        spec = {"backoffLimit": attempts if attempts is not None else 6, "template": template}
    else:  # CronJob
        spec = {"schedule": str(conf["schedule"]), "concurrencyPolicy": "Forbid",
                "jobTemplate": {"spec": {"template": template}}}
    return obj(_API[kind], kind, svc.object_name, lbls, spec=spec)


def _init_containers(project: Project, svc: Service, kind_of: dict, ports: dict,
                     warnings: list[Warning]) -> list[dict]:
    out = []
    for dep in svc.depends_on:
        target = project.services.get(dep.service)
        if target is None or dep.service not in kind_of:
            continue
        if kind_of[dep.service] == "Job":
            out.append(pods.job_wait_container(target.object_name))
        elif dep.condition == "service_completed_successfully":
            warnings.append(Warning("wait", svc.name, f"depends_on.{dep.service}",
                                    f"waits for {dep.service} to complete, but {dep.service} is "
                                    f"a {kind_of[dep.service]}; set x-nself kind: job on it"))
        elif any(p["protocol"] == "TCP" for p in ports.get(dep.service, ())):
            tcp = next(p for p in ports[dep.service] if p["protocol"] == "TCP")
            out.append(pods.wait_container(target.object_name, tcp["port"]))
        elif ports.get(dep.service):  # `nc -z` is a TCP handshake: a UDP port never answers it
            warnings.append(Warning("wait", svc.name, f"depends_on.{dep.service}",
                                    f"{dep.service} has only UDP ports; starting without waiting "
                                    "(depends_on means started, not listening)"))
        else:
            warnings.append(Warning("wait", svc.name, f"depends_on.{dep.service}",
                                    f"{dep.service} has no port to wait for; starting without "
                                    "waiting (add `expose:` to it)"))
    return out


def _autoscaler(project: Project, svc: Service, conf: dict, overlay: Overlay,
                replicas: int | None, explicit: bool) -> dict | None:
    """The environment's HPA, unless the user fixed the pod count; the service's own
    `autoscaling` setting always applies."""
    own = conf.get("autoscaling")
    settings = dict(overlay.autoscaling)
    if isinstance(own, dict):
        settings = {**settings, "enabled": True, **own}
    elif own is False or (explicit and own is not True):
        return None
    if not settings.get("enabled") or not replicas:
        return None
    low = max(int(settings.get("min_replicas", settings.get("min", 1))), replicas or 1)
    high = max(int(settings.get("max_replicas", settings.get("max", low * 3))), low)
    cpu = int(settings.get("target_cpu_utilization", settings.get("cpu", 80)))
    return obj("autoscaling/v2", "HorizontalPodAutoscaler", svc.object_name,
               labels(project.name, svc.object_name), spec={
                   "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": svc.object_name},
                   "minReplicas": low, "maxReplicas": high,
                   "metrics": [{"type": "Resource", "resource": {
                       "name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}}}]})


def _tag_policy(svc: Service, overlay: Overlay, warnings: list[Warning]) -> None:
    if overlay.image_tag_policy != "pinned" or not svc.image:
        return
    name = svc.image.split("@", 1)[0]
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else None
    if "@" not in svc.image and tag in (None, "latest"):
        warnings.append(Warning("unpinned-image", svc.name, "image",
                                f"{svc.image!r} is not pinned for {overlay.env}: use a version tag "
                                "or a digest"))


def _job_waiter_rbac(project: Project) -> list[dict]:
    lbls = labels(project.name)
    return [
        obj("v1", "ServiceAccount", JOB_WAITER, lbls),
        obj("rbac.authorization.k8s.io/v1", "Role", JOB_WAITER, lbls, rules=[
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]}]),
        obj("rbac.authorization.k8s.io/v1", "RoleBinding", JOB_WAITER, lbls,
            roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": JOB_WAITER},
            subjects=[{"kind": "ServiceAccount", "name": JOB_WAITER}]),
    ]


def _sidecars(project: Project, warnings: list[Warning]) -> dict[str, list[str]]:
    """`network_mode: service:X` shares X's network: it runs as a container in X's pod."""
    out: dict[str, list[str]] = {}
    for svc in project.services.values():
        mode = svc.network_mode or ""
        if mode.startswith(("service:", "container:")):
            target = mode.split(":", 1)[1]
            if target not in project.services:
                raise ConfigError(f"service {svc.name!r}: network_mode {mode!r} names no service",
                                  hint="use service:<name> with a service of this project")
            out.setdefault(target, []).append(svc.name)
            warnings.append(Warning("sidecar", svc.name, "network_mode",
                                    f"runs as a container in {target}'s pod (shared network)"))
        elif mode == "none":
            warnings.append(Warning("not-converted", svc.name, "network_mode",
                                    "pods always have a network"))
    return out


def _check_cycles(project: Project) -> None:
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name):] + [name]
            raise ConfigError("depends_on cycle: " + " -> ".join(cycle),
                              hint="remove one dependency from the cycle")
        state[name] = 1
        for dep in project.services[name].depends_on:
            if dep.service in project.services:
                visit(dep.service, [*path, name])
        state[name] = 2

    for name in project.services:
        visit(name, [])
