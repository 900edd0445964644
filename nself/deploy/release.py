"""A release: what one deploy puts in place, named by the source it came from.

The id is the git short sha, with `-dirty` when the work tree has uncommitted changes (the
same source always gives the same id, so a deploy of an unchanged release changes nothing);
outside git it is `r<UTC timestamp>`. Images are recorded per service, by digest when the
registry or runtime reported one (`name@sha256:…`), else by the tag the release built.
"""
from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nself.errors import Exit, NselfError

RELEASE_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$")


@dataclass(frozen=True)
class Release:
    id: str
    images: Mapping[str, str] = field(default_factory=dict)   # service → image reference

    def __post_init__(self):
        check_id(self.id)

    def to_dict(self) -> dict:
        return {"id": self.id, "images": dict(sorted(self.images.items()))}


def check_id(release: str) -> str:
    if not RELEASE_ID.match(release or ""):
        raise NselfError(f"invalid release id {release!r}", code=Exit.USAGE,
                         hint="letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit")
    return release


def release_id(root: Path) -> str:
    """The id of the source in `root`: `<short sha>[-dirty]`, or `r<UTC timestamp>` outside git."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "--short=12", "HEAD")
    except (FileNotFoundError, subprocess.TimeoutExpired):
        head = None
    if head is None or head.returncode:
        return time.strftime("r%Y%m%d%H%M%S", time.gmtime())
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + ("-dirty" if dirty else "")
