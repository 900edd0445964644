"""Plain-data views of a project for `config.*` (secrets replaced, never printed)."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from nself.errors import ConfigError, NselfError
from nself.project.model import Port, Project
from nself.ui import REDACTED


def port_text(port: Port) -> str:
    text = str(port.target)
    if port.published:
        text = f"{port.published}:{text}"
    if port.host_ip:
        text = f"{port.host_ip}:{text}"
    return text if port.protocol == "tcp" else f"{text}/{port.protocol}"


def _env(values, secret) -> dict[str, str]:
    return {k: REDACTED if k in secret and v else v for k, v in sorted(values.items())}


def _masked(value: Any, secrets: list[str]) -> Any:
    """Secret values inside a command-like field (`redis-cli -a ${REDIS_PASSWORD} ping`)."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, (list, tuple)):
        return [_masked(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v, secrets) for k, v in value.items()}
    return value


def describe(project: Project) -> dict[str, Any]:
    """The effective configuration of a project, as `config.show` prints it: secret variables
    masked by name, secret values masked inside healthcheck commands. Nothing else holds
    one, so the document needs no text replacement when printed."""
    variables = project.variables
    secrets = variables.secret_values()
    return {
        "project": project.name,
        "root": str(project.root),
        "environment": project.env,
        "namespace": project.namespace,
        "compose_files": [str(f) for f in project.compose_files],
        "env_files": [str(f) for f in variables.loaded],
        "settings": _plain(dict(project.settings.data)),
        "variables": _env(variables.values, variables.secrets),
        "services": {
            name: {
                "object_name": svc.object_name,
                "image": svc.image,
                "build": svc.build.context if svc.build else None,
                "replicas": svc.deploy.replicas if svc.deploy.replicas is not None else 1,
                "ports": [port_text(p) for p in svc.ports],
                "volumes": [f"{m.source or ''}:{m.target}" if m.source else m.target
                            for m in svc.volumes],
                "depends_on": [d.service for d in svc.depends_on],
                "profiles": list(svc.profiles),
                "environment": _env(svc.environment, svc.secret_env),
                "healthcheck": _masked(asdict(svc.healthcheck), secrets + sorted(
                    (svc.environment[k] for k in svc.secret_env if svc.environment[k]), key=len,
                    reverse=True)) if svc.healthcheck else None,
            }
            for name, svc in project.services.items()
        },
        "warnings": [w.to_dict() for w in project.warnings],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def lookup(document: dict, key: str) -> Any:
    """`services.postgres.image` → the value; KeyError when the path does not exist."""
    node: Any = document
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(key)
    return node


def check(root: Path | None, *, env: str | None, files=(), profiles=()) -> dict[str, Any]:
    """Validate nself.yml, the env files and the compose files; collect every problem.

    Each part is checked on its own so one broken file does not hide the others.
    """
    from nself.project import find_root, load_project, select_env
    from nself.project import settings as settings_mod
    from nself.project.envfiles import cascade, load_env

    root = root or find_root()
    if root is None:
        raise ConfigError("not inside an nself project", hint="cd into a project, or run `nself new`")
    problems: list[str] = []
    settings = settings_mod.Settings({})
    try:
        settings = settings_mod.load(root)
    except ConfigError as exc:
        problems += exc.details or [exc.message]
    if settings.path is not None:
        from nself.sync.auto import problems as sync_auto_problems

        problems += sync_auto_problems(settings, settings.path.read_text())
    env_name = "local"
    try:
        env_name = select_env(env, settings, root).name
    except NselfError as exc:
        problems.append(exc.message)
    project = None
    try:
        load_env(root, env_name, process_env={})
    except ConfigError as exc:  # compose interpolation needs the env files: stop here
        problems += exc.details or [exc.message]
    else:
        try:
            project = load_project(root, env=env_name, files=files, profiles=profiles,
                                   settings=settings)
            warnings = _with_conversion_warnings(project)
        except ConfigError as exc:
            problems += exc.details or [exc.message]
    return {
        "valid": not problems,
        "root": str(root),
        "environment": env_name,
        "env_files": [str(p) for p in cascade(root, env_name) if p.is_file()],
        "services": len(project.services) if project else None,
        "problems": problems,
        "warnings": [w.to_dict() for w in warnings] if project else [],
    }


def _with_conversion_warnings(project) -> list:
    """The loader's warnings and the converter's for this environment (an unpinned image in
    production, a sidecar's port…): what `k8s.generate` says about it, so the two agree."""
    from nself.k8s.convert import convert
    from nself.k8s.settings import load_overlay

    found = [*project.warnings, *convert(project, load_overlay(project, project.env)).warnings]
    return list(dict.fromkeys(found))
