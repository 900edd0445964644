"""A service's environment → a ConfigMap (plain values) and a Secret (secret values)."""
from __future__ import annotations

import re

from nself.k8s.objects import SOURCE_ANNOTATION, labels, obj
from nself.project.model import Project, Service
from nself.project.warnings import Warning

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def env_objects(project: Project, svc: Service, warnings: list[Warning],
                include_secrets: bool) -> tuple[dict | None, dict | None, dict]:
    """(ConfigMap, Secret, container env fields). The Secret carries values only
    with `include_secrets`; otherwise it is a template that `k8s.apply` fills."""
    plain, secret = {}, {}
    for key, value in sorted(svc.environment.items()):
        if not _ENV_NAME.match(key):
            warnings.append(Warning("env-name", svc.name, f"environment.{key}",
                                    "not a valid Kubernetes variable name; left out"))
            continue
        (secret if key in svc.secret_env else plain)[key] = value
    lbls = labels(project.name, svc.object_name)
    container: dict = {}
    configmap = secret_obj = None
    if plain:
        configmap = obj("v1", "ConfigMap", f"{svc.object_name}-env", lbls, data=plain)
        container["envFrom"] = [{"configMapRef": {"name": configmap["metadata"]["name"]}}]
    if secret:
        name = f"{svc.object_name}-secrets"
        values = secret if include_secrets else {k: "" for k in secret}
        secret_obj = obj("v1", "Secret", name, lbls,
                         annotations={SOURCE_ANNOTATION: f"environment of service {svc.name}"},
                         type="Opaque", stringData=values)
        container["env"] = [{"name": k, "valueFrom": {"secretKeyRef": {"name": name, "key": k}}}
                            for k in secret]
    return configmap, secret_obj, container
