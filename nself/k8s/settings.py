"""Conversion settings: per-service (`x-nself:` in compose, overridden by
`kubernetes.generate.services.<name>` in nself.yml) and per environment
(the top-level overlays/<env>.yml data, overridden by `environments.<env>`)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from nself.errors import ConfigError
from nself.project.model import Project, Service
from nself.resources import data_dir

PRESETS = {  # the product plan's resource table (§2.2)
    "small": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
    "medium": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    "large": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
}
_ID = ("a user or group id (0 or more)", lambda v: isinstance(v, int) and not isinstance(v, bool)
       and v >= 0)
_ANY = ("", lambda v: True)
# Each per-service setting: (what it takes, check). Unknown keys and wrong types are errors.
SERVICE_SETTINGS = {
    "kind": ("a workload kind", lambda v: isinstance(v, str)),
    "schedule": ("a cron schedule (a string)", lambda v: isinstance(v, str)),
    "ingress": ("true, false or a mapping (host, path, port, class, annotations)",
                lambda v: isinstance(v, (bool, Mapping))),
    "public": ("true or false", lambda v: isinstance(v, bool)),
    "storage": ("a size (5Gi) or a mapping of volume → size", lambda v: isinstance(v, (str, Mapping))),
    "resources": ("small, medium or large", lambda v: v in PRESETS),
    "replicas": ("a whole number (0 or more)", lambda v: isinstance(v, int) and
                 not isinstance(v, bool) and v >= 0),
    "autoscaling": ("true, false or a mapping (min_replicas, max_replicas, target_cpu_utilization)",
                    lambda v: isinstance(v, (bool, Mapping))),
    "component": ("a label value (a string)", lambda v: isinstance(v, str)),
    "wait": _ANY, "network_policy": _ANY,
    "access_mode": ("ReadWriteOnce or ReadWriteMany", lambda v: v in ("ReadWriteOnce", "ReadWriteMany")),
    "run_as_user": _ID, "run_as_group": _ID, "fs_group": _ID,
}
SERVICE_KEYS = set(SERVICE_SETTINGS)


def service_settings(project: Project, svc: Service) -> dict[str, Any]:
    generate = project.settings.section("kubernetes", "generate") or {}
    for where, given in (("x-nself", svc.nself),
                         ("kubernetes.generate.services", (generate.get("services") or {}).get(svc.name))):
        if given is not None and not isinstance(given, Mapping):
            raise ConfigError(f"service {svc.name!r}: {where} must be a mapping of settings, "
                              f"not {given!r}", hint="write settings as `key: value` lines under it")
    own = dict(svc.nself)
    own.update((generate.get("services") or {}).get(svc.name) or {})
    for key, value in own.items():
        what, check = SERVICE_SETTINGS.get(key, _ANY)
        if not check(value):
            raise ConfigError(f"service {svc.name!r}: x-nself/nself.yml setting {key}: expected "
                              f"{what}, got {value!r}", hint="fix the value in x-nself or nself.yml")
    unknown = set(own) - SERVICE_KEYS
    if unknown:
        raise ConfigError(f"service {svc.name!r}: unknown x-nself/nself.yml setting(s) "
                          + ", ".join(sorted(unknown)),
                          hint="known settings: " + ", ".join(sorted(SERVICE_KEYS)))
    if "resources" not in own and svc.name in (generate.get("resources") or {}):
        own["resources"] = generate["resources"][svc.name]
    if "replicas" not in own and svc.name in (generate.get("replicas") or {}):
        own["replicas"] = generate["replicas"][svc.name]
    return own


@dataclass(frozen=True)
class Overlay:
    """What an environment changes: scale, resources, ingress, HPA, PDB, tag policy."""

    env: str
    replicas: int | None = None
    resources: str | None = None
    ingress: Mapping[str, Any] = field(default_factory=lambda: {"enabled": True, "tls": False})
    autoscaling: Mapping[str, Any] = field(default_factory=lambda: {"enabled": False})
    pod_disruption_budget: Mapping[str, Any] = field(default_factory=dict)   # on when replicas > 1
    image_tag_policy: str = "compose"
    images: Mapping[str, str] = field(default_factory=dict)   # repository → tag for this env


BASE = Overlay(env="base")
_OVERLAY_KEYS = ("replicas", "resources", "ingress", "autoscaling", "pod_disruption_budget",
                 "image_tag_policy", "images")


def load_overlay(project: Project, env: str) -> Overlay:
    """overlays/<env>.yml (local.yml for environments nself does not ship) + nself.yml."""
    folder = data_dir("overlays")
    path = folder / f"{env}.yml"
    data = yaml.safe_load((path if path.is_file() else folder / "local.yml").read_text()) or {}
    target = project.settings.env_target(env)
    for key in _OVERLAY_KEYS:
        if key in target:
            value = target[key]
            data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    if data.get("resources") and data["resources"] not in PRESETS:
        raise ConfigError(f"environment {env!r}: unknown resource preset {data['resources']!r}",
                          hint="use small, medium or large")
    return Overlay(env=env, **{k: data[k] for k in _OVERLAY_KEYS if k in data})
