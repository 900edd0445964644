"""The Kubernetes resources nself works with: kind → group, version, plural, scope.

One table for building API paths (the cluster adapter) and for serving them
(nself.testing's API server), so both sides agree.
"""
from __future__ import annotations

from typing import NamedTuple


class Resource(NamedTuple):
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    subresources: tuple[str, ...] = ()
    short: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
            if sub:
                base += f"/{sub}"
        return base


RESOURCES = (
    Resource("", "v1", "namespaces", "Namespace", False, ("status",), ("ns",)),
    Resource("", "v1", "configmaps", "ConfigMap", True, (), ("cm",)),
    Resource("", "v1", "secrets", "Secret", True),
    Resource("", "v1", "services", "Service", True, ("status",), ("svc",)),
    Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("status",), ("pvc",)),
    Resource("", "v1", "pods", "Pod", True, ("status", "log", "exec", "portforward"), ("po",)),
    Resource("", "v1", "events", "Event", True, (), ("ev",)),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, (), ("sa",)),
    Resource("apps", "v1", "deployments", "Deployment", True, ("status", "scale"), ("deploy",)),
    Resource("apps", "v1", "statefulsets", "StatefulSet", True, ("status", "scale"), ("sts",)),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, ("status",), ("ds",)),
    Resource("apps", "v1", "replicasets", "ReplicaSet", True, ("status", "scale"), ("rs",)),
    Resource("apps", "v1", "controllerrevisions", "ControllerRevision", True),
    Resource("batch", "v1", "jobs", "Job", True, ("status",)),
    Resource("batch", "v1", "cronjobs", "CronJob", True, ("status",), ("cj",)),
    Resource("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("status",), ("ing",)),
    Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, (), ("netpol",)),
    Resource("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),      # k8s.ingress.status
    Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True,
             ("status",), ("hpa",)),
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("status",), ("pdb",)),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", True),     # deploy locks
    Resource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", True, ("status",)),  # canary weights
)
BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}
BY_PLURAL = {(r.group, r.version, r.plural): r for r in RESOURCES}


def for_object(obj: dict) -> Resource:
    try:
        return BY_KIND[(obj["apiVersion"], obj["kind"])]
    except KeyError:
        from nself.errors import Exit, NselfError

        raise NselfError(f"nself does not manage {obj.get('apiVersion')} {obj.get('kind')} objects",
                         code=Exit.KUBERNETES, hint="apply it with kubectl") from None
