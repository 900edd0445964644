"""`helm.init --from-k8s DIR`: a chart from manifests that already exist (a kustomize
folder or plain YAML files), through the same templating as the compose path."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from nself.errors import ConfigError, Exit, NselfError
from nself.generated import write_tree
from nself.helm.chart import chart_files
from nself.helm.init import chart_name
from nself.helm.values import WORKLOADS
from nself.k8s.convert import Manifests
from nself.k8s.kustomize import Environment
from nself.project.model import Project

_GROUPED = (*WORKLOADS, "Service", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget")


def load_manifests(folder: Path) -> list[dict]:
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder", hint="pass the folder holding the manifests")
    if (folder / "kustomization.yaml").is_file() or (folder / "kustomization.yml").is_file():
        kubectl = shutil.which("kubectl")
        if not kubectl:
            raise NselfError("kubectl is needed to render a kustomize folder", code=Exit.NOT_FOUND,
                             hint="install kubectl, or point --from-k8s at plain manifests")
        out = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True,
                             timeout=120)
        if out.returncode:
            raise ConfigError(f"kubectl kustomize {folder} failed: {out.stderr.strip()}",
                              hint="fix the kustomization")
        texts = [out.stdout]
    else:
        texts = [p.read_text() for p in sorted(folder.rglob("*")) if p.suffix in (".yaml", ".yml")]
    docs = []
    for text in texts:
        try:
            docs += [d for d in yaml.safe_load_all(text) if isinstance(d, dict) and d.get("kind")]
        except yaml.YAMLError as exc:
            raise ConfigError(f"a manifest in {folder} is not valid YAML: {exc}",
                              hint="fix the file") from None
    if not docs:
        raise ConfigError(f"no Kubernetes objects in {folder}", hint="point at the manifests folder")
    return docs


def to_manifests(docs: list[dict]) -> Manifests:
    out = Manifests()
    workloads = {_group(d) for d in docs if d["kind"] in WORKLOADS}
    for doc in docs:
        meta = {k: v for k, v in doc["metadata"].items() if k not in ("namespace", "uid",
                                                                      "resourceVersion",
                                                                      "creationTimestamp")}
        doc = {**doc, "metadata": meta}
        if doc["kind"] == "Secret":
            data = {**doc.get("data", {}), **doc.get("stringData", {})}
            out.secrets.append({**{k: v for k, v in doc.items() if k not in ("data", "stringData")},
                                "stringData": {k: "" for k in data}})
            continue
        group = _group(doc)
        env_map = doc["kind"] == "ConfigMap" and doc["metadata"]["name"].removesuffix("-env") in workloads
        if doc["kind"] in _GROUPED and group in workloads:
            out.objects.append((group, doc))
        elif env_map:
            out.objects.append((doc["metadata"]["name"].removesuffix("-env"), doc))
        else:
            out.objects.append(("", doc))
    return out


def _group(doc: dict) -> str:
    return doc["metadata"].get("labels", {}).get("app.kubernetes.io/name") or doc["metadata"]["name"]


def init_from_manifests(project: Project, folder: Path, *, name: str | None, output: str,
                        force: bool) -> dict:
    from nself.blueprints import render

    chart = chart_name(project, name)
    manifests = to_manifests(load_manifests(folder))
    reference = Environment(project.env, project.namespace, manifests)
    files = chart_files(chart, "0.1.0", "0.1.0", f"{chart}, from the manifests in {folder.name}",
                        reference, [])
    for rel, data in render("helm", {"name": chart}).items():
        files[rel] = data.replace(b"<CHARTNAME>", chart.encode())
    target = project.root / output / chart
    changes = write_tree(target, dict(sorted(files.items())), force=force)
    return {"chart": chart, "output": str(target), "files": len(files), **changes, "warnings": []}
