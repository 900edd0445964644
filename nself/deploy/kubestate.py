"""A Kubernetes environment's deploy state, kept in its own namespace.

- The lock: a `coordination.k8s.io/v1` Lease `<project>-deploy-lock`. Taking it is a create
  (atomic on the API server: a second create answers 409 AlreadyExists, and the holder is
  named from the Lease's annotations); `clear` deletes it whoever holds it. No renewal and no
  lease duration: a deploy lock is held until released or cleared by `deploy.unlock`.
- The audit history: the ConfigMap `<project>-deploy-history`, `data["history.jsonl"]` one
  JSON line per deploy (oldest first, the last HISTORY_LINES kept), `binaryData` the pod
  templates of the last `keep` releases (nself.deploy.kubeplan.templates_key).
Neither carries nself's environment labels, so `k8s.apply --prune` never deletes them.
"""
from __future__ import annotations

import json

from nself.deploy.core import Lock, LockHeld
from nself.deploy.kubeplan import HISTORY, LOCK, templates_key
from nself.errors import Exit, NselfError
from nself.k8s.resources import BY_KIND

LEASE = BY_KIND[("coordination.k8s.io/v1", "Lease")]
CONFIGMAP = BY_KIND[("v1", "ConfigMap")]
NAMESPACE = BY_KIND[("v1", "Namespace")]
HOLDER = "nself.io/lock-"                 # annotation prefix: who, since, what, release
HISTORY_LINES = 100                       # ~300 bytes each: far below a ConfigMap's 1 MiB
LABELS = {"app.kubernetes.io/managed-by": "nself"}


def status_of(exc: NselfError) -> int | None:
    """The HTTP status of an API refusal (set by nself.k8s.cluster), None for other failures."""
    return getattr(exc, "status", None)


def get_or_none(cluster, res, namespace: str | None, name: str) -> dict | None:
    """The object, or None when the API answers 404."""
    try:
        return cluster.get(res, namespace, name)
    except NselfError as exc:
        if status_of(exc) == 404:
            return None
        raise


class LeaseLock(Lock):
    def __init__(self, cluster, namespace: str, project: str, env: str):
        self.cluster, self.namespace, self.env = cluster, namespace, env
        self.name = LOCK.format(project=project)
        self.uid: str | None = None

    def acquire(self, holder: dict) -> None:
        since = holder.get("since", "")
        body = {"apiVersion": LEASE.api_version, "kind": "Lease",
                "metadata": {"name": self.name, "labels": LABELS,
                             "annotations": {HOLDER + k: str(v) for k, v in sorted(holder.items())}},
                "spec": {"holderIdentity": str(holder.get("who", "")),
                         **({"acquireTime": since.replace("Z", ".000000Z")} if since.endswith("Z") else {})}}
        try:
            created = self._create(body)
        except NselfError as exc:
            if status_of(exc) != 409:
                raise
            raise LockHeld(self.env, self.read() or {"who": "someone (the lock vanished meanwhile)"}) from None
        self.uid = created["metadata"].get("uid")

    def _create(self, body: dict) -> dict:
        try:
            return self.cluster.request("POST", LEASE.path(self.namespace), body=body)
        except NselfError as exc:
            if status_of(exc) != 404:
                raise
        # The environment's first deploy: its namespace does not exist yet (the deploy would
        # create it a moment later; the lock has to live somewhere first).
        self.cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}, None)
        return self.cluster.request("POST", LEASE.path(self.namespace), body=body)

    def release(self) -> None:
        if self.uid is None:
            return
        holder = self._get()
        if holder is not None and holder["metadata"].get("uid") == self.uid:   # still ours
            self._delete()
        self.uid = None

    def read(self) -> dict | None:
        lease = self._get()
        if lease is None:
            return None
        notes = lease["metadata"].get("annotations") or {}
        found = {k[len(HOLDER):]: v for k, v in notes.items() if k.startswith(HOLDER)}
        return found or {"who": lease.get("spec", {}).get("holderIdentity", "?")}

    def clear(self) -> dict | None:
        holder = self.read()
        if holder is not None:
            self._delete()
        return holder

    def _get(self) -> dict | None:
        return get_or_none(self.cluster, LEASE, self.namespace, self.name)

    def _delete(self) -> None:
        try:
            self.cluster.delete(LEASE, self.namespace, self.name)
        except NselfError as exc:
            if status_of(exc) != 404:
                raise


class History:
    """The environment's deploy records and saved pod templates (one ConfigMap)."""

    def __init__(self, cluster, namespace: str, project: str, keep: int):
        self.cluster, self.namespace, self.keep = cluster, namespace, keep
        self.name = HISTORY.format(project=project)

    def read(self) -> dict | None:
        return get_or_none(self.cluster, CONFIGMAP, self.namespace, self.name)

    def records(self) -> list[dict]:
        found = self.read()
        text = ((found or {}).get("data") or {}).get("history.jsonl", "")
        out = []
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue           # a line someone edited by hand: skip it, keep the rest
            if isinstance(entry, dict):
                out.append(entry)
        return out

    def templates(self, release: str) -> str | None:
        """The saved templates of `release` (encoded), or None."""
        return ((self.read() or {}).get("binaryData") or {}).get(templates_key(release))

    def save_templates(self, release: str, encoded: str) -> None:
        """Keep a release's pod templates (a merge patch adds one binaryData key)."""
        self._ensure()
        self.cluster.patch(CONFIGMAP, self.namespace, self.name, {"binaryData": {templates_key(release): encoded}})

    def append(self, record: dict) -> None:
        """Add one line; keep the last HISTORY_LINES lines and the templates of the last `keep`
        releases deployed. A concurrent writer (409 on the resourceVersion) makes it retry."""
        for _ in range(3):
            current = self.read() or self._ensure()
            lines = [*((current.get("data") or {}).get("history.jsonl", "")).splitlines(),
                     json.dumps(record, sort_keys=True)][-HISTORY_LINES:]
            body = {**current, "data": {**(current.get("data") or {}), "history.jsonl": "\n".join(lines) + "\n"},
                    "binaryData": self._kept(current.get("binaryData") or {}, lines)}
            try:
                self.cluster.request("PUT", CONFIGMAP.path(self.namespace, self.name), body=body)
                return
            except NselfError as exc:
                if status_of(exc) != 409:
                    raise
        raise NselfError(f"the deploy history {self.namespace}/{self.name} kept changing under this write",
                         code=Exit.KUBERNETES, hint="try again; is another deploy writing to it?")

    def _kept(self, binary: dict, lines: list[str]) -> dict:
        releases: list[str] = []
        for line in reversed(lines):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("result") == "ok" and entry.get("to") and entry["to"] not in releases:
                releases.append(entry["to"])
        wanted = {templates_key(r) for r in releases[:self.keep]}
        return {k: v for k, v in binary.items() if k in wanted}

    def _ensure(self) -> dict:
        """The ConfigMap, created (empty) when missing."""
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": self.name, "namespace": self.namespace, "labels": LABELS},
                "data": {"history.jsonl": ""}}
        try:
            return self.cluster.request("POST", CONFIGMAP.path(self.namespace), body=body)
        except NselfError as exc:
            if status_of(exc) != 409:
                raise
            return self.read()
