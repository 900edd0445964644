"""The old top-level commands (nself 0.4.6) and where they live now: the product plan's table
(Part 3.2, "Legacy"). The `nself` Program rewrites an alias's words into its target's, warns on
stderr, and runs the target with the same arguments, so the exit code is the target's.

The `service` and `monitor` groups exist (nself/tasks/service.py, monitor.py): `nself email
enable` runs `nself service email enable`. Their sub-commands that the plan names but that are
not built yet (`monitor open`, `monitor alerts`, …) are recognised and refused plainly (exit 2)
instead of "No idea what …".
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

# A new group's sub-commands (Part 3.2): `nself monitor status` is the group, `nself monitor`
# and `nself monitor grafana` are the old alias.
GROUP_WORDS: dict[str, tuple[str, ...]] = {"monitor": ("status", "enable", "profile", "open", "alerts")}

# Commands of the plan (Part 3.2) not built yet → the issue that brings them.
PLANNED: dict[tuple[str, ...], str] = {
    ("monitor", "open"): "issue 15", ("monitor", "alerts"): "issue 15",
    ("service", "email", "providers"): "issue 15",
    ("service", "functions", "init"): "issue 15", ("service", "functions", "create"): "issue 15",
    ("service", "functions", "test"): "issue 15",
    ("service", "mlflow", "runs"): "issue 15", ("service", "mlflow", "models"): "issue 15",
    ("service", "admin", "open"): "issue 15",
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
    new group) and a bare `nself monitor` (the group's help) are not the alias, `nself monitor
    grafana` is.
    """
    first = next((i for i, w in enumerate(words) if not w.startswith("-")), None)
    if first is None:
        return words, None
    alias, rest = words[first], words[first + 1:]
    if alias not in ALIASES:
        return words, None
    if alias in GROUP_WORDS:   # nself's own group of that name is in `taken`: the words decide
        if not rest or rest[0].startswith("-") or rest[0] in GROUP_WORDS[alias]:
            return words, None
    elif alias in taken:
        return words, None
    return [*words[:first], *ALIASES[alias], *rest], alias


def refuse_planned(words: list[str], known: set[str]) -> None:
    """Exit 2 for a planned command that is not built (`nself monitor open grafana`). `known`
    are the loaded collection's task names (dotted): a project's own task of that name wins."""
    lead = []
    for word in words:
        if word.startswith("-"):
            break
        lead += word.split(".")
    for command, issue in PLANNED.items():
        if tuple(lead[:len(command)]) == command and ".".join(command) not in known:
            raise UsageError(f"'nself {' '.join(command)}' is not built yet: it comes with {issue}",
                             hint=f"nothing ran; `nself help {command[0]}` lists what {command[0]} does today")


def table() -> list[dict]:
    """`nself help legacy`: every alias, its new home, and when it goes."""
    return [{"alias": a, "use": " ".join(t), "removed_in": REMOVED_IN} for a, t in ALIASES.items()]
