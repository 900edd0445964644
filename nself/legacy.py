"""The old top-level commands (nself 0.4.6) and where they live now: the product plan's table
(Part 3.2, "Legacy"). The `nself` Program rewrites an alias's words into its target's, warns on
stderr, and runs the target with the same arguments, so the exit code is the target's.

The `monitor` group is planned (issue 15) and not built: its words are recognised and refused
plainly (exit 2) instead of "No idea what 'monitor' is". The `service` group exists
(nself/tasks/service.py): `nself email enable` runs `nself service email enable`.
"""
from __future__ import annotations

from nself.errors import UsageError

REMOVED_IN = "v0.5.0"

# alias → the words of its new home (product plan Part 3.2)
ALIASES: dict[str, tuple[str, ...]] = {
    "staging": ("deploy", "staging"),
    "prod": ("deploy", "prod"),
    "providers": ("cloud", "providers"),
    "provision": ("cloud", "provision"),
    "servers": ("cloud", "servers"),
    "email": ("service", "email"),
    "search": ("service", "search"),
    "functions": ("service", "functions"),
    "mlflow": ("service", "mlflow"),
    "admin": ("service", "admin"),
    "metrics": ("monitor",),
    "monitor": ("monitor", "open"),
}

# groups of the plan that are not built yet, with their sub-commands (Part 3.2) and issue
PLANNED: dict[str, tuple[tuple[str, ...], str]] = {
    "monitor": (("status", "enable", "profile", "open", "alerts"), "issue 15"),
}


def warning(alias: str) -> str:
    """The plan's deprecation sentence for `alias`."""
    target = " ".join(ALIASES[alias])
    return (f"Warning: 'nself {alias}' is deprecated. Use 'nself {target}' instead. "
            f"This alias will be removed in {REMOVED_IN}")


def rewrite(words: list[str], taken: set[str]) -> tuple[list[str], str | None]:
    """`["staging", "--release", "r1"]` → (`["deploy", "staging", "--release", "r1"]`, "staging").

    `words` are the command-line words after the global flags; `taken` are the names the loaded
    collection defines at its top level: a project's own `staging` task wins over the alias.
    `monitor` is both an alias and the new group: `nself monitor status` (a sub-command of the
    new group) is not the alias, `nself monitor` and `nself monitor grafana` are.
    """
    first = next((i for i, w in enumerate(words) if not w.startswith("-")), None)
    if first is None:
        return words, None
    alias = words[first]
    if alias not in ALIASES or alias in taken:
        return words, None
    rest = words[first + 1:]
    if alias in PLANNED and rest and rest[0] in PLANNED[alias][0]:
        return words, None
    return [*words[:first], *ALIASES[alias], *rest], alias


def refuse_planned(words: list[str], taken: set[str]) -> None:
    """Exit 2 for a planned group that is not built (`nself monitor status`)."""
    first = next((w for w in words if not w.startswith("-")), None)
    if first in PLANNED and first not in taken:
        subs, issue = PLANNED[first]
        command = " ".join(w for w in words if not w.startswith("-"))
        raise UsageError(f"'nself {command}' is not built yet: the `{first}` group "
                         f"({', '.join(subs)}) comes with {issue}",
                         hint="nothing ran; `nself help` lists the groups that exist today")


def table() -> list[dict]:
    """`nself help legacy`: every alias, its new home, and when it goes."""
    return [{"alias": a, "use": " ".join(t), "removed_in": REMOVED_IN} for a, t in ALIASES.items()]
