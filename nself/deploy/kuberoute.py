"""Canary and blue-green objects on Kubernetes, built as data (pure: no cluster, no clock).

Every Deployment's pods carry `app.kubernetes.io/name: <its own name>`, so a Service selects
exactly one Deployment's pods and moving traffic is a change of selector or of router weights:

- canary: `<svc>-canary` (Deployment with the release's pod template, Service, and for
  ingress-nginx a second Ingress with `nginx.ingress.kubernetes.io/canary: "true"` and
  `canary-weight: "N"`); for the Gateway API, the weights of the backendRefs of the HTTPRoutes
  that send traffic to `<svc>` (`<svc>` 100-N, `<svc>-canary` N).
- blue-green: blue is the stable Deployment `<svc>`, green is `<svc>-green` (the release), with
  the Service `<svc>-preview` for it; the switch is one merge patch of the Service `<svc>`'s
  selector, `app.kubernetes.io/name: <svc>` → `<svc>-green` (atomic on the API server).
The canary's pod count follows its weight: ceil(stable replicas × weight / 100), at least 1.
"""
from __future__ import annotations

import copy
import math

from nself.deploy.kubeplan import apply_step, k8s_step
from nself.plan import Plan, Step

NAME = "app.kubernetes.io/name"
TRACK = "nself.io/track"                               # canary | green
RELEASE = "nself.io/release"
CANARY = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"
GREEN = "green"
TRACKS = ("canary", GREEN)


def twin_name(service: str, track: str) -> str:
    """`api` → `api-canary` / `api-green`."""
    return f"{service}-{track}"


def replicas_for(stable: int, weight: int) -> int:
    """Pods of the canary at `weight` % beside `stable` pods: the same share, at least one."""
    return max(1, math.ceil(stable * weight / 100))


def twin_deployment(stable: dict, track: str, release: str, replicas: int) -> dict:
    """The release's Deployment `stable` (as desired) renamed `<svc>-<track>`: its selector and
    pods named after it, so the stable Service never selects them."""
    name = twin_name(stable["metadata"]["name"], track)
    obj = copy.deepcopy(stable)
    meta = obj["metadata"]
    meta["name"] = name
    meta["labels"] = {**(meta.get("labels") or {}), NAME: name, TRACK: track}
    meta["annotations"] = {**(meta.get("annotations") or {}), RELEASE: release}
    spec = obj["spec"]
    spec["replicas"] = replicas
    spec["selector"] = {"matchLabels": {**spec["selector"].get("matchLabels", {}), NAME: name}}
    pod_meta = spec["template"].setdefault("metadata", {})
    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), NAME: name, TRACK: track}
    return obj


def stable_template(twin: dict, service: str) -> dict:
    """A twin's live pod template as the stable Deployment's (its pods named `service` again)."""
    template = copy.deepcopy(twin["spec"]["template"])
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    labels[NAME] = service
    labels.pop(TRACK, None)
    return template


def twin_service(stable: dict, track: str, suffix: str | None = None) -> dict:
    """A copy of the Service `stable` named `<svc>-<suffix or track>`, selecting the twin's pods."""
    service = stable["metadata"]["name"]
    obj = copy.deepcopy(stable)
    obj["metadata"]["name"] = twin_name(service, suffix or track)
    obj["metadata"]["labels"] = {**(obj["metadata"].get("labels") or {}), TRACK: track}
    obj["metadata"].pop("annotations", None)
    obj["spec"]["selector"] = {**obj["spec"]["selector"], NAME: twin_name(service, track)}
    return obj


def canary_ingress(stable: dict, weight: int) -> dict:
    """ingress-nginx's canary Ingress: the stable Ingress's rules pointing at `<svc>-canary`.
    TLS and other annotations stay on the stable one (ingress-nginx takes them from there)."""
    service = stable["metadata"]["name"]
    obj = copy.deepcopy(stable)
    obj["metadata"]["name"] = twin_name(service, "canary")
    obj["metadata"]["labels"] = {**(obj["metadata"].get("labels") or {}), TRACK: "canary"}
    obj["metadata"]["annotations"] = {CANARY: "true", CANARY_WEIGHT: str(weight)}
    obj["spec"].pop("tls", None)
    for rule in obj["spec"].get("rules", []):
        for path in rule.get("http", {}).get("paths", []):
            backend = path["backend"]["service"]
            if backend["name"] == service:
                backend["name"] = twin_name(service, "canary")
    return obj


def weight_patch(weight: int) -> dict:
    """The merge patch that sets the canary Ingress's share."""
    return {"metadata": {"annotations": {CANARY_WEIGHT: str(weight)}}}


def route_rules(route: dict, service: str, weight: int | None) -> list[dict]:
    """The HTTPRoute's rules with each backendRef to `service` split: `service` 100-weight and
    `<service>-canary` weight; `weight` None takes the canary's backendRef out again."""
    canary = twin_name(service, "canary")
    rules = copy.deepcopy(route["spec"].get("rules", []))
    for rule in rules:
        refs = [r for r in rule.get("backendRefs", []) if r.get("name") != canary]
        out = []
        for ref in refs:
            if ref.get("name") == service and ref.get("kind", "Service") == "Service":
                out.append({**ref, "weight": 100 - (weight or 0)})
                if weight is not None:
                    out.append({**ref, "name": canary, "weight": weight})
            else:
                out.append(ref)
        if refs:
            rule["backendRefs"] = out
    return rules


def routes_to(route: dict, service: str) -> bool:
    return any(ref.get("name") == service and ref.get("kind", "Service") == "Service"
               for rule in route.get("spec", {}).get("rules", []) for ref in rule.get("backendRefs", []))


def selector_patch(service: str, pods_of: str) -> dict:
    """The merge patch pointing the Service `service` at the pods of Deployment `pods_of`."""
    return {"spec": {"selector": {NAME: pods_of}}}


# -- plans ----------------------------------------------------------------------------------------
def start_plan(target, release: str, objects: list[dict], routes: dict[str, list[dict]], wait: list[str],
               timeout: float, client) -> Plan:
    """Apply the twins (Deployments, Services, canary Ingresses), put the canary's backendRef
    (weight 0) in each HTTPRoute of `routes` (name → rules), wait for the twin Deployments."""
    ns = target.namespace
    steps = [apply_step(obj, ns, client) for obj in objects]
    steps += [route_step(name, rules, ns, client) for name, rules in sorted(routes.items())]
    steps.append(wait_for(wait, ns, timeout, client))
    return Plan(f"start release {release} beside the stable one in {target.env}", steps)


def route_step(name: str, rules: list[dict], namespace: str, client) -> Step:
    body = {"spec": {"rules": rules}}
    return k8s_step(f"set the backendRef weights of HTTPRoute/{name}", "patch", "HTTPRoute", name, namespace,
                    lambda step: client.patch("HTTPRoute", name, body), body=body)


def patch_step(summary: str, kind: str, name: str, body: dict, namespace: str, client) -> Step:
    return k8s_step(summary, "patch", kind, name, namespace, lambda step: client.patch(kind, name, body), body=body)


def delete_step(kind: str, name: str, namespace: str, client) -> Step:
    """Delete `Kind/name`; already gone is fine (an abort run twice, or after a failed start)."""
    return k8s_step(f"delete {kind}/{name}", "delete", kind, name, namespace,
                    lambda step: client.delete(kind, name))


def wait_for(names: list[str], namespace: str, timeout: float, client) -> Step:
    return k8s_step(f"wait until {', '.join(names)} are ready (at most {timeout:g}s)", "wait", "Deployment", "",
                    namespace, lambda step: client.wait(names, timeout), names=names, timeout=timeout)
