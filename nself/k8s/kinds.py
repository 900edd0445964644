"""Which workload kind a compose service becomes, and why."""
from __future__ import annotations

import re
from collections.abc import Mapping

from nself.errors import ConfigError
from nself.project.model import Project, Service
from nself.project.warnings import Warning

# Images whose data lives in their volumes: with a named volume they become StatefulSets.
STATEFUL_IMAGES = frozenset({
    "postgres", "postgis", "timescaledb", "mysql", "mariadb", "percona", "mongo", "mongodb",
    "redis", "valkey", "keydb", "elasticsearch", "opensearch", "minio", "meilisearch", "typesense",
    "rabbitmq", "nats", "kafka", "zookeeper", "clickhouse", "clickhouse-server", "cassandra",
    "couchdb", "etcd", "influxdb", "qdrant", "weaviate", "neo4j", "memcached", "loki", "prometheus",
    "tempo", "grafana", "alertmanager",
})
# Binding these host paths means watching the node itself: one pod per node.
NODE_PATHS = frozenset({"/", "/proc", "/sys", "/dev", "/cgroup", "/sys/fs/cgroup", "/var/log",
                        "/var/lib/docker", "/var/lib/docker/containers", "/var/lib/containerd"})
KINDS = {"deployment": "Deployment", "statefulset": "StatefulSet", "daemonset": "DaemonSet",
         "job": "Job", "cronjob": "CronJob"}
_ONE_SHOT = {"no", "on-failure"}


def image_base(image: str | None) -> str:
    """`docker.io/bitnami/postgresql:16@sha256:…` → `postgresql`."""
    if not image:
        return ""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[0].lower()


def is_stateful_image(image: str | None) -> bool:
    base = image_base(image)
    return base in STATEFUL_IMAGES or re.sub(r"(-server|ql|db)$", "", base) in STATEFUL_IMAGES


def completion_waiters(project: Project) -> dict[str, list[str]]:
    """service → the services that wait for it to complete successfully."""
    out: dict[str, list[str]] = {}
    for svc in project.services.values():
        for dep in svc.depends_on:
            if dep.condition == "service_completed_successfully":
                out.setdefault(dep.service, []).append(svc.name)
    return out


def workload_kind(project: Project, svc: Service, conf: Mapping, waited_for: bool,
                  holds_data: bool, warnings: list[Warning]) -> str:
    """`holds_data`: the service keeps data in claims (see `volumes.holds_data`); a
    datastore image that does becomes a StatefulSet, whether the compose file names a
    volume or binds a folder for it."""
    explicit = conf.get("kind")
    if explicit:
        if str(explicit).lower() not in KINDS:
            raise ConfigError(f"service {svc.name!r}: unknown kind {explicit!r}",
                              hint="use one of " + ", ".join(KINDS))
        if str(explicit).lower() == "cronjob" and not conf.get("schedule"):
            raise ConfigError(f"service {svc.name!r}: a cronjob needs a schedule",
                              hint='add schedule: "0 3 * * *" to x-nself')
        return KINDS[str(explicit).lower()]
    if conf.get("schedule"):
        return "CronJob"
    if svc.deploy.mode in ("global", "global-job"):
        return "DaemonSet"
    node_paths = sorted(m.source for m in svc.volumes if m.type == "bind" and m.source in NODE_PATHS)
    if node_paths:
        warnings.append(Warning("node-agent", svc.name, "volumes",
                                f"reads the node ({', '.join(node_paths)}): a DaemonSet, one pod per "
                                "node (set x-nself kind to change it)"))
        return "DaemonSet"
    restart = svc.restart or (svc.deploy.restart_policy.condition if svc.deploy.restart_policy else None)
    restart = {"none": "no", "any": "always"}.get(restart or "", restart)
    one_shot = restart in _ONE_SHOT or svc.deploy.mode == "replicated-job"
    if one_shot and not svc.ports and not svc.expose and waited_for:
        return "Job"
    if restart in _ONE_SHOT:
        warnings.append(Warning("restart-policy", svc.name, "restart",
                                f"restart: {restart!r} has no Deployment equivalent: pods always "
                                "restart; set x-nself kind: job if it runs once"))
    if holds_data and is_stateful_image(svc.image):
        return "StatefulSet"
    return "Deployment"
