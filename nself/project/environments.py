"""The project's environments as data for `env list|create|switch|diff` and `config diff`.

Reading is pure over files (nself.yml, the env-file cascade, the inventory); writing goes
through `nself.project.edit` (comments kept, validated, atomic). Secret values never leave
this module: a secret variable is reported as `[REDACTED]` (a row still shows that it differs).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

from nself import plan
from nself.errors import ConfigError, UsageError
from nself.project import edit, settings as settings_mod
from nself.project.envfiles import ALIASES, CANONICAL_ENVS, _ENV_NAME, canonical_env, is_secret_name, load_env

REDACTED = "[REDACTED]"


def names(settings) -> list[str]:
    """local, staging, production, then the ones nself.yml declares, canonical and unique."""
    out = list(CANONICAL_ENVS)
    for name in settings.environments():
        canonical = ALIASES.get(name, name)
        if canonical not in out:
            out.append(canonical)
    return out


def describe(root: Path, project_name: str, current: str) -> list[dict]:
    """One row per environment: its deploy target, namespace, hosts, and which is current/default."""
    from nself.project.loader import namespace_for

    settings = settings_mod.load(root)
    default = settings.section("environments", "default")
    default = canonical_env(default, settings.environments()) if default else "local"
    rows = []
    for env in names(settings):
        spec = settings.env_target(env)
        namespace = namespace_for(project_name, settings, env)
        rows.append({"name": env, "default": env == default, "current": env == current,
                     "target": _target(root, env, project_name, namespace, settings),
                     "namespace": namespace, "hosts": list(spec.get("hosts") or spec.get("roles") or []),
                     "declared": env in {ALIASES.get(n, n) for n in settings.environments()},
                     "env_file": _env_file(root, env)})
    return rows


def _target(root: Path, env: str, project: str, namespace: str, settings) -> str:
    """`ssh`, `k8s` or `none`, by the deploy module's own rule (nself.deploy.targets.resolve)."""
    from nself.deploy import targets

    stand_in = SimpleNamespace(env=env, name=project, namespace=namespace, settings=settings)
    try:
        return targets.resolve(stand_in, _inventory(root)).kind
    except ConfigError as exc:
        return "none" if "has no deploy target" in exc.message else "invalid"


def _inventory(root: Path) -> dict:
    from nself.remote import inventory

    try:
        return inventory.load(root)
    except ConfigError:
        return {}


def _env_file(root: Path, env: str) -> str | None:
    spellings = [env, *(a for a, c in ALIASES.items() if c == env and a in ("dev", "prod"))]
    return next((f".env.{s}" for s in spellings if (root / f".env.{s}").is_file()), None)


def create(root: Path, name: str, source: str | None, dry_run: bool = False):
    """Declare `name` under `environments:` (a copy of `source`'s settings, namespace left to
    the default) and write `.env.NAME` from `.env.example` (or from `source`'s env file).
    Under `dry_run`, the Plan of both writes (a `nself.plan.Plan`), nothing written."""
    from nself.project import configure

    if not _ENV_NAME.match(name):
        raise UsageError(f"{name!r} is not a valid environment name",
                         hint="use lowercase letters, digits and '-', starting with a letter (at most 31)")
    doc = edit.open_document(root)
    settings = settings_mod.load(root)
    known = names(settings)
    if name in known or name in ALIASES or name == "default":
        raise UsageError(f"environment {name!r} already exists",
                         hint=f"pick another name; `nself env list` shows {', '.join(known)}")
    base = canonical_env(source, settings.environments()) if source else None
    spec = _declared(doc, base)
    env_file = root / f".env.{name}"
    if env_file.exists():
        raise UsageError(f"{env_file.name} already exists", hint="remove it or choose another name")
    edit.set_value(doc, ["environments", name], spec)
    template = _template(root, base)
    if dry_run:
        text = template.read_text() if template is not None else _blank(name)
        return configure.write(doc, True, plan.put(f"write {env_file.name}" + (
            f" from {template.name}" if template is not None else ""), str(env_file), text))
    configure.write(doc)
    if template is not None:
        shutil.copyfile(template, env_file)
    else:
        env_file.write_text(_blank(name))
    return {"environment": name, "from": base, "nself_yml": str(doc.path), "env_file": str(env_file),
            "env_file_from": template.name if template is not None else None}


def _blank(name: str) -> str:
    return f"# variables of the {name} environment (later files win: see `nself config.env`)\n"


def _declared(doc: edit.Document, env: str | None):
    """A copy of `env`'s mapping under `environments:` as written (styles and comments kept),
    without its namespace (the new environment gets its own); None when it declares nothing."""
    import copy

    for key, node in (doc.data.get("environments") or {}).items():
        if env is not None and ALIASES.get(key, key) == env and isinstance(node, dict):
            spec = copy.deepcopy(node)
            spec.pop("namespace", None)
            return spec or None
    return None


def _template(root: Path, base: str | None) -> Path | None:
    candidates = ([root / f] for f in [_env_file(root, base)] if f) if base else iter(())
    for paths in [*candidates, [root / ".env.example"]]:
        if paths[0].is_file():
            return paths[0]
    return None


def switch(root: Path, name: str, dry_run: bool = False):
    """Set `environments.default`; report what still overrides it (ENV in .env, $NSELF_ENV, $ENV).
    Under `dry_run`, the Plan of the write (a `nself.plan.Plan`), nothing written."""
    from nself.project import configure
    from nself.project.loader import select_env

    settings = settings_mod.load(root)
    env = canonical_env(name, settings.environments())
    doc = edit.open_document(root)
    edit.set_value(doc, ["environments", "default"], env)
    if dry_run:
        return configure.write(doc, True)
    configure.write(doc)
    choice = select_env(None, settings_mod.load(root), root)
    shadowed = None if choice.name == env else f"{choice.source} selects {choice.name!r} first"
    return {"default": env, "effective": choice.name, "chosen_by": choice.source, "shadowed_by": shadowed}


def effective(root: Path, project_name: str, env: str) -> dict:
    """What differs between environments: their settings and their variables (secrets masked)."""
    from nself.project.loader import namespace_for

    settings = settings_mod.load(root)
    spec = settings.env_target(env)
    variables = load_env(root, env, pass_env=spec.get("pass_env") or (), lenient=True)
    secret = set(variables.secrets) | {k for k in variables.values if is_secret_name(k)}
    namespace = namespace_for(project_name, settings, env)
    return {"settings": {"namespace": namespace, "target": _target(root, env, project_name, namespace, settings),
                         **edit.flatten(edit.plain(dict(spec)))},
            "variables": dict(variables.values), "secret": secret}


def diff(root: Path, project_name: str, a: str, b: str) -> dict:
    """Rows of settings and variables whose values differ between `a` and `b`."""
    settings = settings_mod.load(root)
    a, b = (canonical_env(x, settings.environments()) for x in (a, b))
    left, right = effective(root, project_name, a), effective(root, project_name, b)

    def rows(kind: str) -> list[dict]:
        keys = sorted(set(left[kind]) | set(right[kind]))
        masked = left["secret"] | right["secret"] if kind == "variables" else set()
        out = []
        for key in keys:
            va, vb = left[kind].get(key), right[kind].get(key)
            if va != vb:
                show = (lambda v: None if v is None else REDACTED) if key in masked else (lambda v: v)
                out.append({"key": key, a: show(va), b: show(vb), "secret": key in masked})
        return out

    return {"a": a, "b": b, "settings": rows("settings"), "variables": rows("variables")}
