"""A service's environment → a ConfigMap (plain values) and a Secret (secret values)."""
from __future__ import annotations

import re
import shlex
from functools import lru_cache

from nself.k8s.objects import SOURCE_ANNOTATION, labels, obj
from nself.project.model import Project, Service
from nself.project.warnings import Warning

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def secrets_in_commands(project: Project, svc: Service) -> dict[str, str]:
    """Secret variables whose values appear in the command, entrypoint or healthcheck
    (`redis-server --requirepass ${REDIS_PASSWORD}`): variable → value."""
    text = "\0".join([*(svc.command or ()), *(svc.entrypoint or ()),
                      *(svc.healthcheck.test if svc.healthcheck else ())])
    variables = project.variables
    return {name: variables.values[name] for name in sorted(variables.secrets)
            if len(variables.values.get(name, "")) >= 6 and variables.values[name] in text}


def shield(container: dict, refs: dict[str, str]) -> None:
    """Replace secret values in a container's command and probes by references to the
    variables that hold them: `$(VAR)` in command/args (Kubernetes expands it), and
    `"$VAR"` in probe commands, which then run through a shell."""
    by_value = sorted(((v, k) for k, v in refs.items()), key=lambda p: -len(p[0]))
    for field in ("command", "args"):
        if field in container:
            container[field] = [_replace(a, by_value, "$({})") for a in container[field]]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        command = container.get(probe, {}).get("exec", {}).get("command")
        if not command or not any(v in a for a in command for v, _ in by_value):
            continue
        if command[:2] == ["sh", "-c"] and len(command) == 3:
            script = _replace(command[2], by_value, '"${{{}}}"')
        else:
            script = " ".join(_shell_word(a, by_value) for a in command)
        container[probe]["exec"]["command"] = ["sh", "-c", script]


def _replace(text: str, by_value: list[tuple[str, str]], pattern: str) -> str:
    for value, name in by_value:
        text = text.replace(value, pattern.format(name))
    return text


def _shell_word(arg: str, by_value: list[tuple[str, str]]) -> str:
    if not any(v in arg for v, _ in by_value):
        return shlex.quote(arg)
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
    return '"' + _replace(escaped, [(v.replace("$", "\\$"), n) for v, n in by_value], "${{{}}}") + '"'


def renamed_hosts(project: Project) -> dict[str, str]:
    """Compose service name → its Kubernetes name, for services whose name changed
    (`plausible_db` → `plausible-db`: an underscore is no DNS label)."""
    return {s.name: s.object_name for s in project.services.values() if s.name != s.object_name}


@lru_cache(maxsize=64)
def _host_pattern(names: tuple[str, ...]) -> re.Pattern:
    """A name where it can only be a host: after `//` or `@`, or before `:<port>` (so the
    database in `…@plausible_db:5432/plausible_db` is not one)."""
    alternatives = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    return re.compile(rf"(?:(?<=//)|(?<=@))(?P<url>{alternatives})(?=[:/?,\s]|$)"
                      rf"|(?<![\w.-])(?P<port>{alternatives})(?=:\d)")


_HOST_KEY = re.compile(r"HOST|ADDR|SERVER|URL|URI|ENDPOINT", re.IGNORECASE)


def rewrite_hosts(key: str, value: str, renamed: dict[str, str]) -> str:
    """`value` with every host reference to a renamed service under its Kubernetes name.
    A bare value (`plausible_db`) is a host only under a host-like key (`DB_HOST`): under
    `POSTGRES_DB` it is a database name and stays."""
    if not renamed or not value:
        return value
    if value in renamed and _HOST_KEY.search(key):
        return renamed[value]
    return _host_pattern(tuple(sorted(renamed))).sub(
        lambda m: renamed[m.group("url") or m.group("port")], value)


def env_objects(project: Project, svc: Service, warnings: list[Warning], include_secrets: bool,
                extra_secrets: dict[str, str] | None = None,
                renamed: dict[str, str] | None = None) -> tuple[dict | None, dict | None, dict]:
    """(ConfigMap, Secret, container env fields). The Secret carries values only
    with `include_secrets`; otherwise it is a template that `k8s.apply` fills. Host
    references to the `renamed` services (`renamed_hosts`) follow the rename, in both.
    `extra_secrets` are variables the command needs (see `secrets_in_commands`)."""
    plain, secret = {}, dict(extra_secrets or {})
    renamed = renamed or {}
    for key, value in sorted(svc.environment.items()):
        value = rewrite_hosts(key, value, renamed) if isinstance(value, str) else value
        if not _ENV_NAME.match(key):
            warnings.append(Warning("env-name", svc.name, f"environment.{key}",
                                    "not a valid Kubernetes variable name; left out"))
            continue
        (secret if key in svc.secret_env else plain)[key] = value
    secret = dict(sorted(secret.items()))
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
