"""What a task needs from its Invoke context: global options, output, the project.

Global flags reach tasks through config (`c.nself.*`), set by the `nself`
Program; under plain `inv` the same options come from `NSELF_*` variables.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nself.errors import UsageError
from nself.ui import Output

DEFAULTS = {"env": None, "json": False, "yes": False, "dry_run": False, "verbosity": None,
            "root": None, "remainder": []}
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Options:
    env: str | None
    json: bool
    yes: bool
    dry_run: bool
    verbosity: str
    root: Path | None
    remainder: tuple[str, ...]   # what followed `--` (a command, word by word)


def options(c) -> Options:
    cfg = _section(c)

    def flag(key: str) -> bool:
        return bool(cfg.get(key)) or os.environ.get(f"NSELF_{key.upper()}", "").lower() in _TRUE

    verbosity = cfg.get("verbosity") or os.environ.get("NSELF_LOG_LEVEL", "").lower() or "normal"
    if verbosity not in ("quiet", "normal", "verbose", "debug"):
        raise UsageError(f"invalid NSELF_LOG_LEVEL {verbosity!r}",
                         hint="use quiet, normal, verbose or debug")
    root = cfg.get("root")
    return Options(env=cfg.get("env") or None, json=flag("json"), yes=flag("yes"),
                   dry_run=flag("dry_run") or _invoke_dry(c), verbosity=verbosity,
                   root=Path(root) if root else None, remainder=tuple(cfg.get("remainder") or ()))


def _invoke_dry(c) -> bool:
    """Invoke's own `inv --dry` (run.dry: echo instead of run) means a dry run for nself too."""
    try:
        return bool(c.config.run.dry)
    except AttributeError:
        return False


def _section(c) -> dict:
    try:
        return dict(c.config.get("nself") or {})
    except AttributeError:
        return {}


def output(c) -> Output:
    """One Output per context, so secrets registered once are redacted everywhere."""
    cached = c.__dict__.get("_nself_output")
    if cached is None:
        opts = options(c)
        cached = Output(json_mode=opts.json, verbosity=opts.verbosity)
        # A plain attribute: Invoke's Context would store `c.x = …` in its config (a copy).
        object.__setattr__(c, "_nself_output", cached)
    return cached


def load(c, *, env: str | None = None, files: Iterable[str] | None = (),
         profiles: Iterable[str] | None = ()):
    """The project of this invocation, its secrets registered with the output. (Tasks called
    from Python rather than the command line pass None for empty list arguments.)"""
    from nself.project import load_project

    opts = options(c)
    project = load_project(opts.root, env=env or opts.env, files=files or (), profiles=profiles or ())
    out = output(c)
    out.add_secrets(project.variables.secret_values())
    for svc in project.services.values():
        out.add_secrets(svc.environment[k] for k in svc.secret_env)
    return project


def confirm(c, question: str) -> bool:
    """Ask before a destructive step; refuse without a TTY unless --yes."""
    opts = options(c)
    if opts.yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(f"{question} needs confirmation and there is no terminal to ask on",
                         hint="pass --yes to confirm")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def guard_production(c, env: str, action: str, force_production: bool) -> None:
    """Overwriting production needs --force-production (CI), or --yes AND its typed name at a
    prompt; a dry run needs neither. `action` names what is asked ("restoring into production")."""
    if env != "production" or force_production or options(c).dry_run:
        return
    hint = "pass --yes and type `production` when asked, or --force-production in CI"
    if not options(c).yes or not sys.stdin.isatty():
        raise UsageError(f"{action} needs --yes and the typed name of the environment", hint=hint)
    if input("type the name of the environment to overwrite: ").strip() != "production":
        raise UsageError("the typed name was not `production`: nothing was changed", hint=hint)
