"""nself.yml: nself's own sections, validated with file, key path and line.

The same file is Invoke's project configuration, so Invoke's keys (`run`,
`sudo`, `tasks`, …) and each collection's defaults (`k8s:`, `helm:`, …) are
valid too. Any other top-level key is an error with a "did you mean".
"""
from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from nself.errors import ConfigError
from nself.project import SETTINGS_FILES, validcache, yamlio


INVOKE_KEYS = ("run", "runners", "sudo", "tasks", "timeouts")
COLLECTIONS = ("blueprint", "ci", "cloud", "config", "db", "deploy", "k8s", "monitor", "service", "sync")

_STR = {"type": "string"}
_STRS = {"type": "array", "items": _STR}
_NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]*$"}
_PRESET = {"enum": ["small", "medium", "large"]}

_DATABASE = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "via": {"enum": ["exec", "direct", "kubectl"]}, "service": _STR, "container": _STR, "server": _STR,
        "host": _STR, "port": {"type": "integer", "minimum": 1, "maximum": 65535}, "name": _STR,
        "user": _STR, "password_env": _STR, "url_env": _STR, "state": {"type": "string", "pattern": "^/"},
        "keep": {"type": "integer", "minimum": 1},
    },
}
_ENV_TARGET = {
    "type": ["object", "null"], "additionalProperties": False,
    "properties": {
        "namespace": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "context": _STR, "kubeconfig": _STR, "pass_env": _STRS, "provider": _STR,
        "domain": _STR, "hosts": _STRS, "roles": _STRS, "values": {"type": "object"},
        "overlay": _STR, "description": _STR,
        # overlay data (see overlays/*.yml), overriding nself's defaults for this environment
        "replicas": {"type": "integer", "minimum": 0}, "resources": _PRESET,
        "ingress": {"type": "object"}, "autoscaling": {"type": "object"},
        "pod_disruption_budget": {"type": "object"},
        "image_tag_policy": {"enum": ["compose", "pinned"]},
        "images": {"type": "object", "additionalProperties": {"type": "string"}},
        # deploy target (docs/deploy.md): ssh hosts running compose, or a Kubernetes cluster
        "target": {"enum": ["ssh", "k8s"]}, "runtime": {"enum": ["podman", "docker"]},
        "path": {"type": "string", "pattern": "^/"}, "router": {"enum": ["nginx", "none"]},
        "via": {"enum": ["kustomize", "helm"]},
        "strategy": {"enum": ["rolling", "canary", "blue-green"]},
        # where sync finds the environment's database (docs/sync.md)
        "database": _DATABASE,
    },
}
_HOOKS = {"type": "array", "items": {"type": "string"}}


def _auto_entry(**extra) -> dict:
    """One sync.auto entry (docs/sync.md "sync.auto"): source, target, schedule and its options."""
    return {"type": "object", "additionalProperties": False, "required": ["source", "target"],
            "properties": {"source": _STR, "target": _STR, "schedule": _STR, **extra}}


_BOOL = {"type": "boolean"}
_AUTO = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "db": _auto_entry(anonymize=_BOOL, tables=_STRS, exclude_table_data=_STRS, keep_extra=_BOOL,
                          jobs={"type": "integer", "minimum": 1}),
        "files": _auto_entry(paths=_STRS, exclude=_STRS, delete=_BOOL),
        "config": _auto_entry(include_secrets=_BOOL),
        "command": _STR, "scheduler": {"enum": ["cron", "systemd"]},
        "workdir": {"type": "object", "additionalProperties": _STR},
    },
}
_DURATION = {"type": ["string", "integer"], "pattern": "^[0-9]+(s|m|h)?$", "minimum": 0}
_CANARY = {  # docs/deploy.md "Canary"; the steps are Argo Rollouts' weight/pause/analysis
    "type": "object", "additionalProperties": False,
    "properties": {
        "auto": {"type": "boolean"},
        "steps": {"type": "array", "minItems": 1, "items": {
            "type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
            "properties": {"weight": {"type": "integer", "minimum": 1, "maximum": 100},
                           "pause": {"oneOf": [_DURATION, {"type": "object", "maxProperties": 0}]},
                           "analysis": {"type": "string"}}}},
        "analysis": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": False,
            "properties": {"success_rate": {"type": "number", "minimum": 0, "maximum": 1},
                           "p95": {"type": "number", "exclusiveMinimum": 0},
                           "min_requests": {"type": "integer", "minimum": 1},
                           "window": {"type": "number", "exclusiveMinimum": 0},
                           "interval": {"type": "number", "exclusiveMinimum": 0},
                           "prometheus": {"type": "string"}, "requests_query": {"type": "string"},
                           "p95_query": {"type": "string"}}}},
    },
}
SCHEMA: dict = {
    "type": "object",
    "properties": {
        "version": {"type": ["string", "integer"], "enum": ["1", 1]},
        "project": {"type": "object", "additionalProperties": False,
                    "properties": {"name": _NAME, "description": _STR}},
        "environments": {
            "type": "object",
            "properties": {"default": _STR},
            "propertyNames": {"pattern": "^[a-z][a-z0-9-]{0,30}$"},
            "additionalProperties": _ENV_TARGET,
        },
        "kubernetes": {
            "type": "object", "additionalProperties": False,
            "properties": {"generate": {
                "type": "object", "additionalProperties": False,
                "properties": {
                    "namespace": _ENV_TARGET["properties"]["namespace"], "output": _STR, "ingress": _STR,
                    "storage_class": _STR,
                    "image_pull_secrets": _STRS, "domain": _STR, "network_policies": {"type": "boolean"},
                    "storage_size": _STR,
                    "replicas": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
                    "resources": {"type": "object", "additionalProperties": _PRESET},
                    "services": {"type": "object", "additionalProperties": {"type": "object"}},
                }}},
        },
        "helm": {
            "type": "object", "additionalProperties": False,
            "properties": {"chart": {"type": "object", "additionalProperties": False,
                                     "properties": {"name": _NAME, "version": _STR,
                                                    "appVersion": _STR, "registry": _STR,
                                                    "description": _STR}},
                           "release": _STR, "registry": _STR},
        },
        "providers": {"type": "object", "additionalProperties": _STR},
        "sync": {
            "type": "object", "additionalProperties": False,
            "properties": {"exclude": _STRS, "auto": _AUTO,
                           "anonymize": {"type": "object"},
                           "files": {"type": "object", "additionalProperties": False,
                                     "properties": {"paths": _STRS, "keep": {"type": "integer", "minimum": 1},
                                                    "root": {"type": "object",
                                                             "additionalProperties": _STR}}}},
        },
        "deploy": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "hooks": {"type": "object", "additionalProperties": False,
                          "properties": {k: _HOOKS for k in ("pre-deploy", "post-deploy",
                                                             "on-rollback", "on-failure")}},
                "strategy": {"enum": ["rolling", "canary", "blue-green"]},
                "canary": _CANARY,
                "keep_releases": {"type": "integer", "minimum": 1},
                "registry": _STR, "timeout": {"type": "integer", "minimum": 1},
                "blue_green_keep": {"type": "integer", "minimum": 0},
                "webhook_secret_env": _STR,
            },
        },
        "servers": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["host"],
            "properties": {"host": _STR, "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                           "user": _STR, "key": _STR, "roles": _STRS, "jump": _STR}}},
        # Invoke's keys and the collections' defaults; `deploy` and `sync` are nself's sections above
        **{k: {"type": "object"} for k in (*INVOKE_KEYS, *COLLECTIONS) if k not in ("deploy", "sync")},
    },
}
TOP_KEYS = tuple(SCHEMA["properties"])
# Settings with one home: each key path here was a second one, read by nothing (or by
# Invoke alone), and is an error that names the home (issue 21 kind 11).
MOVED = {
    ("k8s", "output"): "kubernetes.generate.output (or --output for one run)",
    ("k8s", "namespace"): "environments.<env>.namespace, or kubernetes.generate.namespace for "
                          "every environment (or --namespace for one run)",
}
MOVED_VARIABLES = {"NSELF_" + "_".join(path).upper(): home for path, home in MOVED.items()
                   if path[0] == "k8s"}


@dataclass(frozen=True)
class Settings:
    """The validated nself.yml (empty when the project has none)."""

    data: Mapping[str, Any]
    path: Path | None = None

    def section(self, *keys: str) -> Any:
        node: Any = self.data
        for key in keys:
            node = node.get(key) if isinstance(node, Mapping) else None
        return node

    def environments(self) -> dict[str, dict]:
        envs = self.data.get("environments") or {}
        return {k: (v or {}) for k, v in envs.items() if k != "default"}

    def env_target(self, env: str) -> dict:
        from nself.project.envfiles import ALIASES

        envs = self.environments()
        for name, target in envs.items():
            if ALIASES.get(name, name) == env:
                return target
        return {}


def find(root: Path) -> Path | None:
    return next((root / n for n in SETTINGS_FILES if (root / n).is_file()), None)


@functools.cache
def _validator():
    import jsonschema

    return jsonschema.Draft7Validator(SCHEMA)


def load(root: Path) -> Settings:
    path = find(root)
    if path is None:
        return Settings(MappingProxyType({}))
    data, text = yamlio.load(path, "nself.yml")
    return Settings(MappingProxyType(validate(data, path, text)), path)


def validate(data: Any, path: Path, text: str) -> dict:
    if data is None:
        return {}
    problems = _top_level_problems(data, path, text) + _moved(data, path, text)
    digest = validcache.key("settings", _schema_fingerprint(), data)
    if not problems and validcache.known("settings", digest):
        return data
    for error in sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.path))):
        keys = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = list(error.schema.get("properties", {}))
            for extra in sorted(set(error.instance) - set(known)):
                guess = difflib.get_close_matches(str(extra), known, n=1)
                dotted = ".".join(map(str, [*keys, extra]))
                problems.append(f"{path.name}:{yamlio.line_of(text, [*keys, extra])}: "
                                f"unknown key {dotted!r}" +
                                (f" (did you mean {guess[0]!r}?)" if guess else ""))
            continue
        dotted = ".".join(map(str, keys)) or "(top level)"
        problems.append(f"{path.name}:{yamlio.line_of(text, keys)}: {dotted}: {_message(error)}")
    if problems:
        raise ConfigError(f"{path}: invalid nself.yml", details=problems,
                          hint="fix the keys above; the reference is docs/configuration.md")
    validcache.remember("settings", digest)
    return data


@functools.cache
def _schema_fingerprint() -> str:
    """The schema as text, hashed: the settings schema is code, and changes within a version."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(SCHEMA, sort_keys=True, default=str).encode()).hexdigest()


def _top_level_problems(data: Any, path: Path, text: str) -> list[str]:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: nself.yml must be a mapping of sections",
                          hint="start with keys such as `project:` or `environments:`")
    problems = []
    for key in data:
        if key in TOP_KEYS or str(key).startswith("x-"):
            continue
        guess = difflib.get_close_matches(str(key), TOP_KEYS, n=1)
        problems.append(f"{path.name}:{yamlio.line_of(text, [key])}: unknown key {key!r}" +
                        (f" (did you mean {guess[0]!r}?)" if guess else ""))
    return problems


def _moved(data: dict, path: Path, text: str) -> list[str]:
    problems = []
    for keys, home in MOVED.items():
        node: Any = data
        for key in keys:
            node = node.get(key) if isinstance(node, Mapping) else None
        if node is not None:
            problems.append(f"{path.name}:{yamlio.line_of(text, list(keys))}: {'.'.join(keys)} is "
                            f"not a setting: set {home}")
    return problems


def moved_variables(environ: Mapping[str, str]) -> None:
    """`NSELF_K8S_OUTPUT` and the like: Invoke would ignore them silently (their key is gone)."""
    found = sorted(name for name in MOVED_VARIABLES if environ.get(name))
    if found:
        raise ConfigError(f"${found[0]} is not a setting", details=[
            f"{name}: set {MOVED_VARIABLES[name]}" for name in found],
            hint="unset it and use the setting named above")


def check_defaults(data: Any, defaults: Mapping, path: Path, text: str) -> None:
    """Invoke merges nself.yml over its own defaults and the collections' before any task
    runs, so a value whose type differs from its default's (`run: 5`, `tasks: 5`,
    `k8s: {output: [1, 2]}`) would break every command, `--list` included: refuse it first."""
    problems: list[str] = []

    def walk(value: Any, default: Any, keys: list) -> None:
        where = f"{path.name}:{yamlio.line_of(text, keys)}: {'.'.join(map(str, keys))}"
        if isinstance(default, Mapping):
            if not isinstance(value, Mapping):
                problems.append(f"{where}: expected a mapping, got {value!r}")
                return
            for key in value:
                if key in default:
                    walk(value[key], default[key], [*keys, key])
        elif value is not None and default is not None and _kind(value) != _kind(default):
            problems.append(f"{where}: expected {_kind(default)}, got {value!r}")

    if isinstance(data, Mapping):
        for key in data:
            if key in defaults:
                walk(data[key], defaults[key], [key])
    if problems:
        raise ConfigError(f"{path}: invalid nself.yml", details=problems,
                          hint="give these keys values of the type shown; the reference is "
                               "docs/configuration.md")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, (list, tuple)) else type(value).__name__


def _message(error) -> str:
    if error.validator == "type":
        return f"expected {error.validator_value}, got {error.instance!r}"
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "pattern":
        return f"{error.instance!r} is not a valid name (lowercase letters, digits, '-')"
    return error.message
