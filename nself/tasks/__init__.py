"""nself's Invoke collections and the default namespace.

A project's tasks.py builds its own `ns` from these (see `namespace()`), and may
replace single tasks with `override()` or add collections with `mount()`;
both work on copies, so the library's collections are never changed in place.
"""
from __future__ import annotations

import copy

from invoke import Collection, Task

from nself.tasks.flags import conventional_short_flags

BUILTINS = ("config", "blueprint", "env", "service", "monitor")


def namespace(*, include=None, project_config_too: bool = True) -> Collection:
    """nself's default namespace: every collection (or those named in `include`).

    Under plain `inv`, Invoke reads only invoke.yaml and INVOKE_*: the namespace
    therefore carries the project's nself.yml (and NSELF_* overrides of its keys)
    as collection configuration itself (unless `project_config_too` is False: the Program
    leaves out an nself.yml that Invoke cannot merge, for the commands that repair it).
    """
    from nself.tasks import blueprint, doctor

    modules = _modules()
    chosen = include or modules
    ns = Collection()
    ns.add_task(copy.deepcopy(blueprint.new))
    ns.add_task(copy.deepcopy(doctor.doctor))
    for name in chosen:
        sub = copy.deepcopy(modules[name].ns)
        sub.__doc__ = modules[name].__doc__   # the group's line in `nself help` (Invoke reads __doc__)
        ns.add_collection(sub)
    if project_config_too:
        ns.configure(_project_config_or_exit())
    _exit_cleanly_under_inv(ns)
    conventional_short_flags(ns)
    return ns


def _modules() -> dict:
    from nself.tasks import blueprint, cloud, config, deploy, env, helm, k8s, monitor, service, sync
    from nself.tasks import ci, db

    return {"config": config, "blueprint": blueprint, "k8s": k8s, "helm": helm, "cloud": cloud,
            "deploy": deploy, "sync": sync, "env": env, "db": db, "ci": ci, "service": service,
            "monitor": monitor}


def defaults() -> dict:
    """What nself.yml is merged over: Invoke's defaults (`run`, `sudo`, `tasks`, …) and those of
    nself's collections (`k8s`, `db`, …), without nself.yml itself. A write of nself.yml checks
    against these with `settings.check_defaults`, as the Program does when it loads the file."""
    from nself.cli import NselfConfig, _collection_defaults

    out = NselfConfig.global_defaults()
    for module in _modules().values():
        out.update(_collection_defaults(module.ns))
    return out


def _exit_cleanly_under_inv(ns: Collection) -> None:
    """Under `nself`, the Program reports an NselfError (text or --json) with its exit code.
    Plain `inv` knows only Invoke's `Exit`: without this, it would print a traceback and exit
    1. So, for tasks run by another Program, the error becomes an Exit with the same text and code."""
    import functools

    from invoke.exceptions import Exit

    from nself.cli import NselfConfig
    from nself.errors import NselfError

    def wrap(body):
        @functools.wraps(body)
        def run(c, *args, **kwargs):
            try:
                return body(c, *args, **kwargs)
            except NselfError as exc:
                if isinstance(c.config, NselfConfig):
                    raise
                raise Exit(f"error: {exc}", code=exc.code) from None
        return run

    for task in ns.tasks.values():
        task.body = wrap(task.body)
    for sub in ns.collections.values():
        _exit_cleanly_under_inv(sub)


def _project_config_or_exit() -> dict:
    """project_config(), or Invoke's clean Exit: under plain `inv` an error raised while tasks.py
    is imported would otherwise end in a traceback (the nself Program checks nself.yml first)."""
    from nself.errors import NselfError

    try:
        return project_config()
    except NselfError as exc:
        from invoke.exceptions import Exit

        raise Exit(f"error: {exc}", code=exc.code) from None


def project_config() -> dict:
    """nself.yml of the project around the working directory, with NSELF_* overrides."""
    import os

    from nself.project import find_root, settings, yamlio

    root = find_root()
    if root is None:
        return {}
    path = settings.find(root)
    data = {}
    if path is not None:
        data, _ = yamlio.load(path, "nself.yml")
        data = dict(data) if isinstance(data, dict) else {}
    data["nself"] = {**data.get("nself", {}), "root": str(root)}
    _env_overrides(data, "NSELF", os.environ)
    return data


def _env_overrides(node: dict, prefix: str, environ) -> None:
    """Invoke's rule: NSELF_A_B overrides the existing key a.b (never creates keys)."""
    for key, value in node.items():
        name = f"{prefix}_{str(key).upper()}"
        if isinstance(value, dict):
            _env_overrides(value, name, environ)
        elif name in environ:
            raw = environ[name]
            node[key] = raw.lower() in ("1", "true", "yes") if isinstance(value, bool) else \
                type(value)(raw) if isinstance(value, (int, float)) else raw


def _parent(ns: Collection, path: str) -> tuple[Collection, str]:
    *parents, name = path.split(".")
    node = ns
    for part in parents:
        if part not in node.collections:
            raise KeyError(f"no collection {part!r} in {path!r}")
        node = node.collections[part]
    return node, name


def override(ns: Collection, path: str, task: Task) -> Collection:
    """Replace the task at dotted `path` (e.g. "deploy.canary") in a copy of `ns`.

    Invoke's `add_task` with an existing name replaces silently and mutates
    shared collections; this refuses unknown paths and leaves `ns` untouched.
    """
    new = copy.deepcopy(ns)
    parent, name = _parent(new, path)
    if name not in parent.tasks:
        raise KeyError(f"no task {path!r} to override; use mount() to add new tasks")
    was_default = parent.default == name
    del parent.tasks[name]
    parent.add_task(task, name=name, default=was_default or None)
    return new


def mount(ns: Collection, collection: Collection, name: str | None = None) -> Collection:
    """Add `collection` to a copy of `ns`.

    Where nself already has a collection of that name (a project's own `db` from before nself
    had one), the two are merged: the project's tasks are added, and a task both define is the
    project's (as override() would make it), so a newer nself never breaks a project's
    tasks.py. A name that is a task is refused (KeyError)."""
    new = copy.deepcopy(ns)
    name = name or collection.name
    if name in new.tasks:
        raise KeyError(f"{name!r} is a task; use override() to replace it")
    if name not in new.collections:
        new.add_collection(collection, name=name)
        return new
    _merge(new.collections[name], collection)
    return new


def _merge(into: Collection, extra: Collection) -> None:
    for task_name, task in extra.tasks.items():
        into.tasks.pop(task_name, None)
        into.add_task(task, name=task_name, default=extra.default == task_name or None)
    for sub_name, sub in extra.collections.items():
        if sub_name in into.collections:
            _merge(into.collections[sub_name], sub)
        else:
            into.add_collection(sub, name=sub_name)
