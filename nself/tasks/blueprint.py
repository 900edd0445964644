"""blueprint: create projects (`nself new`), add blueprints, keep projects up to date."""
from __future__ import annotations

from pathlib import Path

from invoke import Collection, task

from nself import runtime


@task(positional=["name"], iterable=["extra"], help={
    "name": "project name (lowercase letters, digits, '-')",
    "blueprint": "blueprint to start from (default project)",
    "no_input": "take the defaults (and --extra) without asking; stack=minimal is then PostgreSQL alone",
    "extra": "answer a blueprint question, KEY=VALUE (repeatable), e.g. stack=minimal",
    "output": "folder to create the project in (default: here)"})
def new(c, name, blueprint="project", no_input=False, extra=None, output="."):
    """Create a new project from a blueprint."""
    from nself.scaffold import new as create

    out = runtime.output(c)
    report = create(name, blueprint=blueprint, no_input=no_input, extra=extra or [],
                    output=Path(output).resolve())
    out.emit(report, render=lambda d: out.say(
        f"created {d['path']}\n  cd {d['path']} && nself config.validate && nself --list"))


@task(name="list", default=True)
def list_(c):
    """List the blueprints nself ships."""
    from nself.scaffold import available

    out = runtime.output(c)
    out.emit(available(), render=lambda d: out.table(["blueprint", "what it gives"],
                                                     [[b["name"], b["description"]] for b in d]))


@task(positional=["name"], help={"name": "k8s, helm or provider:<name>",
                                 "force": "overwrite generated files you edited"})
def add(c, name, force=False):
    """Add a blueprint (k8s, helm, provider:<name>) to this project."""
    from nself.errors import UsageError

    out = runtime.output(c)
    project = runtime.load(c)
    if name == "k8s":
        from nself.k8s.generate import Options, generate

        report = generate(project, Options(force=force))
    elif name == "helm":
        from nself.helm.init import InitOptions, init

        report = init(project, InitOptions(force=force))
    elif name.startswith("provider:"):
        from nself.scaffold import add_provider

        report = add_provider(project.root, name.split(":", 1)[1], project.name, force)
    else:
        raise UsageError(f"no blueprint {name!r} to add", hint="use k8s, helm or provider:<name>")
    out.emit(report, render=lambda d: out.say(f"{d['output']}: {len(d['written'])} written, "
                                              f"{len(d['unchanged'])} unchanged"))


@task
def update(c):
    """Merge the template's changes into this project, keeping your edits."""
    from nself.scaffold import update as merge

    out = runtime.output(c)
    report = merge(_root(c))
    out.emit(report, render=lambda d: out.say(
        "up to date" if not d["merged"] and not d["kept"] else
        f"merged: {', '.join(d['merged']) or 'nothing'}" +
        (f"\nkept as you left them: {', '.join(d['kept'])}" if d["kept"] else "")))


@task
def check(c):
    """Fail (exit 1) when the project is behind its template (for CI)."""
    from nself.errors import NselfError
    from nself.scaffold import check as behind

    out = runtime.output(c)
    report = behind(_root(c))
    out.emit(report, render=lambda d: out.say("up to date with the template" if not d["behind"] else
                                              "behind the template: " + ", ".join(d["files"])))
    if report["behind"]:
        raise NselfError(f"the project is behind its template ({len(report['files'])} file(s))",
                         hint="run `nself blueprint.update`", reported=True)


def _root(c) -> Path:
    from nself.errors import ConfigError
    from nself.project import find_root

    root = runtime.options(c).root or find_root()
    if root is None:
        raise ConfigError("not inside an nself project", hint="cd into a project made by `nself new`")
    return Path(root)


ns = Collection("blueprint", list_, add, update, check)
ns.configure({"blueprint": {}})
