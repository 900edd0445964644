"""Rendering helpers shared by the chart tests: run a tool, render a chart as `helm.install`
would, and drop what legitimately differs between Helm and kustomize output."""
import json
import shutil
import subprocess

import yaml

from nself.helm.operations import secret_values

HELM = shutil.which("helm")


def run(*argv, stdin=None):
    out = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def helm_render(project, chart, env):
    values = ["--values", str(chart / "values.yaml"), "--values", str(chart / f"values-{env}.yaml")]
    stdin = secret_values(project)
    argv = [HELM, "template", "rel", str(chart), "--namespace", project.namespace, *values]
    if stdin:
        argv += ["--values", "-"]
    return [d for d in yaml.safe_load_all(run(*argv, stdin=stdin)) if d]


def normalise(doc):
    """Drop what legitimately differs: labels (the release is the instance) and selectors."""
    doc = json.loads(json.dumps(doc))
    doc["metadata"].pop("labels", None)
    spec = doc.get("spec", {})
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Service", "PodDisruptionBudget"):
        spec.pop("selector", None)
    for template in (spec.get("template"), spec.get("jobTemplate", {}).get("spec", {}).get("template")):
        if template:
            template["metadata"].pop("labels", None)
            # Both renderers hash the ConfigMaps the pod reads, each its own text: present in
            # both or in neither (the test compares which), values differ by design.
            annotations = template["metadata"].get("annotations", {})
            if "checksum/config" in annotations:
                annotations["checksum/config"] = "present"
            for tsc in template["spec"].get("topologySpreadConstraints", []):
                tsc.pop("labelSelector", None)
    return doc
