"""The release layout on a host: `releases/<id>/`, `shared/`, and `current` → the live release.

A release is uploaded into a hidden folder and renamed into place; `current` switches
atomically (a new symlink renamed over the old one); older releases beyond `keep` are
removed, never the live one; rollback points `current` at the previous release.
Commands are built as data (strings) and run by the caller's connection.
"""
from __future__ import annotations

import posixpath
import re
import shlex

from nself.errors import Exit, NselfError
from nself.remote.files import put

_ID = re.compile(r"^[0-9A-Za-z._-]{1,64}$")


def _q(path: str) -> str:
    return shlex.quote(path)


def prepare_command(base: str) -> str:
    return f"mkdir -p {_q(posixpath.join(base, 'releases'))} {_q(posixpath.join(base, 'shared'))}"


def activate_command(base: str, release: str) -> str:
    """Atomic switch: a new symlink, renamed over `current` (mv -T replaces the link itself)."""
    link, temp = posixpath.join(base, "current"), posixpath.join(base, ".current.nself")
    return f"ln -sfn {_q(posixpath.join('releases', release))} {_q(temp)} && mv -Tf {_q(temp)} {_q(link)}"


def list_command(base: str) -> str:
    return (f"ls -1 {_q(posixpath.join(base, 'releases'))} 2>/dev/null; echo '--'; "
            f"readlink {_q(posixpath.join(base, 'current'))} 2>/dev/null || true")


def _run(connection, command: str) -> str:
    result = connection.run(command, hide=True, warn=True, in_stream=False)
    if result.exited:
        raise NselfError(f"{connection.host}: `{command}` failed: {result.stderr.strip()}",
                         code=Exit.GENERAL, hint="check the path and permissions on the host")
    return result.stdout


def releases(connection, base: str) -> tuple[list[str], str | None]:
    names, _, current = _run(connection, list_command(base)).partition("--\n")
    current = current.strip()
    return sorted(n for n in names.split() if not n.startswith(".")), \
        (posixpath.basename(current) if current else None)


def deploy(connection, base: str, release: str, files: dict[str, bytes], keep: int = 5) -> dict:
    if not _ID.match(release):
        raise NselfError(f"invalid release id {release!r}", code=Exit.USAGE, hint="letters, digits, . _ -")
    _run(connection, prepare_command(base))
    staging = posixpath.join(base, "releases", f".{release}.partial")
    target = posixpath.join(base, "releases", release)
    _run(connection, f"rm -rf {_q(staging)} && mkdir -p {_q(staging)}")
    for rel, data in sorted(files.items()):
        path = posixpath.join(staging, rel)
        _run(connection, f"mkdir -p {_q(posixpath.dirname(path))}")
        put(connection, data, path)
    _run(connection, f"test ! -e {_q(target)} && mv {_q(staging)} {_q(target)}")
    _run(connection, activate_command(base, release))
    removed = cleanup(connection, base, keep)
    return {"release": release, "removed": removed}


def cleanup(connection, base: str, keep: int) -> list[str]:
    names, current = releases(connection, base)
    old = [n for n in names if n != current][: max(0, len(names) - keep)]
    for name in old:
        _run(connection, f"rm -rf {_q(posixpath.join(base, 'releases', name))}")
    return old


def rollback(connection, base: str, to: str | None = None) -> dict:
    names, current = releases(connection, base)
    if to is None:
        earlier = [n for n in names if current and n < current]
        if not earlier:
            raise NselfError("there is no earlier release to go back to", code=Exit.GENERAL,
                             hint="releases: " + (", ".join(names) or "none"))
        to = earlier[-1]
    elif to not in names:
        raise NselfError(f"no release {to!r}", code=Exit.GENERAL, hint="releases: " + ", ".join(names))
    _run(connection, activate_command(base, to))
    return {"from": current, "to": to}
