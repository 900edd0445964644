"""What a deploy to Kubernetes sends, built as data (pure: no cluster, no process, no clock).

- kustomize: the environment's overlay objects from the in-memory `k8s.generate` pipeline
  (`nself.k8s.operations.render(..., in_memory=True)`), each service's container image pinned
  to the release's reference (by digest when the build recorded one), then one server-side
  apply step per object (Secrets from the env files, their bodies in the step's hidden
  `data`), one wait step (the watch API), and one step saving the release's pod templates in
  the history ConfigMap (what `deploy.rollback --to` puts back).
- helm: one `helm upgrade --install … --wait` step with `--set services.<svc>.image.*` for the
  release's images and the secret values on stdin (`--values -`).

k8s steps run `on` the cluster; their `spec` is {verb, kind, name, namespace, …}: the runner in
nself.deploy.kube executes a plan from this data alone.
"""
from __future__ import annotations

import base64
import copy
import gzip
import json
from collections.abc import Mapping

from nself.errors import ConfigError, Exit
from nself.plan import CLUSTER, Plan, Step, run

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


def k8s_step(summary: str, verb: str, kind: str, name: str, namespace: str, *, data: str | None = None,
             **spec) -> Step:
    return Step(summary, "k8s", on=CLUSTER, spec={"verb": verb, "kind": kind, "name": name,
                                                  "namespace": namespace, **spec},
                data=data, error_code=Exit.KUBERNETES)


def apply_plan(target, release: str, objects: list[dict], secrets: list[dict], timeout: float) -> Plan:
    """Apply `objects` (Namespace first) and `secrets`, wait, save the templates for rollback."""
    ns = target.namespace
    steps = [k8s_step(f"apply {key(o)}", "apply", o["kind"], o["metadata"]["name"], ns, body=o)
             for o in objects[:1]]
    steps += [k8s_step(f"apply Secret/{s['metadata']['name']} from the env files", "apply", "Secret",
                       s["metadata"]["name"], ns, data=json.dumps(s)) for s in secrets]
    steps += [k8s_step(f"apply {key(o)}", "apply", o["kind"], o["metadata"]["name"], ns, body=o)
              for o in objects[1:]]
    found = templates(objects)
    steps.append(wait_step(found, ns, timeout))
    history = HISTORY.format(project=target.project)
    steps.append(k8s_step(f"save the pod templates of release {release} (for deploy.rollback)", "patch",
                          "ConfigMap", history, ns, create=True,
                          body={"binaryData": {templates_key(release): encode_templates(found)}}))
    return Plan(f"deploy release {release} to {target.describe()}", steps)


def wait_step(workloads: Mapping[str, dict], namespace: str, timeout: float) -> Step:
    """Wait (the watch API) until the workloads `Kind/name` are ready, at most `timeout` seconds."""
    names = sorted({k.split("/", 1)[1] for k in workloads})
    return k8s_step(f"wait until {len(names)} workloads are ready (at most {timeout:g}s)", "wait",
                    ",".join(WORKLOADS), "", namespace, names=names, timeout=timeout)


def restore_plan(target, release: str, found: Mapping[str, dict], timeout: float) -> Plan:
    """Put saved pod templates back (a JSON patch replacing each `spec.template`), then wait."""
    ns = target.namespace
    steps = []
    for name_key, template in sorted(found.items()):
        kind, name = name_key.split("/", 1)
        steps.append(k8s_step(f"put back the pod template of {name_key} from release {release}", "patch",
                              kind, name, ns, body=[{"op": "replace", "path": "/spec/template",
                                                     "value": template}]))
    steps.append(wait_step(found, ns, timeout))
    return Plan(f"roll {target.env} back to release {release}", steps)


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
    from nself.helm.binary import Helm

    command = Helm("helm").install(chart.release, chart.chart_arg, chart.namespace, chart.values, sets, secret,
                                   wait=True, timeout=int(timeout), upgrade=True, context=chart.context)
    return run(f"{command.summary} (release {release})", *command.argv, *_kubeconfig(kubeconfig),
               data=command.stdin, timeout=timeout + 60, error_code=Exit.KUBERNETES)


def helm_rollback(chart, kubeconfig: str | None = None) -> Step:
    """`helm rollback RELEASE --wait`: the previous revision, when an upgrade timed out."""
    from nself.helm.binary import Helm

    command = Helm("helm").rollback(chart.release, chart.namespace, context=chart.context)
    return run(command.summary, *command.argv, *_kubeconfig(kubeconfig), error_code=Exit.KUBERNETES, timeout=600)


def _kubeconfig(path: str | None) -> list[str]:
    return ["--kubeconfig", path] if path else []
