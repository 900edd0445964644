"""The release layout on a host: `releases/<id>/`, `shared/`, and `current` → the live release.

A release is uploaded into a hidden folder and renamed into place; `current` switches
atomically (a new symlink renamed over the old one); older releases beyond `keep` are
removed, never the live one; rollback points `current` at the previous release.

Steps are built as data (argv, puts) for the server named `host`; they run through a runner,
normally `nself.remote.executor.HostRunner`, which adds sudo when the inventory says so.
"""
from __future__ import annotations

import posixpath
import re

from nself.errors import Exit, NselfError
from nself.plan import Plan, Runner, Step, put, run

_ID = re.compile(r"^[0-9A-Za-z._-]{1,64}$")
_LIST = 'ls -1 "$1" 2>/dev/null; echo --; readlink "$2" 2>/dev/null || true'
_INTO_PLACE = 'test ! -e "$2" && mv "$1" "$2"'


def activate_steps(host: str, base: str, release: str) -> list[Step]:
    """Atomic switch: a new symlink, renamed over `current` (mv -T replaces the link itself)."""
    link, temp = posixpath.join(base, "current"), posixpath.join(base, ".current.nself")
    return [run(f"link {release} beside current", "ln", "-sfn", posixpath.join("releases", release), temp, on=host),
            run(f"make {release} current", "mv", "-Tf", temp, link, on=host)]


def activate_command(base: str, release: str) -> str:
    """The same switch as one shell line, for steps that chain it with others."""
    return " && ".join(step.command_line for step in activate_steps("", base, release))


def list_step(host: str, base: str) -> Step:
    """Prints the release folders, `--`, then where `current` points (a read)."""
    return run("list the releases", "sh", "-c", _LIST, "sh", posixpath.join(base, "releases"),
               posixpath.join(base, "current"), on=host)


def deploy_plan(host: str, base: str, release: str, files: dict[str, bytes]) -> Plan:
    """Upload `files` (relative path → bytes) as release `release` under `base` and make it current."""
    if not _ID.match(release):
        raise NselfError(f"invalid release id {release!r}", code=Exit.USAGE, hint="letters, digits, . _ -")
    staging = posixpath.join(base, "releases", f".{release}.partial")
    target = posixpath.join(base, "releases", release)
    steps = [run("make the release layout", "mkdir", "-p", posixpath.join(base, "releases"),
                 posixpath.join(base, "shared"), on=host),
             run("clear the upload folder", "rm", "-rf", staging, on=host),
             run("make the upload folder", "mkdir", "-p", staging, on=host)]
    for rel, data in sorted(files.items()):
        path = posixpath.join(staging, rel)
        if posixpath.dirname(rel):
            steps.append(run(f"make the folder of {rel}", "mkdir", "-p", posixpath.dirname(path), on=host))
        steps.append(put(f"upload {rel}", path, data, on=host))
    steps.append(run(f"move release {release} into place", "sh", "-c", _INTO_PLACE, "sh", staging, target, on=host))
    return Plan(f"release {release} on {host}", [*steps, *activate_steps(host, base, release)])


def releases(runner: Runner, host: str, base: str) -> tuple[list[str], str | None]:
    """The release ids (sorted) and the current one."""
    result, = Plan(f"list releases on {host}", [list_step(host, base)]).run(runner)
    names, _, current = result.stdout.partition("--\n")
    current = current.strip()
    return sorted(n for n in names.split() if not n.startswith(".")), \
        (posixpath.basename(current) if current else None)


def deploy(runner: Runner, host: str, base: str, release: str, files: dict[str, bytes], keep: int = 5) -> dict:
    plan = deploy_plan(host, base, release, files)
    if release in releases(runner, host, base)[0]:
        raise NselfError(f"release {release!r} exists on {host}", code=Exit.GENERAL,
                         hint="use a new release id, or roll back to it")
    plan.run(runner)
    return {"release": release, "removed": cleanup(runner, host, base, keep)}


def cleanup(runner: Runner, host: str, base: str, keep: int) -> list[str]:
    """Remove the oldest releases beyond `keep`, never the current one."""
    names, current = releases(runner, host, base)
    old = [n for n in names if n != current][: max(0, len(names) - keep)]
    Plan(f"remove old releases on {host}", [
        run(f"remove release {name}", "rm", "-rf", posixpath.join(base, "releases", name), on=host)
        for name in old]).run(runner)
    return old


def rollback(runner: Runner, host: str, base: str, to: str | None = None) -> dict:
    """Point `current` at `to`, else at the release before the current one."""
    names, current = releases(runner, host, base)
    if to is None:
        earlier = [n for n in names if current and n < current]
        if not earlier:
            raise NselfError("there is no earlier release to go back to", code=Exit.GENERAL,
                             hint="releases: " + (", ".join(names) or "none"))
        to = earlier[-1]
    elif to not in names:
        raise NselfError(f"no release {to!r}", code=Exit.GENERAL, hint="releases: " + ", ".join(names))
    Plan(f"roll {host} back to {to}", activate_steps(host, base, to)).run(runner)
    return {"from": current, "to": to}
