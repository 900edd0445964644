"""Documents already found valid against a JSON Schema, by content hash: remembered in this
process and in the user's cache directory (`$XDG_CACHE_HOME/nself/valid-<kind>/`), so an
unchanged project skips jsonschema — its import alone took 0.3–0.7 s of every command on a
busy machine. Only valid documents are remembered (an invalid one is checked every time, for
its messages); the key holds the schema's own fingerprint, so a changed schema checks again.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

_VALID: set[str] = set()


def key(kind: str, schema: str, data) -> str:
    """The hash of `data` (JSON-able; other values as text) under schema fingerprint `schema`."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{kind}\0{schema}\0{text}".encode()).hexdigest()


def _marker(kind: str, digest: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "nself", f"valid-{kind}", digest[:2], digest[2:])


def known(kind: str, digest: str) -> bool:
    if digest in _VALID:
        return True
    if _marker(kind, digest).is_file():
        _VALID.add(digest)
        return True
    return False


def remember(kind: str, digest: str) -> None:
    _VALID.add(digest)
    marker = _marker(kind, digest)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:  # a read-only home only costs speed
        pass
