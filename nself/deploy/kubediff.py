"""deploy.preview on Kubernetes: the live objects against the server's dry-run result.

The API server's answer to a server-side apply with `dryRun=All` is exactly what the object
would become (defaults, admission, merges), and nothing is stored. Comparing it with the live
object, minus the fields the server changes on every write (resourceVersion, generation,
managedFields, timestamps) and `status`, gives the changes a deploy would make. Secrets are
compared key by key and only the names of changed keys are shown, never values.
"""
from __future__ import annotations

import base64
import copy
import difflib

from nself.k8s.yamlout import dump

VOLATILE = ("resourceVersion", "generation", "managedFields", "uid", "creationTimestamp")


def comparable(obj: dict) -> dict:
    """`obj` without status and the metadata the server rewrites on every write."""
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata", {})
    for field in VOLATILE:
        meta.pop(field, None)
    notes = meta.get("annotations") or {}
    notes.pop("deployment.kubernetes.io/revision", None)      # the controller's, not nself's
    if not notes:
        meta.pop("annotations", None)
    return out


def change(live: dict | None, result: dict) -> tuple[str, list[str]]:
    """("create" | "update" | "unchanged", unified diff lines) for one object."""
    name = f"{result['kind']}/{result['metadata']['name']}"
    if live is None:
        return "create", [f"+ {name} (new)"]
    live, result = comparable(live), comparable(result)
    if live == result:
        return "unchanged", []
    before, after = dump(live).splitlines(), dump(result).splitlines()
    return "update", list(difflib.unified_diff(before, after, f"live {name}", f"deployed {name}", lineterm="", n=2))


def secret_values(secret: dict) -> dict[str, bytes]:
    """A Secret's values as bytes, from `data` (base64, as a cluster stores them) and `stringData`."""
    values = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    values.update({k: str(v).encode() for k, v in (secret.get("stringData") or {}).items()})
    return values


def secret_change(live: dict | None, wanted: dict) -> tuple[str, list[str]]:
    """Which keys of a Secret a deploy would add or change (names only)."""
    name = f"Secret/{wanted['metadata']['name']}"
    if live is None:
        return "create", [f"+ {name} (new; keys {', '.join(sorted(wanted.get('stringData', {})))})"]
    old, new = secret_values(live), secret_values(wanted)
    changed = sorted(k for k, v in new.items() if old.get(k) != v)
    if not changed:
        return "unchanged", []
    return "update", [f"~ {name}: keys {', '.join(changed)} would change (values not shown)"]
