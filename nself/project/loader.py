"""Load a project: compose files + env cascade + nself.yml → an immutable `Project`."""
from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from nself.errors import ConfigError, UsageError
from nself.project import settings as settings_mod
from nself.project.build import build_resources, build_service, frozen
from nself.project import find_root
from nself.project.compose import default_files, load_compose
from nself.project.envfiles import canonical_env, load_env
from nself.project.model import Project
from nself.project.names import object_names, to_dns1035
from nself.project.warnings import Warning

@dataclass(frozen=True)
class EnvChoice:
    name: str
    source: str   # where the choice came from, for `config.env`


def select_env(requested: str | None, settings: settings_mod.Settings, root: Path,
               process_env: Mapping[str, str] | None = None) -> EnvChoice:
    """--env, then NSELF_ENV, ENV, ENV in .env, environments.default, else local."""
    process_env = os.environ if process_env is None else process_env
    known = settings.environments()
    if requested:
        return EnvChoice(canonical_env(requested, known), "--env")
    try:
        return _configured_env(settings, root, process_env, known)
    except UsageError as exc:  # the name came from configuration, not from the command line
        raise ConfigError(exc.message, hint=exc.hint) from None


def _configured_env(settings, root: Path, process_env: Mapping[str, str], known) -> EnvChoice:
    for var in ("NSELF_ENV", "ENV"):
        if process_env.get(var):
            return EnvChoice(canonical_env(process_env[var], known), f"${var}")
    value = _env_in_dotenv(root / ".env")
    if value:
        return EnvChoice(canonical_env(value, known), "ENV in .env")
    default = settings.section("environments", "default")
    if default:
        return EnvChoice(canonical_env(default, known), "environments.default in nself.yml")
    return EnvChoice("local", "built-in default")


def namespace_for(project_name: str, settings: settings_mod.Settings, env: str) -> str:
    """environments.<env>.namespace, else kubernetes.generate.namespace (one namespace for
    every environment, each on its own cluster), else <project>-<env>."""
    shared = settings.section("kubernetes", "generate", "namespace")
    return settings.env_target(env).get("namespace") or shared or f"{project_name}-{env}"


def for_environment(loaded: list[Project], env: str) -> Project:
    """The project (the first of `loaded`) for another environment, leniently: that
    environment's secrets need not be on this machine. When the env files give the
    same variables as an environment already loaded, its compose model is reused."""
    project = loaded[0]
    target = project.settings.env_target(env)
    variables = load_env(project.root, env, pass_env=target.get("pass_env") or (), lenient=True)
    same = next((p for p in loaded if all(p.variables.lookup.get(n) == variables.lookup.get(n)
                                          for n in p.used_variables)), None)
    if same is not None and not variables.missing:
        return dataclasses.replace(same, env=env, variables=variables,
                                   namespace=namespace_for(project.name, project.settings, env))
    return load_project(project.root, env=env, files=project.compose_files,
                        profiles=project.profiles, settings=project.settings, lenient=True)


_ENV_LINE = re.compile(
    r"""^[ \t]*(?:export[ \t]+)?ENV[ \t]*=[ \t]*['"]?([A-Za-z0-9-]*)['"]?[ \t]*(?:#.*)?$""", re.M)


def _env_in_dotenv(path: Path) -> str | None:
    """ENV=… in .env (a plain scan: the full parse happens once, in load_env)."""
    try:
        match = _ENV_LINE.search(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None  # load_env reports unreadable files properly
    return match.group(1) if match else None


def _missing_files(services, secrets, configs, lenient: bool) -> list[Warning]:
    """Secrets and configs that services use must name an existing file. `lenient` (another
    environment's files need not be on this machine) turns the refusal into warnings."""
    problems = []
    for kind, resources in (("secrets", secrets), ("configs", configs)):
        used = {ref.source for svc in services.values() for ref in getattr(svc, kind)}
        for name in sorted(used & set(resources)):
            file = resources[name].file
            if file and not resources[name].external and not Path(file).is_file():
                state = "is a directory" if Path(file).is_dir() else "does not exist"
                problems.append(Warning("missing-file", None, f"{kind}.{name}.file",
                                        f"{kind[:-1]} {name!r}: {file} {state}"))
    if problems and not lenient:
        raise ConfigError("files named in the compose file are missing",
                          details=[w.message for w in problems],
                          hint="create each file (a secret file holds just the value), or point "
                               "`file:` at the right path")
    return problems


def load_project(root: Path | None = None, *, env: str | None = None,
                 files: Iterable[str | Path] = (), profiles: Iterable[str] = (),
                 process_env: Mapping[str, str] | None = None,
                 settings: settings_mod.Settings | None = None, lenient: bool = False) -> Project:
    """Load the project for an environment. `lenient` turns unset required variables
    (`${X:?}`) into warnings: for generating another environment's overlay on a
    machine that does not hold its secrets."""
    if root is None:
        root = find_root()
        if root is None:
            raise ConfigError("not inside an nself project (no nself.yml or compose file here "
                              "or in any parent directory)",
                              hint="cd into your project, or create one with `nself new NAME`")
    root = root.resolve()
    settings = settings if settings is not None else settings_mod.load(root)
    settings_mod.moved_variables(os.environ if process_env is None else process_env)
    choice = select_env(env, settings, root, process_env)
    target = settings.env_target(choice.name)
    variables = load_env(root, choice.name, pass_env=target.get("pass_env") or (),
                         process_env=process_env, lenient=lenient)
    # COMPOSE_FILE and COMPOSE_PROFILES work as they do for `docker compose`.
    files = list(files) or [f for f in variables.lookup.get("COMPOSE_FILE", "").split(os.pathsep) if f]
    profiles = list(profiles) or [p for p in variables.lookup.get("COMPOSE_PROFILES", "").split(",") if p]
    paths = [Path(f) if Path(f).is_absolute() else root / f for f in files] or default_files(root)
    for path in paths:
        if path.is_dir():
            raise ConfigError(f"compose file {path} is a directory", hint="name the YAML file inside it")
        if not path.is_file():
            raise ConfigError(f"compose file not found: {path}", hint="fix the --file path")
    loaded = load_compose(paths, variables.lookup, profiles=profiles, lenient=lenient)
    data = loaded.data
    names, warnings = object_names(data.get("services") or {})
    warnings = [*loaded.warnings, *warnings, *(
        Warning("unset-variable", None, name, f"required variable {name} is not set for "
                f"{choice.name}; set it before applying") for name in sorted(variables.missing))]
    services = {}
    used = set(loaded.used) | {"COMPOSE_FILE", "COMPOSE_PROFILES", "COMPOSE_PROJECT_NAME"}
    for name, raw in (data.get("services") or {}).items():
        refs = {key: used for (svc, key), used in loaded.env_refs.items() if svc == name}
        services[name] = build_service(name, names[name], raw, variables, refs, warnings, used)
    secrets, configs = build_resources(data.get("secrets")), build_resources(data.get("configs"))
    warnings += _missing_files(services, secrets, configs, lenient)
    name = (settings.section("project", "name") or data.get("name") or
            variables.lookup.get("COMPOSE_PROJECT_NAME") or root.name)
    project_name = to_dns1035(name)
    return Project(
        name=project_name, root=root, env=choice.name, compose_files=tuple(loaded.files),
        services=MappingProxyType(services),
        volumes=build_resources(data.get("volumes")), networks=build_resources(data.get("networks")),
        secrets=secrets, configs=configs,
        variables=variables, settings=settings,
        namespace=namespace_for(project_name, settings, choice.name), profiles=tuple(profiles),
        used_variables=frozenset(used),
        warnings=tuple(warnings),
        extensions=frozen({k: v for k, v in data.items() if k.startswith("x-")}))
