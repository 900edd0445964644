"""The completion cache: the command tree of the loaded collection (the project's tasks.py
included) and the values the project offers, as plain JSON for `nself.completion.fast`.

Which values a parameter takes comes from its name (`env`, `environment`, `service`,
`provider`, …), from the rules below for names that mean different things in different
groups (`name` is a server in `cloud.servers`, a release in `helm`), or from a task's own
`completion = {"param": "kind" | [choices]}` attribute — the way a project's task says it.
"""
from __future__ import annotations

import fnmatch
import json
import os
import tempfile
from pathlib import Path

from nself.errors import NselfError

KINDS = ("environment", "service", "server", "provider", "release")
BY_NAME = {"env": "environment", "environment": "environment", "service": "service",
           "provider": "provider", "server": "server"}
# (task pattern, parameter) → kind or choices; the first match wins, before BY_NAME
RULES = (
    ("sync.*", ("source", "target"), "environment"),
    ("deploy.promote", ("source", "destination"), "environment"),
    ("env.diff", ("a", "b"), "environment"),
    ("env.create", ("from_",), "environment"),
    ("env.switch", ("name",), "environment"),
    ("cloud.servers.add", ("name",), ""),
    ("cloud.servers.*", ("name", "hosts"), "server"),
    ("cloud.providers.*", ("name",), "provider"),
    ("k8s.k3s.*", ("host", "server_name"), "server"),
    ("helm.repo.*", ("name",), ""),
    ("helm.init", ("name",), ""),
    ("helm.*", ("name",), "release"),
    ("config.export", ("format",), ["yaml", "json", "env"]),
)


def build(root: Path | None) -> dict | None:
    """The cache document for the project at `root` (None when its tasks do not load)."""
    try:
        collection = _collection(root)
    except NselfError:
        return None
    return {"tree": tree(collection), "values": values(root)}


def _collection(root: Path | None):
    """The collection exactly as `nself` loads it for this directory."""
    from nself.cli import NselfConfig, NselfProgram
    from nself import __version__

    program = NselfProgram(name="nself", binary="nself", binary_names=["nself"],
                           version=__version__, config_class=NselfConfig)
    program.create_config()
    program.parse_core(["nself", *(["--search-root", str(root)] if root else [])])
    program.parse_collection()
    return program.collection


def kind_of(task_name: str, task, param: str):
    own = getattr(task, "completion", None) or {}
    if param in own:
        return own[param]
    for pattern, params, kind in RULES:
        if param in params and fnmatch.fnmatchcase(task_name, pattern):
            return kind
    return BY_NAME.get(param, "")


def tree(collection) -> dict:
    """{"global": {flag: kind|None}, "tasks": {name: {...}}, "groups": {path: [child names]}}."""
    from nself.cli import GLOBAL_FLAGS

    tasks = {}
    for context in collection.to_contexts():
        task = collection[context.name]
        flags = {}
        for flag, arg in context.flags.items():
            param = arg.name.replace("-", "_")
            flags[flag] = kind_of(context.name, task, _param(task, param)) if arg.takes_value else None
        for flag in context.inverse_flags:
            flags[flag] = None
        entry = {"positional": [_param(task, p) for p in task.positional], "flags": flags,
                 "kinds": {p: kind_of(context.name, task, p) for p in map(lambda p: _param(task, p),
                                                                          task.positional)}}
        for name in (context.name, *context.aliases):
            tasks[name] = entry
    global_flags = {f"--{f}": ("environment" if f == "env" else "" if kind is str else None)
                    for f, kind in GLOBAL_FLAGS.items()}
    global_flags.update({"--help": None, "--list": None, "--version": None, "--debug": None})
    groups = _groups(collection, "")
    if "help" not in groups[""]:   # `nself help [GROUP [TASK]]`, answered by the Program
        groups[""] = sorted([*groups[""], "help"])
    return {"global": global_flags, "tasks": tasks, "groups": groups}


def _param(task, name: str) -> str:
    """Invoke strips a trailing `_` (`from_` → --from): the body's parameter name."""
    import inspect

    params = inspect.signature(task.body).parameters
    return f"{name}_" if name not in params and f"{name}_" in params else name


def _groups(collection, path: str) -> dict:
    children = sorted([*collection.collections, *collection.tasks,
                       *(a for t in collection.tasks.values() for a in t.aliases)])
    out = {path: children}
    for name, sub in collection.collections.items():
        out.update(_groups(sub, f"{path}.{name}" if path else name))
    return out


def values(root: Path | None) -> dict:
    """The project's names in their files' order, each kind on its own: one that does not load is empty."""
    readers = {"environment": _environments, "service": _services, "server": _servers,
               "provider": _providers, "release": _releases}
    out = {}
    for kind, read in readers.items():
        try:
            out[kind] = list(dict.fromkeys(read(root))) if (root is not None or kind == "provider") else []
        except (NselfError, OSError, ValueError, TypeError, AttributeError):
            out[kind] = []
    return out


def _environments(root: Path) -> list[str]:
    from nself.project import environments, settings

    return environments.names(settings.load(root))


def _services(root: Path) -> list[str]:
    from nself.project import yamlio
    from nself.project.compose import default_files

    names = []
    for path in default_files(root):
        data, _ = yamlio.load(path, "compose file", compose=True)
        names += list((data or {}).get("services") or {})
    return names


def _servers(root: Path) -> list[str]:
    from nself.remote import inventory

    return list(inventory.load(root))


def _providers(root) -> list[str]:
    from nself.providers import registry

    return list(registry.NAMES)


def _releases(root: Path) -> list[str]:
    """helm.release, else the chart's name (as helm.install chooses), and the charts in charts/."""
    from nself.project import settings

    data = settings.load(root)
    names = [data.section("helm", "release"), data.section("helm", "chart", "name")]
    charts = root / "charts"
    names += [p.name for p in charts.iterdir() if p.is_dir()] if charts.is_dir() else []
    return [n for n in names if n]


def write(path: Path, document: dict) -> None:
    """Atomically, and quietly: a read-only project still completes, only slower."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".completion.", dir=path.parent)
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle)
        os.replace(tmp, path)
    except OSError:
        pass
