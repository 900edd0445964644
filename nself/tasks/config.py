"""config: show, query, validate and change the project's configuration (nself.yml kept as written)."""
from __future__ import annotations

from invoke import Collection, task

from nself import runtime
from nself.errors import ConfigError, UsageError

_FILE = "compose file(s) to load instead of the project's (repeatable)"
_PROFILE = "compose profile to enable (repeatable; '*' enables all)"


@task(iterable=["file", "profile"], help={"file": _FILE, "profile": _PROFILE})
def show(c, file=None, profile=None):
    """Show the effective configuration for --env (secrets redacted)."""
    from nself.project.describe import describe

    out = runtime.output(c)
    doc = describe(runtime.load(c, files=file, profiles=profile))
    with out.verbatim():  # describe masks secrets where they are, by key
        out.emit(doc, render=_render_show(out))


def _render_show(out):
    def render(doc):
        out.say(f"project      {doc['project']}  ({doc['root']})")
        out.say(f"environment  {doc['environment']}  namespace {doc['namespace']}")
        out.say("compose      " + ", ".join(doc["compose_files"]))
        out.say("env files    " + (", ".join(doc["env_files"]) or "none"))
        out.table(["service", "image", "replicas", "ports", "depends on"],
                  [[n, s["image"] or f"(build {s['build']})", s["replicas"], " ".join(s["ports"]),
                    ", ".join(s["depends_on"])] for n, s in doc["services"].items()])
        if doc["warnings"]:
            out.say(f"{len(doc['warnings'])} warning(s); `nself config.validate` lists them")
    return render


@task(positional=["key"], iterable=["file", "profile"],
      help={"key": "dotted key, e.g. namespace, services.postgres.image, settings.helm.chart.name",
            "file": _FILE, "profile": _PROFILE})
def get(c, key, file=None, profile=None):
    """Print one value of the effective configuration (secrets masked)."""
    from nself.project.configure import mask_at
    from nself.project.describe import describe, lookup

    out = runtime.output(c)
    doc = describe(runtime.load(c, files=file, profiles=profile))
    try:
        value = lookup(doc, key)
    except KeyError:
        try:
            value = lookup(_invoke_config(c), key)
        except KeyError:
            raise UsageError(f"no configuration key {key!r}",
                             hint="top-level keys: " + ", ".join(doc) +
                                  " (and Invoke's: run, sudo, tasks, …)") from None
    value = mask_at(key, value)   # the rule of config.list/export: by the key's name
    if out.json_mode:
        out.emit({"key": key, "value": value})
    elif isinstance(value, (dict, list)):
        import yaml

        out.say(yaml.safe_dump(out.redact(value), sort_keys=False).rstrip())
    else:
        out.say("" if value is None else str(value))


def _invoke_config(c) -> dict:
    def plain(node):
        return {k: plain(v) for k, v in node.items()} if hasattr(node, "items") else node
    return plain(c.config)


@task(iterable=["file", "profile"], help={"file": _FILE, "profile": _PROFILE,
                                          "strict": "treat warnings as errors"})
def validate(c, file=None, profile=None, strict=False):
    """Check compose files, nself.yml and env files; report every problem."""
    from nself.project.describe import check

    out = runtime.output(c)
    opts = runtime.options(c)
    report = check(opts.root, env=opts.env, files=file or (), profiles=profile or ())
    failed = report["problems"] or (strict and report["warnings"])

    def render(doc):
        for problem in doc["problems"]:
            out.say(f"✗ {problem}")
        for line in grouped(doc["warnings"]):
            out.say(f"! {line}")
        if not doc["problems"]:
            out.say(f"✓ {doc['services']} services valid for {doc['environment']}"
                    f" ({len(doc['warnings'])} warning(s))")
    out.emit(report, render=render)
    if failed:
        raise ConfigError(f"configuration is invalid ({len(report['problems'])} problem(s)"
                          + (f", {len(report['warnings'])} warning(s) with --strict" if strict else "")
                          + ")", hint="fix the problems listed above", reported=True)


def grouped(warnings: list[dict]) -> list[str]:
    """One line per kind of warning: `container_name (24 services: a, b, …): reason`."""
    groups: dict[tuple, list[str]] = {}
    for w in warnings:
        groups.setdefault((w["code"], w["key"], w["message"]), []).append(w["service"] or "")
    lines = []
    for (_, key, message), services in groups.items():
        named = [s for s in services if s]
        if len(named) > 1:
            shown = ", ".join(named[:4]) + (", …" if len(named) > 4 else "")
            lines.append(f"{key} ({len(named)} services: {shown}): {message}")
        else:
            where = ".".join(p for p in (named[0] if named else None, key) if p)
            lines.append(f"{where}: {message}" if where else message)
    return lines


@task
def env(c):
    """Show which env files load, in which order, for --env."""
    from nself.project import find_root, select_env
    from nself.project import settings as settings_mod
    from nself.project.envfiles import load_env

    out = runtime.output(c)
    opts = runtime.options(c)
    root = opts.root or find_root()
    if root is None:
        raise ConfigError("not inside an nself project", hint="cd into a project, or run `nself new`")
    settings = settings_mod.load(root)
    choice = select_env(opts.env, settings, root)
    target = settings.env_target(choice.name)
    variables = load_env(root, choice.name, pass_env=target.get("pass_env") or ())
    files = [{"order": i + 1, "path": str(p), "exists": p.is_file(),
              "defines": len(variables.defined.get(p.name, ())),
              "in_effect": sum(1 for s in variables.sources.values() if s == p.name)}
             for i, p in enumerate(variables.files)]
    doc = {"environment": choice.name, "chosen_by": choice.source,
           "process_environment": "overrides files" if choice.name == "local"
           else ("only " + ", ".join(target.get("pass_env") or []) if target.get("pass_env")
                 else "not used"),
           "files": files, "secrets": sorted(variables.secrets)}

    def render(d):
        out.say(f"environment {d['environment']} (chosen by {d['chosen_by']})")
        out.table(["#", "file", "loaded", "defines", "in effect"],
                  [[f["order"], f["path"], "yes" if f["exists"] else "missing", f["defines"],
                    f["in_effect"]] for f in d["files"]])
        out.say(f"process environment: {d['process_environment']}")
    out.emit(doc, render=render)


def planned(out, doc) -> bool:
    """Under --dry-run a write returns its Plan instead of a report: print it (True)."""
    from nself.plan import Plan, emit

    if not isinstance(doc, Plan):
        return False
    emit(out, doc)
    return True


def _root(c):
    from nself.project import find_root

    root = runtime.options(c).root or find_root()
    if root is None:
        raise ConfigError("not inside an nself project", hint="cd into a project, or run `nself new`")
    return root


@task(name="set", positional=["key", "value"],
      help={"key": "dotted nself.yml key, e.g. helm.chart.version, environments.staging.namespace",
            "value": "the value (numbers, true/false and [a, b] are read as YAML where the key wants them)"})
def set_(c, key, value):
    """Set one nself.yml key (validated; comments and order kept)."""
    from nself.project import configure

    out = runtime.output(c)
    doc = configure.set_key(_root(c), key, value, runtime.options(c).dry_run)
    if planned(out, doc):
        return
    out.emit(doc, render=lambda d: out.say(f"{d['key']}: {d['old']!r} → {d['new']!r} ({d['file']})"))


@task(positional=["key"], help={"key": "dotted nself.yml key to remove (its default applies again)"})
def reset(c, key):
    """Remove one nself.yml key so its default applies again."""
    from nself.project import configure

    out = runtime.output(c)
    doc = configure.reset_key(_root(c), key, runtime.options(c).dry_run)
    if planned(out, doc):
        return
    out.emit(doc, render=lambda d: out.say(f"{d['key']}: removed (was {d['old']!r})"))


@task(name="list")
def list_(c):
    """List every key set in nself.yml with its value (secrets masked)."""
    from nself.project import configure

    out = runtime.output(c)
    doc = configure.list_keys(_root(c))

    def render(d):
        if d["file"] is None:
            out.say("no nself.yml: every setting has its default (docs/configuration.md)")
        out.table(["key", "value"], [[r["key"], r["value"]] for r in d["keys"]])
    out.emit(doc, render=render)


@task
def edit(c):
    """Edit nself.yml in $EDITOR; it is written back only when it validates."""
    from nself.project import configure

    out = runtime.output(c)
    doc = configure.edit_in_editor(_root(c), dry_run=runtime.options(c).dry_run)
    if planned(out, doc):
        return
    out.emit(doc, render=lambda d: out.say(f"{d['file']}: " + ("saved" if d["changed"] else
                                                                 f"unchanged ({d['reason']})")))


@task(positional=["environment"], help={"environment": "the environment to compare --env (or the default) with"})
def diff(c, environment):
    """Compare --env with ENVIRONMENT: settings and variables, secrets masked."""
    from nself.project import environments
    from nself.tasks.env import render_diff

    out = runtime.output(c)
    project = runtime.load(c)
    render_diff(out, environments.diff(project.root, project.name, project.env, environment))


@task(help={"format": "yaml, json or env (the variables as an env file)",
            "include_secrets": "print secret values instead of [REDACTED]"})
def export(c, format="yaml", include_secrets=False):
    """Export nself.yml and --env's variables; secrets masked unless asked."""
    from nself.project import configure
    from nself.project import settings as settings_mod
    from nself.project.loader import select_env

    out = runtime.output(c)
    root = _root(c)
    if format not in configure.FORMATS:
        raise UsageError(f"unknown format {format!r}", hint="use --format yaml, json or env")
    settings = settings_mod.load(root)
    env = select_env(runtime.options(c).env, settings, root).name
    doc = configure.export(root, env, settings.env_target(env).get("pass_env") or (), include_secrets)
    if out.json_mode:
        format = "json"
    with out.verbatim():   # masked by name in the document; --include-secrets asks for the values
        print(configure.render(doc, format), end="")


@task(name="import", positional=["file"], help={"file": "a YAML file of nself.yml sections (or a config.export)"})
def import_(c, file):
    """Merge a YAML file into nself.yml (validated, written atomically)."""
    from pathlib import Path

    from nself.project import configure

    out = runtime.output(c)
    doc = configure.import_file(_root(c), Path(file), runtime.options(c).dry_run)
    if planned(out, doc):
        return
    out.emit(doc, render=lambda d: out.say(f"{d['file']}: " + (", ".join(d["changed"]) or "nothing changed")))


ns = Collection("config", show, get, validate, env, set_, reset, list_, edit, diff, export, import_)
ns.configure({"config": {}})
