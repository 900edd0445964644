"""env: the project's environments — list, create, switch the default, compare two."""
from __future__ import annotations

from invoke import Collection, task

from nself import runtime
from nself.errors import ConfigError
from nself.tasks.config import planned


def _root(c):
    from nself.project import find_root

    root = runtime.options(c).root or find_root()
    if root is None:
        raise ConfigError("not inside an nself project", hint="cd into a project, or run `nself new`")
    return root


@task(name="list")
def list_(c):
    """List the environments: target, namespace, hosts, default, current."""
    from nself.project import environments

    out = runtime.output(c)
    project = runtime.load(c)
    rows = environments.describe(project.root, project.name, project.env)

    def render(doc):
        out.table(["environment", "target", "namespace", "hosts", "env file", ""],
                  [[r["name"], r["target"], r["namespace"], ", ".join(r["hosts"]), r["env_file"] or "",
                    " ".join(m for m, on in (("default", r["default"]), ("current", r["current"])) if on)]
                   for r in doc["environments"]])
    out.emit({"environments": rows}, render=render)


@task(positional=["name"], help={"name": "the new environment (lowercase letters, digits, '-')",
                                 "from_": "copy this environment's settings and env file (else .env.example)"})
def create(c, name, from_=None):
    """Add an environment to nself.yml (comments kept) and write its .env.NAME."""
    from nself.project import environments

    out = runtime.output(c)
    doc = environments.create(_root(c), name, from_, runtime.options(c).dry_run)
    if planned(out, doc):
        return
    out.emit(doc, render=lambda d: out.say(
        f"created environment {d['environment']}: {d['nself_yml']} and {d['env_file']}"
        + (f" (from {d['env_file_from']})" if d["env_file_from"] else "")))


@task(positional=["name"], help={"name": "the environment commands use when --env is not given"})
def switch(c, name):
    """Make NAME the default environment (environments.default in nself.yml)."""
    from nself.project import environments

    out = runtime.output(c)
    doc = environments.switch(_root(c), name, runtime.options(c).dry_run)
    if planned(out, doc):
        return

    def render(d):
        out.say(f"default environment: {d['default']}")
        if d["shadowed_by"]:
            out.say(f"note: {d['shadowed_by']}; commands use {d['effective']} until that changes")
    out.emit(doc, render=render)


@task(positional=["a", "b"], help={"a": "one environment", "b": "the other environment"})
def diff(c, a, b):
    """Compare two environments' settings and variables (secrets masked)."""
    from nself.project import environments

    out = runtime.output(c)
    project = runtime.load(c)
    doc = environments.diff(project.root, project.name, a, b)
    render_diff(out, doc)


def render_diff(out, doc: dict) -> None:
    """Text or JSON of a diff document (also `config diff`)."""
    a, b = doc["a"], doc["b"]

    def render(d):
        if not d["settings"] and not d["variables"]:
            out.say(f"{a} and {b} have the same settings and variables")
        for kind in ("settings", "variables"):
            if d[kind]:
                out.table([kind[:-1], a, b], [[r["key"], _cell(r[a]), _cell(r[b])] for r in d[kind]])
    out.emit(doc, render=render)   # secrets are masked in the document; redaction stays on as well


def _cell(value) -> str:
    return "(unset)" if value is None else str(value)


ns = Collection("env", list_, create, switch, diff)
ns.configure({"env": {}})
