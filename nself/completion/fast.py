"""`nself --complete -- WORDS…`: candidates for the last word, from the cache (standard library
only: a completion must answer within ~150 ms, and importing Invoke alone costs more on a busy
machine). WORDS are the command line up to the cursor; the last one is the word being
completed ("" after a space). Candidates are printed one per line, already filtered.

The cache holds the command tree and the project's values, with the signature of the files
they were made from (name, mtime, size); any change rebuilds it through `nself.completion.build`.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

CACHE_NAME = "completion.json"
FORMAT = 1   # bump when the cache's shape changes


def main(argv: list[str]) -> int:
    """The words after `--complete` (an optional `--`, the program name, …, the current word)."""
    words = argv[argv.index("--") + 1:] if "--" in argv else list(argv)
    if words and os.path.basename(words[0]) == "nself":
        words = words[1:]
    words = words or [""]
    try:
        cache = load()
    except (Exception, SystemExit):   # noqa: BLE001 - a completion never prints errors into the shell
        return 0   # (a project's tasks.py may even call sys.exit while it is imported)
    if cache is not None:
        sys.stdout.write("".join(f"{c}\n" for c in candidates(cache, words[:-1], words[-1])))
    return 0


def load(start: Path | None = None) -> dict | None:
    """The cache for the project around `start` (or the built-ins outside a project), rebuilt
    when stale. None when the project does not load (nothing to complete from)."""
    from nself.project import find_root

    root = find_root(start)
    path = cache_path(root)
    signature = files_signature(root)
    try:
        cached = json.loads(path.read_text())
        if cached.get("signature") == signature:
            return cached
    except (OSError, ValueError):
        pass
    from nself.completion import build

    cached = build.build(root)
    if cached is None:
        return None
    cached["signature"] = signature
    build.write(path, cached)
    return cached


def cache_path(root: Path | None) -> Path:
    if root is not None:
        return root / ".nself" / "cache" / CACHE_NAME
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nself" / CACHE_NAME


def files_signature(root: Path | None) -> list:
    """What the cache depends on: nself's version and task modules, and the project's top-level
    YAML/Python files (nself.yml, compose files, tasks.py and what it imports beside it), its
    inventory and its charts."""
    import nself

    here = Path(nself.__file__).parent
    paths = [here / "tasks", *((root, root / "tasks", root / ".nself", root / "charts") if root else ())]
    out: list = [FORMAT, nself.__version__, str(root)]
    for folder in paths:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name.endswith((".py", ".yml", ".yaml")) or folder.name == "charts":
                stat = entry.stat()
                out.append([str(folder.name), entry.name, stat.st_mtime_ns, stat.st_size])
    return out


def candidates(cache: dict, before: list[str], current: str) -> list[str]:
    """Completions of `current` given the words before it."""
    tree, values = cache["tree"], cache["values"]
    if before[:1] == ["help"] and "help" not in tree["tasks"]:   # `nself help cloud pro…`: names only
        names = candidates(cache, before[1:], current)
        return [n for n in names if n in tree["tasks"] or n in tree["groups"] or
                any(n in children for children in tree["groups"].values())]
    task, group, given, i = None, "", 0, 0
    flags = dict(tree["global"])
    while i < len(before):
        word = before[i]
        if word.startswith("-"):
            i += 2 if flags.get(word.split("=")[0]) is not None and "=" not in word else 1
            continue
        name = f"{group}.{word}" if group else word
        if task is not None:
            given += 1
        elif name in tree["groups"]:   # a group before its default task: `deploy to …`
            group = name
        elif name in tree["tasks"] or group in tree["tasks"]:
            task = tree["tasks"].get(name) or tree["tasks"][group]   # else the group's default task
            given = 0 if name in tree["tasks"] else 1
            flags.update(task["flags"])
        i += 1
    previous = before[-1] if before else ""
    if previous.startswith("-") and "=" not in previous and flags.get(previous) is not None:
        return _matching(_values(flags[previous], values), current)
    if task is None and group in tree["tasks"]:   # `cloud servers ` : its tasks, or the default's
        task = tree["tasks"][group]
        flags.update(task["flags"])
        if not current.startswith("-"):
            return _matching(tree["groups"][group] + _positional(task, 0, values), current)
    if current.startswith("-"):
        return _matching(sorted(flags), current)
    if task is not None:
        return _matching(_positional(task, given, values), current)
    children = tree["groups"].get(group, [])
    if not group and "." in current:
        children = sorted(tree["tasks"]) + sorted(g for g in tree["groups"] if g)
    return _matching(children, current)


def _positional(task: dict, given: int, values: dict) -> list[str]:
    """Values for the task's next positional parameter (none once they are all given)."""
    positional = task["positional"]
    return _values(task["kinds"].get(positional[given]), values) if given < len(positional) else []


def _values(kind, values: dict) -> list[str]:
    """A value kind ("environment", …) or an explicit list of choices; "" → nothing known."""
    if isinstance(kind, list):
        return kind
    return values.get(kind or "", [])


def _matching(options: list[str], prefix: str) -> list[str]:
    return [o for o in options if o.startswith(prefix)]
