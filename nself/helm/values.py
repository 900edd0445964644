"""Per-service chart values, read back from one environment's converted objects.

Running this on every environment's objects gives values.yaml (the reference
environment) and values-<env>.yaml (what differs), so the chart and the
kustomize overlays say the same thing.
"""
from __future__ import annotations

from typing import Any

from nself.k8s.convert import Manifests

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
PROBES = ("readinessProbe", "livenessProbe", "startupProbe")


def pod_spec(workload: dict) -> dict:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    return spec["template"]["spec"]


def main_container(pod: dict, service: str) -> dict:
    """The service's own container (sidecars and hand-written pods may name theirs otherwise)."""
    return next((c for c in pod["containers"] if c["name"] == service), pod["containers"][0])


def split_image(image: str) -> dict[str, str]:
    name, at, digest = image.partition("@")
    repository, tag = name, ""
    if ":" in name.rsplit("/", 1)[-1]:
        repository, tag = name.rsplit(":", 1)
    out = {"repository": repository, "tag": tag}
    if at:
        out["digest"] = digest
    return out


def service_groups(manifests: Manifests) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for group, obj in manifests.objects:
        if group:
            groups.setdefault(group, []).append(obj)
    return groups


def service_values(name: str, objects: list[dict], secrets: dict[str, dict]) -> dict[str, Any]:
    """A service's values from its objects; `secrets`: the Secrets by name."""
    by_kind: dict[str, list[dict]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    workload = next(o for o in objects if o["kind"] in WORKLOADS)
    pod = pod_spec(workload)
    container = main_container(pod, name)
    out: dict[str, Any] = {"image": {**split_image(container["image"]),
                                     "pullPolicy": container.get("imagePullPolicy", "")}}
    if "replicas" in workload["spec"]:
        out["replicas"] = workload["spec"]["replicas"]
    out["resources"] = container.get("resources", {})
    env = next((o for o in by_kind.get("ConfigMap", []) if o["metadata"]["name"] == f"{name}-env"), None)
    out["env"] = dict(env["data"]) if env else {}
    secret = secrets.get(f"{name}-secrets")
    out["secrets"] = sorted(secret["stringData"]) if secret else []
    out["persistence"] = {}
    for claim in by_kind.get("PersistentVolumeClaim", []) + workload["spec"].get("volumeClaimTemplates", []):
        spec = claim["spec"]
        out["persistence"][claim["metadata"]["name"]] = {
            "enabled": True, "size": spec["resources"]["requests"]["storage"],
            "storageClass": spec.get("storageClassName", ""), "accessModes": list(spec["accessModes"])}
    service = next(iter(by_kind.get("Service", [])), None)
    out["service"] = {"type": service["spec"].get("type", "") if service else "",  # "": ClusterIP
                      "ports": [{k: p[k] for k in ("name", "port", "protocol")}
                                for p in service["spec"]["ports"]] if service else []}
    out["ingress"] = _ingress(next(iter(by_kind.get("Ingress", [])), None))
    out["probes"] = {p: container[p] for p in PROBES if p in container}
    hpa = next(iter(by_kind.get("HorizontalPodAutoscaler", [])), None)
    out["autoscaling"] = {"enabled": False}
    if hpa:
        out["autoscaling"] = {
            "enabled": True, "minReplicas": hpa["spec"]["minReplicas"],
            "maxReplicas": hpa["spec"]["maxReplicas"],
            "targetCPUUtilizationPercentage":
                hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"]}
    pdb = next(iter(by_kind.get("PodDisruptionBudget", [])), None)
    out["podDisruptionBudget"] = {"enabled": bool(pdb), "minAvailable": pdb["spec"]["minAvailable"]
                                  if pdb else 1}
    out["nodeSelector"] = pod.get("nodeSelector", {})
    out["tolerations"] = pod.get("tolerations", [])
    out["affinity"] = pod.get("affinity", {})
    out["podSecurityContext"] = pod.get("securityContext", {})
    out["securityContext"] = container.get("securityContext", {})
    return out


def _ingress(ingress: dict | None) -> dict[str, Any]:
    if ingress is None:
        return {"enabled": False, "className": "nginx", "annotations": {}, "hosts": [], "tls": []}
    spec = ingress["spec"]
    hosts = [{"host": rule.get("host", ""),
              "paths": [{"path": p["path"], "pathType": p["pathType"]} for p in rule["http"]["paths"]]}
             for rule in spec["rules"]]
    return {"enabled": True, "className": spec.get("ingressClassName", ""),
            "annotations": dict(ingress["metadata"].get("annotations", {})), "hosts": hosts,
            "tls": [dict(t) for t in spec.get("tls", [])]}


def chart_values(manifests: Manifests) -> dict[str, Any]:
    groups = service_groups(manifests)
    secrets = {s["metadata"]["name"]: s for s in manifests.secrets}
    services = {name: service_values(name, objects, secrets)
                for name, objects in groups.items() if any(o["kind"] in WORKLOADS for o in objects)}
    # Off: `helm install --create-namespace` (what helm.install runs) creates it, and a chart
    # that also templates it fails the first install ("namespaces … already exists").
    return {"namespace": {"create": False}, "nameOverride": "", "fullnameOverride": "",
            "services": services}


def difference(values: Any, base: Any) -> Any:
    """What `values` changes relative to `base` (Helm merges maps and replaces lists)."""
    if isinstance(values, dict) and isinstance(base, dict):
        out = {key: None for key in base if key not in values}   # null deletes a key in Helm
        for key, value in values.items():
            if key not in base:
                out[key] = value
            elif value != base[key]:
                out[key] = difference(value, base[key])
        return out
    return values


def merged(documents: list[dict]) -> dict:
    """Values files merged as Helm merges them (maps merge, null deletes, the rest replaces)."""
    out: dict = {}
    for doc in documents:
        out = _merge(out, doc)
    return out


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        result = dict(base)
        for key, value in over.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = _merge(result.get(key), value)
        return result
    return over
