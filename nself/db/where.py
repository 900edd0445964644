"""Which database `nself db` works on: the environment's, found by sync's rules
(`nself.sync.endpoints`, docs/sync.md "Databases"): local compose, or a host's container or
PostgreSQL over SSH. A Kubernetes environment has no way in yet (a pod through `kubectl exec`
is not built): that is exit 2, unless `database.server` names a host that reaches it."""
from __future__ import annotations

from collections.abc import Mapping

from nself.errors import UsageError
from nself.sync import endpoints
from nself.sync.endpoints import Database


def locate(project, servers: Mapping) -> Database:
    """The database of `project.env`. Raises UsageError (exit 2) for a Kubernetes environment
    without `database.server`, ConfigError (exit 3) for bad `database` settings."""
    spec = project.settings.env_target(project.env) if project.settings is not None else {}
    kube = spec.get("target") == "k8s" or (spec.get("context") and spec.get("target") != "ssh")
    if kube and not (spec.get("database") or {}).get("server"):
        raise UsageError(f"{project.env} runs on Kubernetes: `nself db` on a pod is not built yet",
                         hint=f"set environments.{project.env}.database.server (an inventory host that reaches "
                              "the database) with via: direct, or use `nself k8s.exec postgres -- psql`")
    return endpoints.resolve(project, servers)
