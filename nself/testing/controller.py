"""Plays the Kubernetes controllers the test API server does not have.

It talks to the server over HTTP like a real controller: Deployments get ReplicaSets (one
per pod template, with revision annotations) and Pods, and their status; StatefulSets,
DaemonSets and Jobs become ready or complete. Tests call `settle()` to let a rollout finish,
or `settle(ready=False)` to leave it stuck; `running()` settles in the background, as a
controller would, while the code under test applies and waits.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import threading

import requests

from nself.testing.kube import SERVED

# The cluster's side of the paths (the server's table, not the client's nself.k8s.resources).
BY_KIND = {(r.api_version, r.kind): r for r in SERVED}

REVISION = "deployment.kubernetes.io/revision"


class Controller:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.http = requests.Session()

    def _get(self, path: str) -> dict:
        return _answer(self.http.get(self.url + path, timeout=10), "GET", path)

    def _send(self, method: str, path: str, body: dict, content: str = "application/merge-patch+json") -> dict:
        response = self.http.request(method, self.url + path, data=json.dumps(body), timeout=10,
                                     headers={"Content-Type": content})
        return _answer(response, method, path)

    def settle(self, namespace: str, *, ready: bool = True) -> None:
        for kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            res = BY_KIND[("batch/v1" if kind == "Job" else "apps/v1", kind)]
            for obj in self._get(res.path(namespace))["items"]:
                getattr(self, f"_{kind.lower()}")(namespace, obj, ready(obj) if callable(ready) else ready)

    @contextlib.contextmanager
    def running(self, namespace: str, *, ready: bool = True, interval: float = 0.2):
        """Settle `namespace` every `interval` seconds until the block ends. `ready` may be a
        callable taking the object (e.g. "every Deployment but api becomes ready")."""
        stop = threading.Event()

        def loop():
            while not stop.wait(interval):
                try:
                    self.settle(namespace, ready=ready)
                except requests.RequestException:
                    continue        # the namespace or an object is mid-change: try again
        thread = threading.Thread(target=loop, name="controller", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(10)

    def _deployment(self, namespace: str, deployment: dict, ready: bool) -> None:
        name = deployment["metadata"]["name"]
        template = deployment["spec"]["template"]
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        rs_res = BY_KIND[("apps/v1", "ReplicaSet")]
        owned = [rs for rs in self._get(rs_res.path(namespace))["items"]
                 if any(ref.get("uid") == deployment["metadata"]["uid"]
                        for ref in rs["metadata"].get("ownerReferences", []))]
        revisions = [int(rs["metadata"].get("annotations", {}).get(REVISION, 0)) for rs in owned]
        current = next((rs for rs in owned if rs["metadata"]["labels"].get("pod-template-hash") == digest), None)
        latest = max(revisions, default=0)
        replicas = deployment["spec"].get("replicas", 1)
        if current is None or int(current["metadata"]["annotations"][REVISION]) != latest:
            revision = latest + 1
            body = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": f"{name}-{digest}", "namespace": namespace,
                                 "labels": {**template["metadata"].get("labels", {}),
                                            "pod-template-hash": digest},
                                 "annotations": {REVISION: str(revision)},
                                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                      "name": name, "uid": deployment["metadata"]["uid"],
                                                      "controller": True}]},
                    "spec": {"replicas": replicas, "template": template,
                             "selector": deployment["spec"]["selector"]}}
            if current is None:
                current = self._send("POST", rs_res.path(namespace), body)
            else:
                current = self._send("PATCH", rs_res.path(namespace, current["metadata"]["name"]),
                                     {"metadata": {"annotations": {REVISION: str(revision)}}})
        for rs in owned:
            if rs["metadata"]["name"] != current["metadata"]["name"] and rs["spec"].get("replicas"):
                self._send("PATCH", rs_res.path(namespace, rs["metadata"]["name"]), {"spec": {"replicas": 0}})
        self._pods(namespace, current, replicas, ready)
        count = replicas if ready else 0
        revision = current["metadata"]["annotations"][REVISION]
        self._send("PATCH", BY_KIND[("apps/v1", "Deployment")].path(namespace, name), {
            "metadata": {"annotations": {REVISION: revision}}})
        self._status("Deployment", namespace, name, {
            "observedGeneration": deployment["metadata"].get("generation", 1),
            "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": count,
            "availableReplicas": count, "unavailableReplicas": replicas - count,
            "conditions": [{"type": "Available", "status": "True" if ready else "False"},
                           {"type": "Progressing", "status": "True",
                            "reason": "NewReplicaSetAvailable" if ready else "ReplicaSetUpdated"}]})

    def _pods(self, namespace: str, rs: dict, replicas: int, ready: bool) -> None:
        pod_res = BY_KIND[("v1", "Pod")]
        existing = {p["metadata"]["name"] for p in self._get(pod_res.path(namespace))["items"]
                    if any(r.get("uid") == rs["metadata"]["uid"] for r in p["metadata"].get("ownerReferences", []))}
        for index in range(replicas):
            pod_name = f"{rs['metadata']['name']}-{index}"
            if pod_name in existing:
                continue
            spec = rs["spec"]["template"]["spec"]
            self._send("POST", pod_res.path(namespace), {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod_name, "namespace": namespace,
                             "labels": rs["spec"]["template"]["metadata"].get("labels", {}),
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                  "name": rs["metadata"]["name"], "uid": rs["metadata"]["uid"],
                                                  "controller": True}]},
                "spec": spec,
                "status": {"phase": "Running" if ready else "Pending",
                           "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                           "containerStatuses": [{"name": c["name"], "image": c["image"], "imageID": "",
                                                  "ready": ready, "restartCount": 0}
                                                 for c in spec["containers"]]}})

    def _statefulset(self, namespace: str, obj: dict, ready: bool) -> None:
        replicas = obj["spec"].get("replicas", 1)
        count = replicas if ready else 0
        self._status("StatefulSet", namespace, obj["metadata"]["name"], {
            "observedGeneration": obj["metadata"].get("generation", 1), "replicas": replicas,
            "readyReplicas": count, "currentReplicas": replicas, "updatedReplicas": replicas,
            "availableReplicas": count})

    def _daemonset(self, namespace: str, obj: dict, ready: bool) -> None:
        self._status("DaemonSet", namespace, obj["metadata"]["name"], {
            "observedGeneration": obj["metadata"].get("generation", 1), "desiredNumberScheduled": 1,
            "currentNumberScheduled": 1, "numberMisscheduled": 0, "numberReady": 1 if ready else 0,
            "updatedNumberScheduled": 1,
            "numberAvailable": 1 if ready else 0})

    def _job(self, namespace: str, obj: dict, ready: bool) -> None:
        status = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]} if ready else \
            {"active": 1}
        self._status("Job", namespace, obj["metadata"]["name"], status)

    def _status(self, kind: str, namespace: str, name: str, status: dict) -> None:
        res = BY_KIND[("batch/v1" if kind == "Job" else "apps/v1", kind)]
        self._send("PATCH", res.path(namespace, name, "status"), {"status": status})


def _answer(response: requests.Response, method: str, path: str) -> dict:
    """The JSON body; a refusal raises with the server's words (which field it refused)."""
    if response.status_code >= 400:
        raise requests.HTTPError(f"{method} {path}: {response.status_code} {response.text}", response=response)
    return response.json()
