"""Canonical compose dict → typed, immutable model objects (with warnings)."""
from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from nself.errors import ConfigError
from nself.project import keys
from nself.project.envfiles import EnvVars, classify, parse_env_file
from nself.project.model import (Build, Deploy, Dependency, FileRef, Healthcheck, Mount,
                                 NetworkAttachment, Port, Resource, Resources, RestartPolicy,
                                 Service, UpdateConfig)
from nself.project.warnings import Warning

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_BYTES = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$", re.I)


def frozen(mapping: Mapping | None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


def duration(value: Any, where: str) -> float | None:
    """Compose duration (`1m30s`, `10s`, `500ms`) in seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ConfigError(f"invalid duration {value!r} in {where}",
                          hint="write durations like 10s, 1m30s, 500ms or 2h")
    return total


def byte_size(value: Any, where: str) -> int | None:
    """`512M`, `1g`, `1.5gb` or a number of bytes (compose sizes are 1024-based)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number(value, where, int, minimum=0)
    match = _BYTES.match(str(value).strip())
    if not match:
        raise ConfigError(f"invalid size {value!r} in {where}", hint="write sizes like 512M or 1G")
    power = " kmgtp".index((match.group(2) or " ").lower())
    return int(float(match.group(1)) * 1024 ** power)


def number(value: Any, where: str, kind=int, minimum: float | None = None,
           maximum: float | None = None) -> Any:
    """An int/float from YAML or an interpolated string, within [minimum, maximum] when
    given, or a clear error."""
    if value is None:
        return None
    noun = "a whole number" if kind is int else "a number"
    try:
        if isinstance(value, bool):
            raise ValueError
        result = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected {noun}, got {value!r}",
                          hint="fix the value (or the variable that fills it)") from None
    if result != result or (minimum is not None and result < minimum) or \
            (maximum is not None and result > maximum):
        bounds = f"from {minimum:g}" + (f" to {maximum:g}" if maximum is not None else " up")
        raise ConfigError(f"{where}: {value!r} is out of range", hint=f"use {noun} {bounds}")
    return result


# More replicas than this is a typo, not a plan (Kubernetes would take up to 2^31-1).
MAX_REPLICAS = 10_000
# Linux refuses a single argument longer than this (MAX_ARG_STRLEN): a longer `command:`
# string could never run, and splitting megabytes of it would take minutes.
MAX_COMMAND = 131_072

_TRUE = frozenset({"true", "yes", "y", "on"})
_FALSE = frozenset({"false", "no", "n", "off", ""})


def flag(value: Any, where: str) -> bool:
    """A boolean from YAML or from interpolation (`read_only: ${RO}` with RO=false gives the
    string "false", which `bool()` would call true). Compose accepts these spellings."""
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ConfigError(f"{where}: expected true or false, got {value!r}",
                      hint="fix the value (or the variable that fills it)")


def command(value: Any, where: str = "") -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        if len(value) > MAX_COMMAND:
            raise ConfigError(f"{where}: a command of {len(value):,} characters is longer than "
                              f"Linux allows ({MAX_COMMAND:,})",
                              hint="put long scripts in a file in the image, or in a config")
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:   # "No closing quotation"
            raise ConfigError(f"{where}: {exc} in {value[:60]!r}",
                              hint="close the quote, or write the command as a list") from None
    return tuple(str(v) for v in value)


def build_service(name: str, object_name: str, raw: dict, env: EnvVars,
                  refs: Mapping[str, set[str]], warnings: list[Warning], used: set[str]) -> Service:
    """`used` collects the variables the service's env files read."""
    where = f"service {name!r}"
    for key in raw:
        if key in keys.NOT_CARRIED:
            warnings.append(Warning("not-carried", name, key, keys.NOT_CARRIED[key]))
    environment, secret_env, env_files = _environment(name, raw, env, refs, warnings, used)
    volumes = [_mount(v, where) for v in raw.get("volumes") or []]
    volumes += [_tmpfs(t) for t in raw.get("tmpfs") or []]
    deploy = _deploy(raw, where, warnings, name)
    return Service(
        name=name, object_name=object_name,
        image=raw.get("image"),
        build=_build(raw.get("build")),
        command=command(raw.get("command"), f"{where} command"),
        entrypoint=command(raw.get("entrypoint"), f"{where} entrypoint"),
        environment=frozen(environment), secret_env=frozenset(secret_env),
        env_files=tuple(env_files),
        ports=tuple(Port(target=int(p["target"]), published=p.get("published"),
                         host_ip=p.get("host_ip"), protocol=p.get("protocol", "tcp"),
                         mode=p.get("mode"), name=p.get("name"),
                         app_protocol=p.get("app_protocol")) for p in raw.get("ports") or []),
        expose=tuple(raw.get("expose") or ()),
        volumes=tuple(volumes),
        depends_on=tuple(Dependency(service=d, condition=o.get("condition", "service_started"),
                                    required=flag(o.get("required", True), f"{where} depends_on"),
                                    restart=flag(o.get("restart", False), f"{where} depends_on"))
                         for d, o in (raw.get("depends_on") or {}).items()),
        links=tuple(raw.get("links") or ()),
        healthcheck=_healthcheck(raw.get("healthcheck"), where),
        deploy=deploy,
        restart=raw.get("restart"),
        labels=frozen(raw.get("labels")),
        annotations=frozen(raw.get("annotations")),
        networks=frozen({n: NetworkAttachment(aliases=tuple((o or {}).get("aliases") or ()),
                                              ipv4_address=(o or {}).get("ipv4_address"),
                                              ipv6_address=(o or {}).get("ipv6_address"))
                         for n, o in (raw.get("networks") or {}).items()}),
        network_mode=raw.get("network_mode"),
        secrets=tuple(_file_ref(r, f"{where} secrets") for r in raw.get("secrets") or []),
        configs=tuple(_file_ref(r, f"{where} configs") for r in raw.get("configs") or []),
        profiles=tuple(raw.get("profiles") or ()),
        user=None if raw.get("user") is None else str(raw["user"]),
        group_add=tuple(str(g) for g in raw.get("group_add") or ()),
        working_dir=raw.get("working_dir"),
        hostname=raw.get("hostname"),
        cap_add=tuple(raw.get("cap_add") or ()), cap_drop=tuple(raw.get("cap_drop") or ()),
        security_opt=tuple(str(o) for o in raw.get("security_opt") or ()),
        privileged=flag(raw.get("privileged"), f"{where} privileged"),
        read_only=flag(raw.get("read_only"), f"{where} read_only"),
        init=flag(raw.get("init"), f"{where} init"), tty=flag(raw.get("tty"), f"{where} tty"),
        stdin_open=flag(raw.get("stdin_open"), f"{where} stdin_open"),
        stop_grace_period=duration(raw.get("stop_grace_period"), f"{where} stop_grace_period"),
        stop_signal=raw.get("stop_signal"),
        sysctls=frozen(raw.get("sysctls")),
        ulimits=frozen({k: _ulimit(v, f"{where} ulimits.{k}")
                        for k, v in (raw.get("ulimits") or {}).items()}),
        extra_hosts=frozen(raw.get("extra_hosts")),
        dns=tuple(raw.get("dns") or ()), dns_search=tuple(raw.get("dns_search") or ()),
        shm_size=byte_size(raw.get("shm_size"), f"{where} shm_size"),
        pull_policy=raw.get("pull_policy"), platform=raw.get("platform"),
        extensions=frozen({k: v for k, v in raw.items() if k.startswith("x-")}),
    )


def _environment(name: str, raw: dict, env: EnvVars, refs: Mapping[str, set[str]],
                 warnings: list[Warning], used_vars: set[str]) -> tuple[dict[str, str], set[str], list[str]]:
    """env_file contents first, then `environment:`; which of them are secret."""
    values: dict[str, str] = {}
    used: dict[str, set[str]] = {}
    files = []
    for item in raw.get("env_file") or []:
        path = Path(item["path"])
        if not path.is_file():
            if item.get("required", True):
                raise ConfigError(f"service {name!r}: env_file {path} not found",
                                  hint="create it, fix the path, or mark it `required: false`")
            continue
        files.append(str(path))
        values.update(parse_env_file(path, env.lookup, used_vars))
    for key, value in (raw.get("environment") or {}).items():
        if value is None:  # `- KEY` takes the value from the environment, if it has one
            used_vars.add(key)
            if key in env.lookup:
                values[key] = env.lookup[key]
                used[key] = {key}
            else:
                warnings.append(Warning("unset-variable", name, f"environment.{key}",
                                        f"{key} has no value and is not set; it is left out"))
            continue
        values[key] = value
        used[key] = set(refs.get(key, ()))
    known = {k for k, u in used.items() if u & env.secrets}
    return values, classify(values, used, known, env.secret_values()), files


def _mount(vol: dict, where: str) -> Mount:
    tmpfs = vol.get("tmpfs") or {}
    return Mount(type=vol.get("type", "volume"), target=vol["target"], source=vol.get("source"),
                 read_only=flag(vol.get("read_only"), f"{where} volumes"),
                 size=byte_size(tmpfs.get("size"), f"{where} volumes"),
                 mode=file_mode(tmpfs.get("mode"), f"{where} volumes"),
                 subpath=(vol.get("volume") or {}).get("subpath"))


def _tmpfs(spec: str) -> Mount:
    """`/run:size=64m,mode=1777` (the short syntax: options as `docker run --tmpfs` reads them)."""
    target, _, options = spec.partition(":")
    found = dict(o.split("=", 1) for o in options.split(",") if "=" in o)
    return Mount(type="tmpfs", target=target, size=byte_size(found.get("size"), "tmpfs"),
                 mode=file_mode(found.get("mode"), "tmpfs"))


def _build(raw: Any) -> Build | None:
    if not raw:
        return None
    return Build(context=raw.get("context"), dockerfile=raw.get("dockerfile"),
                 target=raw.get("target"), args=frozen(raw.get("args")))


def _ulimit(value: Any, where: str) -> tuple[int, int]:
    if isinstance(value, dict):
        return number(value.get("soft"), where), number(value.get("hard"), where)
    return number(value, where), number(value, where)


def file_mode(mode: Any, where: str) -> int | None:
    """A file mode as compose reads it: a string is octal (`"0440"`), a number is taken as
    the YAML reader typed it (`0440` in YAML 1.1 is already 288)."""
    if isinstance(mode, str):
        try:
            return int(mode, 8)
        except ValueError:
            raise ConfigError(f"{where}: invalid file mode {mode!r}",
                              hint="write an octal mode such as 0440") from None
    return None if mode is None else number(mode, where)


def _file_ref(ref: dict, where: str) -> FileRef:
    return FileRef(source=ref["source"], target=ref["target"],
                   uid=None if ref.get("uid") is None else str(ref["uid"]),
                   gid=None if ref.get("gid") is None else str(ref["gid"]),
                   mode=file_mode(ref.get("mode"), where))


def _healthcheck(raw: dict | None, where: str) -> Healthcheck | None:
    if not raw:
        return None
    test = raw.get("test")
    if raw.get("disable") or test == ["NONE"] or test == "NONE":
        return Healthcheck(disabled=True)
    if isinstance(test, str):
        argv, shell = (test,), True
    elif test:
        kind, *argv = [str(t) for t in test]
        if kind not in ("CMD", "CMD-SHELL"):
            raise ConfigError(f"invalid healthcheck test {test!r} in {where}",
                              hint='start the list with "CMD", "CMD-SHELL" or "NONE"')
        shell = kind == "CMD-SHELL"
        argv = tuple([" ".join(argv)] if shell else argv)
    else:
        argv, shell = (), False
    at = f"{where} healthcheck"
    return Healthcheck(test=tuple(argv), shell=shell,
                       interval=duration(raw.get("interval"), at),
                       timeout=duration(raw.get("timeout"), at),
                       start_period=duration(raw.get("start_period"), at),
                       start_interval=duration(raw.get("start_interval"), at),
                       retries=number(raw.get("retries"), f"{at} retries"))


def _deploy(raw: dict, where: str, warnings: list[Warning], name: str) -> Deploy:
    spec = raw.get("deploy") or {}
    for key in spec:
        if key not in keys.DEPLOY_CARRIED:
            warnings.append(Warning("not-carried", name, f"deploy.{key}",
                                    "not a Kubernetes workload setting"))
    res = spec.get("resources") or {}
    limits, reservations = res.get("limits") or {}, res.get("reservations") or {}
    for extra in set(reservations) - {"cpus", "memory"}:
        warnings.append(Warning("not-carried", name, f"deploy.resources.reservations.{extra}",
                                "needs a device plugin in Kubernetes"))
    at = f"{where} deploy.resources"
    resources = Resources(
        cpu_limit=number(limits.get("cpus", raw.get("cpus")), f"{at} cpus", float, minimum=0),
        memory_limit=byte_size(limits.get("memory", raw.get("mem_limit")), at),
        cpu_request=number(reservations.get("cpus"), f"{at} reservations.cpus", float, minimum=0),
        memory_request=byte_size(reservations.get("memory", raw.get("mem_reservation")), at),
        pids_limit=number(limits.get("pids", raw.get("pids_limit")), f"{at} pids"))
    placement = spec.get("placement") or {}
    replicas = spec.get("replicas", raw.get("scale"))
    return Deploy(
        mode=spec.get("mode", "replicated"),
        replicas=number(replicas, f"{where} deploy.replicas", minimum=0, maximum=MAX_REPLICAS),
        resources=resources,
        restart_policy=_restart_policy(spec.get("restart_policy"), where),
        update_config=_update(spec.get("update_config"), where),
        rollback_config=_update(spec.get("rollback_config"), where),
        constraints=tuple(placement.get("constraints") or ()),
        preferences=tuple(p.get("spread") for p in placement.get("preferences") or []
                          if p.get("spread")),
        labels=frozen(spec.get("labels") if isinstance(spec.get("labels"), dict) else
                      {k: v for k, _, v in (str(i).partition("=") for i in spec.get("labels") or [])}),
        endpoint_mode=spec.get("endpoint_mode"))


def _restart_policy(raw: dict | None, where: str) -> RestartPolicy | None:
    if not raw:
        return None
    at = f"{where} deploy.restart_policy"
    return RestartPolicy(condition=raw.get("condition"), delay=duration(raw.get("delay"), at),
                         max_attempts=number(raw.get("max_attempts"), f"{at} max_attempts"),
                         window=duration(raw.get("window"), at))


def _update(raw: dict | None, where: str) -> UpdateConfig | None:
    if not raw:
        return None
    at = f"{where} deploy.update_config"
    return UpdateConfig(parallelism=number(raw.get("parallelism"), f"{at} parallelism"),
                        delay=duration(raw.get("delay"), at),
                        failure_action=raw.get("failure_action"),
                        monitor=duration(raw.get("monitor"), at),
                        max_failure_ratio=number(raw.get("max_failure_ratio"), at, float),
                        order=raw.get("order"))


def build_resources(raw: Mapping | None) -> Mapping[str, Resource]:
    out = {}
    for name, spec in (raw or {}).items():
        spec = spec or {}
        external = spec.get("external")
        if isinstance(external, dict):  # legacy `external: {name: x}`
            spec = {**spec, "name": external.get("name", spec.get("name"))}
        external = True if isinstance(external, dict) else flag(external, f"{name} external")
        out[name] = Resource(name=name, external=external, driver=spec.get("driver"),
                             driver_opts=frozen(spec.get("driver_opts")),
                             labels=frozen(spec.get("labels") if isinstance(spec.get("labels"), dict)
                                           else None),
                             file=spec.get("file"), environment=spec.get("environment"),
                             content=spec.get("content"),
                             internal=flag(spec.get("internal"), f"{name} internal"),
                             external_name=spec.get("name"))
    return frozen(out)
