"""Cluster operations: apply an environment (Secrets from the env files, server-side
apply, prune, wait through the watch API), status, scale, rollouts, delete."""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from nself.errors import Exit, NselfError
from nself.k8s.cluster import Cluster
from nself.k8s.resources import BY_KIND, RESOURCES, Resource, for_object
from nself.plan import LocalRunner, Plan, Step
from nself.project.model import Project

PROJECT_LABEL = "nself.io/project"
ENV_LABEL = "nself.io/environment"
REVISION = "deployment.kubernetes.io/revision"
# What nself applies and may prune; Pods, ReplicaSets and Events belong to controllers,
# Leases are deploy locks (nself.deploy.kube), never part of an environment's objects, and
# claims hold data: one nself stopped generating (e.g. moved into a StatefulSet's claim
# templates) stays, like Helm's `resource-policy: keep`; delete it by hand when it is garbage.
PRUNABLE = [r for r in RESOURCES if r.namespaced and r.kind not in ("Pod", "Event", "ReplicaSet",
                                                                       "ControllerRevision", "Lease",
                                                                       "PersistentVolumeClaim")]
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")


@dataclass(frozen=True)
class Target:
    cluster: Cluster
    namespace: str
    selector: str            # what nself labels its objects with in this environment


def target(project: Project, *, namespace: str | None = None, context: str | None = None,
           kubeconfig: str | None = None) -> Target:
    env_target = project.settings.env_target(project.env)
    cluster = Cluster(kubeconfig or env_target.get("kubeconfig"), context or env_target.get("context"))
    return Target(cluster, namespace or project.namespace,
                  f"{PROJECT_LABEL}={project.name},{ENV_LABEL}={project.env}")


def render(project: Project, namespace: str, directory: Path | None = None, *,
           in_memory: bool = False) -> list[dict]:
    """The environment's objects: an overlay folder through kustomize, plain manifests,
    or (with no generated tree, or `in_memory`: pure, no kubectl) converted in memory."""
    folder = directory or project.root / "k8s" / "overlays" / project.env
    if folder.is_dir() and not in_memory:
        docs = _load_folder(folder)
    else:
        from nself.k8s import kustomize
        from nself.k8s.convert import convert
        from nself.k8s.settings import load_overlay

        docs = kustomize.namespaced(convert(project, load_overlay(project, project.env)), namespace,
                                    include_secrets=False)
    out = []
    for doc in docs:
        doc = copy.deepcopy(doc)
        if doc["kind"] == "Secret":
            continue            # Secrets come from the env files, never from files on disk
        res = for_object(doc)
        labels = doc["metadata"].setdefault("labels", {})
        labels[PROJECT_LABEL], labels[ENV_LABEL] = project.name, project.env
        if doc["kind"] == "Namespace":
            doc["metadata"]["name"] = namespace
        elif res.namespaced:
            doc["metadata"]["namespace"] = namespace
        out.append(doc)
    return sorted(out, key=lambda d: d["kind"] != "Namespace")


def _load_folder(folder: Path) -> list[dict]:
    if (folder / "kustomization.yaml").is_file():
        kubectl = shutil.which("kubectl")
        if not kubectl:
            raise NselfError("kubectl is needed to render the kustomize overlay", code=Exit.NOT_FOUND,
                             hint="install kubectl, or apply without a generated tree")
        out = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
        if out.returncode:
            raise NselfError(f"kubectl kustomize {folder} failed: {out.stderr.strip()}", code=Exit.CONFIG,
                             hint="regenerate it with `nself k8s.generate`")
        texts = [out.stdout]
    else:
        texts = [p.read_text() for p in sorted(folder.rglob("*.y*ml"))]
    return [d for text in texts for d in yaml.safe_load_all(text) if isinstance(d, dict) and d.get("kind")]


def secrets(project: Project, namespace: str) -> tuple[list[dict], list[str]]:
    """The environment's Secrets with values from its env files; keys without a local value
    are left out (so the cluster's value stays), and named."""
    from nself.k8s.convert import convert
    from nself.k8s.settings import load_overlay

    out, missing = [], []
    for secret in convert(project, load_overlay(project, project.env), include_secrets=True).secrets:
        values = {k: v for k, v in secret["stringData"].items() if v != ""}
        missing += [f"{secret['metadata']['name']}/{k}" for k, v in secret["stringData"].items() if v == ""]
        if values:
            meta = {"name": secret["metadata"]["name"], "namespace": namespace,
                    "labels": {**secret["metadata"].get("labels", {}), PROJECT_LABEL: project.name,
                               ENV_LABEL: project.env}}
            out.append({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
                        "stringData": values})
    return out, missing


def apply_plan(namespace: str, objects: list[dict], secret_objects: list[dict],
               cluster: Callable[[], Cluster], prunable: list[tuple[Resource, str]] = ()) -> Plan:
    """One k8s step per object (server-side apply): the Namespace first, Secrets before the pods
    that read them, then the rest; then a delete step per object of `prunable` (what nself applied
    here before, from `pruning`) that is no longer wanted. Pure: `cluster` is called only when a
    step runs. A Secret's step carries the object as `data` (shown by size only)."""
    ordered = objects[:1] + secret_objects + objects[1:]
    wanted = {(o["kind"], o["metadata"]["name"]) for o in ordered}
    steps = [_apply_step(obj, namespace, cluster) for obj in ordered]
    steps += [_delete_step(res, name, namespace, cluster) for res, name in prunable if (res.kind, name) not in wanted]
    return Plan(f"apply {len(ordered)} objects to {namespace}", steps)


def _apply_step(obj: dict, namespace: str, cluster: Callable[[], Cluster]) -> Step:
    kind, name = obj["kind"], obj["metadata"]["name"]
    where = {"namespace": namespace} if for_object(obj).namespaced else {}
    return Step(f"apply {kind} {name}", "k8s", spec={"verb": "apply", "resource": kind, "name": name, **where},
                data=json.dumps(obj) if kind == "Secret" else None, error_code=Exit.KUBERNETES,
                call=lambda step: cluster().apply(obj, namespace))


def _delete_step(res: Resource, name: str, namespace: str, cluster: Callable[[], Cluster]) -> Step:
    return Step(f"prune {res.kind} {name}", "k8s",
                spec={"verb": "delete", "resource": res.kind, "name": name, "namespace": namespace},
                error_code=Exit.KUBERNETES, call=lambda step: cluster().delete(res, namespace, name))


def pruning(tgt: Target) -> list[tuple[Resource, str]]:
    """What nself applied to this environment before (its labels), for `apply_plan` to prune."""
    return [(res, obj["metadata"]["name"]) for res in PRUNABLE
            for obj in tgt.cluster.list(res, tgt.namespace, tgt.selector)]


def apply(plan: Plan, progress: Callable[[str], None] | None = None) -> dict:
    """Run an `apply_plan`; a failure names what was applied before it."""
    started: list[str] = []

    def starting(step: Step) -> None:
        started.append(f"{step.spec['resource']}/{step.spec['name']}")
        if progress:
            progress(step.summary)
    try:
        plan.run(LocalRunner(), on_step=starting)
    except NselfError as exc:
        before = started[:-1]
        exc.details = [f"applied before the failure ({len(before)}): " + (", ".join(before) or "none"),
                       *exc.details]
        raise
    verbs = [(s.spec["verb"], f"{s.spec['resource']}/{s.spec['name']}") for s in plan.steps]
    return {"applied": [what for verb, what in verbs if verb == "apply"],
            "pruned": [what for verb, what in verbs if verb == "delete"]}


def is_ready(obj: dict) -> bool:
    spec, status = obj.get("spec", {}), obj.get("status", {})
    if status.get("observedGeneration", 0) < obj["metadata"].get("generation", 1):
        return False
    if obj["kind"] == "DaemonSet":
        return status.get("numberReady", 0) >= status.get("desiredNumberScheduled", 1) > 0
    replicas = spec.get("replicas", 1)
    ready = status.get("readyReplicas", 0) >= replicas and status.get("updatedReplicas", replicas) >= replicas
    return ready and (obj["kind"] != "Deployment" or status.get("availableReplicas", 0) >= replicas)


def wait_ready(tgt: Target, names: set[str], timeout: int) -> list[str]:
    """Follow the workloads through the watch API until all are ready, or fail at the timeout."""
    deadline = time.monotonic() + timeout
    pending: dict[str, set[str]] = {}
    for kind in WORKLOADS:
        res = BY_KIND[("apps/v1", kind)]
        items = tgt.cluster.list(res, tgt.namespace, tgt.selector)
        pending[kind] = {o["metadata"]["name"] for o in items if o["metadata"]["name"] in names and not is_ready(o)}
    for kind, waiting in pending.items():
        res = BY_KIND[("apps/v1", kind)]
        while waiting:
            remaining = int(deadline - time.monotonic())
            if remaining <= 0:
                raise NselfError(f"not ready after {timeout}s: " + ", ".join(sorted(waiting)),
                                 code=Exit.TIMEOUT,
                                 hint="look at `nself k8s.status` and `nself k8s.events`; raise --timeout")
            for event in tgt.cluster.watch(res, tgt.namespace, selector=tgt.selector, timeout=remaining):
                obj = event.get("object", {})
                name = obj.get("metadata", {}).get("name")
                if name in waiting and event.get("type") in ("ADDED", "MODIFIED") and is_ready(obj):
                    waiting.discard(name)
                if not waiting:
                    break
    return sorted(names)


def status(tgt: Target, service: str | None = None) -> list[dict]:
    """Per service: desired/ready/updated/available, images, conditions (one list per kind)."""
    rows = []
    for kind, api in (("Deployment", "apps/v1"), ("StatefulSet", "apps/v1"), ("DaemonSet", "apps/v1"),
                      ("Job", "batch/v1"), ("CronJob", "batch/v1")):
        for obj in tgt.cluster.list(BY_KIND[(api, kind)], tgt.namespace, tgt.selector):
            name = obj["metadata"]["name"]
            if service and name != service:
                continue
            st, spec = obj.get("status", {}), obj.get("spec", {})
            template = spec.get("jobTemplate", {}).get("spec", spec).get("template", {})
            rows.append({
                "service": name, "kind": kind,
                "desired": spec.get("replicas", st.get("desiredNumberScheduled", 1 if kind != "CronJob" else 0)),
                "ready": st.get("readyReplicas", st.get("numberReady", st.get("succeeded", 0))),
                "updated": st.get("updatedReplicas", st.get("updatedNumberScheduled", 0)),
                "available": st.get("availableReplicas", st.get("numberAvailable", 0)),
                "images": [c["image"] for c in template.get("spec", {}).get("containers", [])],
                "conditions": {c["type"]: c["status"] for c in st.get("conditions", [])},
                "ready_state": is_ready(obj) if kind in WORKLOADS else None,
            })
    if service and not rows:
        raise NselfError(f"no workload named {service!r} in {tgt.namespace}", code=Exit.KUBERNETES,
                         hint="`nself k8s.status` lists them; was the environment applied?")
    return sorted(rows, key=lambda r: r["service"])


def workload(tgt: Target, service: str) -> tuple:
    for kind in WORKLOADS:
        res = BY_KIND[("apps/v1", kind)]
        items = [o for o in tgt.cluster.list(res, tgt.namespace) if o["metadata"]["name"] == service]
        if items:
            return res, items[0]
    raise NselfError(f"no workload named {service!r} in {tgt.namespace}", code=Exit.KUBERNETES,
                     hint="`nself k8s.status` lists them")


def scale(tgt: Target, service: str, replicas: int, dry_run: bool = False) -> dict:
    if replicas < 0:
        raise NselfError("replicas cannot be negative", code=Exit.USAGE, hint="pass 0 or more")
    res, obj = workload(tgt, service)
    if res.kind == "DaemonSet":
        raise NselfError(f"{service} is a DaemonSet (one pod per node): it does not scale",
                         code=Exit.USAGE, hint="scale the nodes instead")
    tgt.cluster.patch(res, tgt.namespace, service, {"spec": {"replicas": replicas}}, "scale", dry_run=dry_run)
    return {"service": service, "kind": res.kind, "replicas": replicas, "was": obj["spec"].get("replicas", 1)}


def restart(tgt: Target, service: str, now: str) -> dict:
    res, _ = workload(tgt, service)
    tgt.cluster.patch(res, tgt.namespace, service, {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": now}}}}})
    return {"service": service, "restarted": now}


def pause(tgt: Target, service: str, paused: bool) -> dict:
    res, _ = workload(tgt, service)
    if res.kind != "Deployment":
        raise NselfError(f"{service} is a {res.kind}: only Deployments pause", code=Exit.USAGE,
                         hint="pause applies to Deployments")
    tgt.cluster.patch(res, tgt.namespace, service, {"spec": {"paused": paused}})
    return {"service": service, "paused": paused}


def history(tgt: Target, service: str) -> list[dict]:
    res, deployment = workload(tgt, service)
    if res.kind != "Deployment":
        raise NselfError(f"{service} is a {res.kind}: revision history is kept for Deployments",
                         code=Exit.USAGE, hint="use helm.history for chart releases")
    sets = [rs for rs in tgt.cluster.list(BY_KIND[("apps/v1", "ReplicaSet")], tgt.namespace)
            if any(r.get("uid") == deployment["metadata"]["uid"] for r in rs["metadata"].get("ownerReferences", []))]
    rows = [{"revision": int(rs["metadata"].get("annotations", {}).get(REVISION, 0)),
             "replicaset": rs["metadata"]["name"],
             "images": [c["image"] for c in rs["spec"]["template"]["spec"]["containers"]],
             "change": rs["spec"]["template"]["metadata"].get("annotations", {}).get(
                 "kubectl.kubernetes.io/restartedAt", ""),
             "_template": rs["spec"]["template"]} for rs in sets]
    return sorted(rows, key=lambda r: r["revision"])


def rollback(tgt: Target, service: str, revision: int | None = None, dry_run: bool = False) -> dict:
    rows = history(tgt, service)
    current = rows[-1]["revision"] if rows else 0
    if revision is None:
        if len(rows) < 2:
            raise NselfError(f"{service} has no earlier revision to go back to", code=Exit.KUBERNETES,
                             hint="see `nself k8s.rollout.history`")
        chosen = rows[-2]
    else:
        chosen = next((r for r in rows if r["revision"] == revision), None)
        if chosen is None:
            raise NselfError(f"{service} has no revision {revision}", code=Exit.KUBERNETES,
                             hint="revisions: " + ", ".join(str(r["revision"]) for r in rows))
    template = copy.deepcopy(chosen["_template"])
    template["metadata"].get("labels", {}).pop("pod-template-hash", None)
    res = BY_KIND[("apps/v1", "Deployment")]
    # Replace the whole template (a merge would keep annotations the old revision did not have).
    tgt.cluster.patch(res, tgt.namespace, service, [{"op": "replace", "path": "/spec/template",
                                                     "value": template}], dry_run=dry_run)
    return {"service": service, "from": current, "to": chosen["revision"]}


def delete(tgt: Target, dry_run: bool = False) -> list[str]:
    deleted = []
    for res in reversed(PRUNABLE):
        for obj in tgt.cluster.list(res, tgt.namespace, tgt.selector):
            tgt.cluster.delete(res, tgt.namespace, obj["metadata"]["name"], dry_run=dry_run)
            deleted.append(f"{res.kind}/{obj['metadata']['name']}")
    return deleted


def pods(tgt: Target, service: str | None = None, all_namespaces: bool = False) -> list[dict]:
    selector = f"app.kubernetes.io/name={service}" if service else None
    items = tgt.cluster.list(BY_KIND[("v1", "Pod")], None if all_namespaces else tgt.namespace, selector)
    rows = []
    for pod in items:
        st = pod.get("status", {})
        statuses = st.get("containerStatuses", [])
        rows.append({"name": pod["metadata"]["name"], "namespace": pod["metadata"].get("namespace"),
                     "ready": f"{sum(1 for c in statuses if c.get('ready'))}/{len(statuses)}",
                     "status": st.get("phase", "Unknown"),
                     "restarts": sum(c.get("restartCount", 0) for c in statuses),
                     "node": pod.get("spec", {}).get("nodeName", ""), "ip": st.get("podIP", ""),
                     "images": [c["image"] for c in pod.get("spec", {}).get("containers", [])],
                     "created": pod["metadata"].get("creationTimestamp", "")})
    return sorted(rows, key=lambda r: (r["namespace"] or "", r["name"]))


def events(tgt: Target, service: str | None = None) -> list[dict]:
    rows = []
    for event in tgt.cluster.list(BY_KIND[("v1", "Event")], tgt.namespace):
        involved = event.get("involvedObject", {})
        name = involved.get("name", "")
        if service and not (name == service or name.startswith(f"{service}-")):
            continue
        rows.append({"time": event.get("lastTimestamp") or event.get("eventTime") or
                     event["metadata"].get("creationTimestamp", ""),
                     "type": event.get("type", ""), "reason": event.get("reason", ""),
                     "object": f"{involved.get('kind', '')}/{name}", "message": event.get("message", "")})
    return sorted(rows, key=lambda r: r["time"])


def describe(tgt: Target, kind: str, name: str) -> dict:
    from nself.k8s.cluster import resource

    res = resource(kind)
    obj = tgt.cluster.get(res, tgt.namespace if res.namespaced else None, name)
    related = [e for e in events(tgt) if e["object"] == f"{res.kind}/{name}"]
    return {"object": obj, "events": related}


def pod_for(tgt: Target, service: str) -> str:
    """A running pod of the service (the first, by name)."""
    rows = [r for r in pods(tgt, service) if r["status"] == "Running"] or pods(tgt, service)
    if not rows:
        raise NselfError(f"{service} has no pods in {tgt.namespace}", code=Exit.KUBERNETES,
                         hint="`nself k8s.status` shows whether it is deployed and ready")
    return rows[0]["name"]


def log_query(container: str | None = None, tail: int | None = None, previous: bool = False,
              since: str | None = None, follow: bool = False) -> dict[str, str]:
    """The query of GET …/pods/NAME/log (built apart, so tests can check it)."""
    query: dict[str, str] = {}
    if container:
        query["container"] = container
    if tail is not None and tail >= 0:
        query["tailLines"] = str(tail)
    if previous:
        query["previous"] = "true"
    if since:
        query["sinceSeconds"] = str(_seconds(since))
    if follow:
        query["follow"] = "true"
    return query


def _seconds(text: str) -> int:
    from nself.project.build import duration

    try:
        return max(1, int(duration(text, "--since")))
    except NselfError:
        raise NselfError(f"--since {text!r} is not a duration", code=Exit.USAGE,
                         hint="e.g. --since 10m, 1h, 2h30m") from None


def logs(tgt: Target, pod: str, query: dict[str, str]):
    """The log text, or with follow=true a stream of lines (the client's chunked stream)."""
    res = BY_KIND[("v1", "Pod")]
    path = res.path(tgt.namespace, pod, "log")
    if query.get("follow") == "true":
        response = tgt.cluster.request("GET", path, query=query, stream=True)
        return (line.decode(errors="replace") for line in response.stream(1024))
    return tgt.cluster.request_text("GET", path, query=query)


def kubectl_command(tgt_namespace: str, context: str | None, *args: str) -> list[str]:
    """exec, shell and port-forward run through kubectl (its SPDY/websocket streams):
    the command is data, printed by --dry-run and checked by the tests."""
    argv = ["kubectl", "--namespace", tgt_namespace]
    if context:
        argv += ["--context", context]
    return [*argv, *args]
