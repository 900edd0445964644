"""Short flags with one meaning across nself: those kubectl and helm users already know.

Invoke gives every option a short flag from its first free letter, so `-n` meant `--name` in
one task and `--namespace` in the next, and `-o` meant `--atomic`. nself's own tasks keep
only the conventional ones below (kubectl: -n, -A, -c, -f, -l, -w; helm: -n, -f), plus -e for
the environment everywhere; every other option is long-only. A project's own tasks keep
Invoke's defaults.
"""
from __future__ import annotations

from invoke import Collection, Task

CONVENTIONAL = {"namespace": "n", "all_namespaces": "A", "container": "c", "file": "f",
                "values": "f", "follow": "f", "selector": "l", "watch": "w", "environment": "e"}


def arguments(task: Task) -> list:
    """`task.get_arguments()` without using up its help: Invoke pops each option's help text
    while it builds the arguments, so a second call (the parser's, after a first look at the
    options) would print `--help` without any."""
    kept = dict(task.help)
    try:
        return task.get_arguments()
    finally:
        task.help = kept


class ConventionalTask(Task):
    """A Task whose short flags come from CONVENTIONAL instead of the first free letter."""

    def arg_opts(self, name, default, taken_names):
        opts = super().arg_opts(name, default, taken_names)
        short = CONVENTIONAL.get(name)
        opts["names"] = opts["names"][:1] + ([short] if short and short not in taken_names else [])
        return opts


def conventional_short_flags(ns: Collection) -> None:
    """Give every task of `ns` (recursively) the conventional short flags only."""
    for task in ns.tasks.values():
        task.__class__ = ConventionalTask    # same state; only arg_opts differs
    for sub in ns.collections.values():
        conventional_short_flags(sub)
