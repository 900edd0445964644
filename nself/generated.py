"""Writing generated trees safely.

The new tree is built in a temporary directory next to the target and moved
into place, so a failure never leaves a half-written tree. The tree carries its
own record of what nself wrote (paths and SHA-256), so a later run — even from
a fresh clone — knows which files the user has edited since and refuses to
overwrite them without `force`. Files the user added are kept.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from nself.errors import NselfError

RECORD = ".nself-generated.json"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_record(target: Path) -> dict[str, str]:
    try:
        return json.loads((target / RECORD).read_text()).get("files", {})
    except (OSError, ValueError):
        return {}


def edited_files(target: Path, record: Mapping[str, str]) -> list[str]:
    """Files nself wrote that have changed (or vanished) since."""
    out = []
    for rel, expected in sorted(record.items()):
        path = target / rel
        if path.is_file() and digest(path.read_bytes()) != expected:
            out.append(rel)
    return out


def _recover(target: Path) -> None:
    """A run killed mid-write leaves `.NAME.new-PID-*` (the unfinished tree) and, mid-swap,
    `.NAME.old-PID` (the previous one). For processes that are gone: put the previous tree
    back if the target is missing, and remove the rest."""
    if not target.parent.is_dir():
        return
    for path in sorted(target.parent.glob(f".{target.name}.*-*")):
        kind, _, rest = path.name[len(target.name) + 2:].partition("-")
        pid = rest.split("-", 1)[0]
        if kind not in ("new", "old") or not pid.isdigit() or _alive(int(pid)):
            continue
        if kind == "old" and not target.exists():
            os.rename(path, target)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:    # another user's process
        return True
    return True


def write_tree(target: Path, files: Mapping[str, bytes], *, force: bool = False,
               generator: str = "nself") -> dict[str, list[str]]:
    """Replace the generated part of `target` with `files`; returns what changed."""
    target = target.resolve()
    _recover(target)
    if target.exists() and not target.is_dir():
        raise NselfError(f"{target} exists and is not a directory", code=3,
                         hint="choose another --output")
    record = read_record(target) if target.is_dir() else {}
    if target.is_dir() and not record and any(target.iterdir()):
        raise NselfError(f"{target} holds files nself did not generate", code=1,
                         hint="choose another --output, or move them away")
    edited = edited_files(target, record)
    if edited and not force:
        raise NselfError(f"{len(edited)} generated file(s) in {target} were edited since nself "
                         "wrote them", code=1, details=edited,
                         hint="keep your edits in an overlay patch, or pass --force to overwrite")
    new_record = {rel: digest(data) for rel, data in sorted(files.items())}
    if record == new_record and not edited and all((target / rel).is_file() for rel in record):
        return {"written": [], "removed": [], "unchanged": sorted(files)}   # nothing to do
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-{os.getpid()}-", dir=target.parent))
    try:
        for rel, data in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            if rel.endswith(".sh"):
                path.chmod(0o755)
        if target.is_dir():  # keep what the user added (not in the record, not generated now)
            for path in sorted(target.rglob("*")):
                rel = path.relative_to(target).as_posix()
                if path.is_file() and rel not in record and rel not in files and rel != RECORD:
                    (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, staging / rel)
        (staging / RECORD).write_text(json.dumps({"generator": generator, "files": new_record},
                                                 indent=1, sort_keys=True) + "\n")
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.rename(target, old)
        try:
            os.rename(staging, target)
        except OSError:
            if old is not None:
                os.rename(old, target)
            raise
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"written": sorted(k for k in files if record.get(k) != new_record[k]),
            "removed": sorted(set(record) - set(files)), "unchanged":
                sorted(k for k in files if record.get(k) == new_record[k])}
