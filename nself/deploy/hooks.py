"""Deploy hooks from `deploy.hooks` in nself.yml: commands run locally, in the project root.

Events: pre-deploy (a failure stops the deploy before anything changed), post-deploy,
on-rollback, on-failure. Each command runs with `sh -c` and these variables set:
NSELF_ENV, NSELF_RELEASE, NSELF_PREVIOUS_RELEASE, NSELF_STRATEGY. Hooks are plan steps,
so `--dry-run` shows them.
"""
from __future__ import annotations

from nself.plan import Step, shell

EVENTS = ("pre-deploy", "post-deploy", "on-rollback", "on-failure")


def hook_env(env: str, release: str, previous: str | None, strategy: str) -> dict[str, str]:
    return {"NSELF_ENV": env, "NSELF_RELEASE": release, "NSELF_PREVIOUS_RELEASE": previous or "",
            "NSELF_STRATEGY": strategy}


def commands(settings, event: str) -> list[str]:
    hooks = settings.section("deploy", "hooks") if settings is not None else None
    return list((hooks or {}).get(event) or [])


def steps(settings, event: str) -> list[Step]:
    """The hook commands of `event` as local steps (hook failures map to exit 1)."""
    return [shell(f"run the {event} hook `{command}`", command, may_fail=event in ("on-failure", "on-rollback"))
            for command in commands(settings, event)]
