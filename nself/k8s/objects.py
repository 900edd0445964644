"""Small builders shared by the converters: metadata, labels, names, quantities."""
from __future__ import annotations

from typing import Any

from nself.project.names import to_dns1035

MANAGED_BY = "nself"
NETWORK_LABEL = "nself.io/network-"
SOURCE_ANNOTATION = "nself.io/source"   # where a Secret's or ConfigMap's content comes from


def labels(project: str, service: str | None = None, component: str | None = None) -> dict[str, str]:
    out = {}
    if service:
        out["app.kubernetes.io/name"] = service
    out["app.kubernetes.io/instance"] = project
    if component:
        out["app.kubernetes.io/component"] = component
    out["app.kubernetes.io/part-of"] = project
    out["app.kubernetes.io/managed-by"] = MANAGED_BY
    return out


def selector(project: str, service: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": service, "app.kubernetes.io/instance": project}


def obj(api: str, kind: str, name: str, lbls: dict | None = None, **rest: Any) -> dict:
    """A Kubernetes object with its keys in the conventional order."""
    meta: dict[str, Any] = {"name": name}
    if lbls:
        meta["labels"] = dict(lbls)
    if "annotations" in rest:
        annotations = rest.pop("annotations")
        if annotations:
            meta["annotations"] = dict(sorted(annotations.items()))
    return {"apiVersion": api, "kind": kind, "metadata": meta, **rest}


def resource_name(*parts: str) -> str:
    """`postgres` + `init.sql` → `postgres-init-sql` (DNS-1123 label, ≤ 63 chars)."""
    return to_dns1035("-".join(p for p in parts if p))


def port_name(protocol: str, port: int) -> str:
    """Port names are IANA_SVC_NAME: ≤ 15 chars, lowercase, letters required."""
    return f"{protocol.lower()}-{port}"


def cpu(value: float) -> str:
    millis = round(value * 1000)
    return f"{millis // 1000}" if millis % 1000 == 0 else f"{millis}m"


def memory(value: int) -> str:
    for unit, size in (("Gi", 1024 ** 3), ("Mi", 1024 ** 2), ("Ki", 1024)):
        if value % size == 0:
            return f"{value // size}{unit}"
    return str(value)


def seconds(value: float | None, default: int) -> int:
    """Probe and grace periods are whole seconds, at least 1."""
    return max(1, round(value)) if value is not None else default
