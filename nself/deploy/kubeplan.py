"""What a deploy to Kubernetes sends, built as data (pure: no cluster, no process, no clock).

- kustomize: the environment's overlay objects from the in-memory `k8s.generate` pipeline
  (`nself.k8s.operations.render(..., in_memory=True)`), each service's container image pinned
  to the release's reference (by digest when the build recorded one), then one server-side
  apply step per object (Secrets from the env files, their bodies in the step's hidden
  `data`), one wait step (the watch API), and one step saving the release's pod templates in
  the history ConfigMap (what `deploy.rollback --to` puts back).
- helm: one `helm upgrade --install … --wait` step with `--set services.<svc>.image.*` for the
  release's images and the secret values on stdin (`--values -`).

k8s steps run `on` the cluster: their `spec` is {verb, kind, name, namespace, …} (what --dry-run
shows), their `call` sends it through a `Client`, whose cluster opens only when a step runs.
"""
from __future__ import annotations

import base64
import copy
import gzip
import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Protocol

from nself.errors import ConfigError, Exit
from nself.plan import CLUSTER, Plan, Step

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
HISTORY = "{project}-deploy-history"     # ConfigMap: one JSON line per deploy + saved templates
LOCK = "{project}-deploy-lock"           # Lease


def templates_key(release: str) -> str:
    """The history ConfigMap's binaryData key holding a release's pod templates."""
    return f"{release}.templates.json.gz"


def desired(project, namespace: str, images: Mapping[str, str]) -> list[dict]:
    """The environment's objects (Namespace first, no Secrets) with the release's images."""
    from nself.k8s.operations import render

    return pin(render(project, namespace, in_memory=True), project, images)


def pin(objects: list[dict], project, images: Mapping[str, str]) -> list[dict]:
    """`objects` with every container named after a service running the release's image of
    that service. Raises ConfigError for an image of a service the project does not have."""
    unknown = sorted(set(images) - set(project.services))
    if unknown:
        raise ConfigError(f"the release has images for services this project does not have: {', '.join(unknown)}",
                          hint="build the release from this source (`nself deploy.build`), or fix "
                               ".nself/state/images/<release>.json")
    by_container = {project.services[name].object_name: ref for name, ref in images.items()}
    out = []
    for obj in objects:
        pod = pod_template(obj)
        if pod is not None and any(c["name"] in by_container for c in pod["spec"]["containers"]):
            obj = copy.deepcopy(obj)
            for container in pod_template(obj)["spec"]["containers"]:
                container["image"] = by_container.get(container["name"], container["image"])
        out.append(obj)
    return out


def pod_template(obj: dict) -> dict | None:
    """The pod template of a workload, Job or CronJob; None for other kinds."""
    spec = obj.get("spec") or {}
    if obj["kind"] == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template")
    return spec.get("template") if obj["kind"] in (*WORKLOADS, "Job") else None


def key(obj: dict) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def templates(objects: list[dict]) -> dict[str, dict]:
    """`Kind/name` → pod template of every Deployment, StatefulSet and DaemonSet."""
    return {key(o): o["spec"]["template"] for o in objects if o["kind"] in WORKLOADS}


def encode_templates(found: Mapping[str, dict]) -> str:
    """Templates as base64 of gzip'd JSON (binaryData; the stack's 24 fit in a few KiB)."""
    raw = json.dumps(found, sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(gzip.compress(raw, mtime=0)).decode()


def decode_templates(data: str) -> dict[str, dict]:
    return json.loads(gzip.decompress(base64.b64decode(data)))


class Client(Protocol):
    """What the steps' `call`s use (nself.deploy.kube.KubeClient; the cluster opens on first use)."""

    def apply(self, obj: dict) -> dict: ...
    def patch(self, kind: str, name: str, body: dict | list) -> dict: ...
    def wait(self, names: list[str], timeout: float) -> list[str]: ...
    def save_templates(self, release: str, encoded: str) -> None: ...


def k8s_step(summary: str, verb: str, kind: str, name: str, namespace: str, call: Callable, *,
             data: str | None = None, **spec) -> Step:
    return Step(summary, "k8s", on=CLUSTER, spec={"verb": verb, "resource": kind, "name": name,
                                                  "namespace": namespace, **spec},
                data=data, error_code=Exit.KUBERNETES, call=call)


def apply_step(obj: dict, namespace: str, client: Client) -> Step:
    """Server-side apply of one object; a Secret's body is hidden data (shown by size only)."""
    if obj["kind"] == "Secret":
        return k8s_step(f"apply {key(obj)} from the env files", "apply", "Secret", obj["metadata"]["name"],
                        namespace, lambda step: client.apply(obj), data=json.dumps(obj))
    return k8s_step(f"apply {key(obj)}", "apply", obj["kind"], obj["metadata"]["name"], namespace,
                    lambda step: client.apply(obj), body=obj)


def apply_plan(target, release: str, objects: list[dict], secrets: list[dict], timeout: float,
               client: Client) -> Plan:
    """Apply `objects` (Namespace first, then `secrets`, then the rest), wait, save the pod
    templates of the release for deploy.rollback."""
    ns = target.namespace
    steps = [apply_step(obj, ns, client) for obj in [*objects[:1], *secrets, *objects[1:]]]
    found = templates(objects)
    encoded = encode_templates(found)
    steps.append(wait_step(found, ns, timeout, client))
    steps.append(k8s_step(f"save the pod templates of release {release} (for deploy.rollback)", "patch",
                          "ConfigMap", HISTORY.format(project=target.project), ns,
                          lambda step: client.save_templates(release, encoded),
                          body={"binaryData": {templates_key(release): encoded}}))
    return Plan(f"deploy release {release} to {target.describe()}", steps)


def wait_step(workloads: Mapping[str, dict], namespace: str, timeout: float, client: Client) -> Step:
    """Wait (the watch API) until the workloads `Kind/name` are ready, at most `timeout` seconds."""
    names = sorted({k.split("/", 1)[1] for k in workloads})
    return k8s_step(f"wait until {len(names)} workloads are ready (at most {timeout:g}s)", "wait",
                    ",".join(WORKLOADS), "", namespace, lambda step: client.wait(names, timeout),
                    names=names, timeout=timeout)


def restore_plan(target, release: str, found: Mapping[str, dict], client: Client,
                 timeout: float | None = None) -> Plan:
    """Put pod templates back (a JSON patch replacing each `spec.template`, so no field of the
    newer one survives); then, with a `timeout`, wait for the rollout."""
    ns = target.namespace
    steps = []
    for name_key, template in sorted(found.items()):
        kind, name = name_key.split("/", 1)
        body = [{"op": "replace", "path": "/spec/template", "value": template}]
        steps.append(k8s_step(f"put back the pod template of {name_key} ({release})", "patch", kind, name, ns,
                              lambda step, kind=kind, name=name, body=body: client.patch(kind, name, body),
                              body=body))
    if timeout is not None:
        steps.append(wait_step(found, ns, timeout, client))
    return Plan(f"put the pod templates of {release} back in {target.env}", steps)


# -- helm ------------------------------------------------------------------------------------------
def image_sets(project, images: Mapping[str, str], chart_services: set[str]) -> list[str]:
    """`--set` values pinning each service's image in nself's chart (services.<svc>.image.*)."""
    from nself.helm.values import split_image

    sets = []
    for name, ref in sorted(images.items()):
        svc = project.services.get(name)
        if svc is None or svc.object_name not in chart_services:
            raise ConfigError(f"the release has an image for {name!r}, which the chart has no values for",
                              hint="regenerate the chart (`nself helm.init --force`) or rebuild the release")
        parts = split_image(ref)
        prefix = f"services.{svc.object_name}.image"
        sets += [f"{prefix}.repository={parts['repository']}", f"{prefix}.tag={parts['tag']}",
                 f"{prefix}.digest={parts.get('digest', '')}"]
    return sets


def helm_upgrade(chart, release: str, sets: list[str], secret: str | None, timeout: float,
                 kubeconfig: str | None = None) -> Step:
    """`helm upgrade --install RELEASE CHART … --wait --timeout Ns` (`chart`: helm.operations.Target),
    the secret values on stdin; helm's own deadline, plus a minute for this step's."""
    from nself.helm import binary

    step = binary.install(chart.release, chart.chart_arg, chart.namespace, chart.values, sets, secret,
                          wait=True, timeout=int(timeout), upgrade=True, context=chart.context)
    return replace(step, summary=f"{step.summary} (release {release})",
                   argv=(*step.argv, *_kubeconfig(kubeconfig)), timeout=timeout + 60, error_code=Exit.KUBERNETES)


def helm_template(chart, sets: list[str], secret: str | None) -> Step:
    """`helm template` with the same values as `helm_upgrade` (what deploy.preview compares)."""
    from nself.helm import binary

    step = binary.template(chart.release, chart.chart_arg, chart.namespace, chart.values, sets, secret)
    return replace(step, error_code=Exit.CONFIG, timeout=120)


def helm_rollback(chart, kubeconfig: str | None = None) -> Step:
    """`helm rollback RELEASE --wait`: the previous revision, when an upgrade timed out."""
    from nself.helm import binary

    step = binary.rollback(chart.release, chart.namespace, context=chart.context)
    return replace(step, argv=(*step.argv, *_kubeconfig(kubeconfig)), error_code=Exit.KUBERNETES, timeout=600)


def _kubeconfig(path: str | None) -> list[str]:
    return ["--kubeconfig", path] if path else []
