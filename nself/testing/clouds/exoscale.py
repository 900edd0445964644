"""Exoscale (source.yaml): checks each EXO2-HMAC-SHA256 signature with Exoscale's own Python
signer (requests-exoscale-auth), not with nself's; answers creates with operations; SKS clusters
with node pools that must be gone before the cluster."""
from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path

from nself.providers.keys import md5_fingerprint
from nself.testing.clouds.base import FakeCloud, now, public
from nself.testing.openapi import Contract

_UUID = r"[0-9a-f-]{36}"


class ExoscaleFake(FakeCloud):
    name = "exoscale"
    token_env = "EXOSCALE_API_KEY"
    prefix = "/v2"
    routes = (
        ("GET", r"/zone", "list_zones"),
        ("GET", r"/instance-type", "list_instance_types"),
        ("GET", r"/template", "list_templates"),
        ("POST", r"/ssh-key", "create_ssh_key"),
        ("GET", r"/ssh-key/(?P<key>[^/]+)", "get_ssh_key"),
        ("GET", rf"/operation/(?P<operation>{_UUID})", "get_operation"),
        ("GET", r"/instance", "list_instances"),
        ("POST", r"/instance", "create_instance"),
        ("GET", rf"/instance/(?P<instance>{_UUID})", "get_instance"),
        ("DELETE", rf"/instance/(?P<instance>{_UUID})", "delete_instance"),
        ("PUT", rf"/instance/(?P<instance>{_UUID}):reboot", "reboot_instance"),
        ("GET", r"/sks-cluster-version", "list_versions"),
        ("GET", r"/sks-cluster", "list_clusters"),
        ("POST", r"/sks-cluster", "create_cluster"),
        ("GET", rf"/sks-cluster/(?P<cluster>{_UUID})", "get_cluster"),
        ("DELETE", rf"/sks-cluster/(?P<cluster>{_UUID})", "delete_cluster"),
        ("POST", rf"/sks-cluster/(?P<cluster>{_UUID})/nodepool", "create_nodepool"),
        ("DELETE", rf"/sks-cluster/(?P<cluster>{_UUID})/nodepool/(?P<pool>{_UUID})", "delete_nodepool"),
        ("POST", rf"/sks-cluster-kubeconfig/(?P<cluster>{_UUID})", "get_kubeconfig"),
    )

    def __init__(self, specs: Path, secret: str = "fake-secret-abcdef0123456789", **kwargs):
        # openapi-core takes PUT /instance/{id}:reboot for PUT /instance/{id} (its path templates
        # let `{id}` swallow ":reboot") and then finds no UUID; the Contract's own matcher does
        # find the action, so only that finding is set aside.
        super().__init__(Contract(specs / "exoscale" / "source.yaml", "https://api-ch-gva-2.exoscale.com", "/v2",
                                  tolerate=(r"^'[0-9a-f-]{36}:[a-z-]+' is not a 'uuid'$",)),
                         token="EXOfakekey0123456789", **kwargs)
        self.secret = secret
        self.zones = self.catalog["zones"]
        self.types = self.catalog["instance_types"]
        self.templates = self.catalog["templates"]
        self.sks_versions = self.catalog["sks_versions"]
        self.operations: dict[str, dict] = {}
        self._type_ids = {t["size"]: str(uuid.uuid5(uuid.NAMESPACE_URL, t["size"])) for t in self.types}
        self._template_ids = {t["name"]: str(uuid.uuid5(uuid.NAMESPACE_URL, t["name"])) for t in self.templates}

    def env(self) -> dict[str, str]:
        return {**super().env(), "EXOSCALE_API_SECRET": self.secret}

    def authorized(self, method, raw_path, header, body) -> bool:
        import requests
        from exoscale_auth import ExoscaleV2Auth

        fields = dict(part.split("=", 1) for part in header.removeprefix("EXO2-HMAC-SHA256 ").split(",") if "=" in part)
        if fields.get("credential") != self.token or not fields.get("expires", "").isdigit():
            return False
        if int(fields["expires"]) < time.time():
            return False
        request = requests.Request(method, "http://fake" + raw_path).prepare()
        request.body = body or None
        ExoscaleV2Auth(self.token, self.secret)._sign_request(request, int(fields["expires"]))
        return request.headers["Authorization"] == header

    def error(self, status, code, message):
        return status, {"message": message}

    def _operation(self, reference: str, state: str = "success") -> dict:
        operation = {"id": str(uuid.uuid4()), "state": state, "reference": {"id": reference, "command": "x",
                                                                           "link": f"/v2/x/{reference}"}}
        self.operations[operation["id"]] = {**operation, "state": "success"}
        return operation

    def _type(self, kind: dict) -> dict:
        return {"id": self._type_ids[kind["size"]], "family": "standard", "size": kind["size"], "cpus": kind["cpus"],
                "memory": int(kind["memory"] * 2 ** 30), "authorized": True, "zones": list(self.zones)}

    def _view(self, instance: dict) -> dict:
        if instance["state"] == "starting" and self.booted(instance):
            instance.update(state="running", **{"public-ip": instance["_ip"]})
        return public(instance)

    def _instance(self, instance_id: str) -> dict:
        return self.one(self.servers, instance_id, f"instance {instance_id} not found")

    def _cluster(self, cluster_id: str) -> dict:
        return self.one(self.clusters, cluster_id, "SKS cluster not found")

    # --- catalog, keys, operations --------------------------------------------------------
    def list_zones(self, query, body):
        return 200, {"zones": [{"name": z, "api-endpoint": f"https://api-{z}.exoscale.com/v2",
                                "sos-endpoint": f"https://sos-{z}.exo.io"} for z in self.zones]}

    def list_instance_types(self, query, body):
        return 200, {"instance-types": [self._type(t) for t in self.types]}

    def list_templates(self, query, body):
        return 200, {"templates": [{"id": self._template_ids[t["name"]], "name": t["name"], "family": t["family"],
                                    "visibility": "public", "ssh-key-enabled": True, "password-enabled": False,
                                    "default-user": t["family"], "boot-mode": "uefi", "zones": list(self.zones)}
                                   for t in self.templates]}

    def create_ssh_key(self, query, body):
        self.keys.append({"name": body["name"], "fingerprint": md5_fingerprint(body["public-key"])})
        return 200, self._operation(str(uuid.uuid4()))

    def get_ssh_key(self, query, body, key):
        found = next((k for k in self.keys if k["name"] == key), None)
        return (200, found) if found else self.error(404, "not_found", f"SSH key {key} not found")

    def get_operation(self, query, body, operation):
        return 200, self.one(self.operations, operation, "operation not found")

    # --- instances ------------------------------------------------------------------------
    def list_instances(self, query, body):
        for instance in self.servers.values():
            self.tick(instance)
        return 200, {"instances": [self._view(i) for i in self.servers.values()]}

    def get_instance(self, query, body, instance):
        found = self._instance(instance)
        self.tick(found)
        return 200, self._view(found)

    def delete_instance(self, query, body, instance):
        self._instance(instance)
        del self.servers[instance]
        return 200, self._operation(instance, "pending")

    def reboot_instance(self, query, body, instance):
        self._instance(instance)
        return 200, self._operation(instance, "pending")

    def create_instance(self, query, body):
        kind = next((t for t in self.types if self._type_ids[t["size"]] == body["instance-type"]["id"]), None)
        if kind is None:
            return self.error(400, "invalid", "invalid instance-type")
        if body["template"]["id"] not in self._template_ids.values():
            return self.error(400, "invalid", "invalid template")
        if any(k["name"] not in {x["name"] for x in self.keys} for k in body.get("ssh-keys") or []):
            return self.error(400, "invalid", "SSH key not found")
        instance_id = str(uuid.uuid4())
        template = next(n for n, i in self._template_ids.items() if i == body["template"]["id"])
        instance = {"id": instance_id, "name": body.get("name", ""), "state": "starting", "created-at": now(),
                    "instance-type": self._type(kind), "template": {"id": body["template"]["id"], "name": template},
                    "disk-size": body["disk-size"], "labels": body.get("labels") or {},
                    "ssh-keys": body.get("ssh-keys") or [], "ipv6-address": "2a04:c43:e00::1",
                    "security-groups": [], "private-networks": [], "elastic-ips": [], "snapshots": [],
                    "_polls": 0, "_ip": "127.0.0.1"}
        self.servers[instance_id] = instance
        return 200, self._operation(instance_id, "pending")

    # --- SKS ------------------------------------------------------------------------------
    def list_versions(self, query, body):
        return 200, {"sks-cluster-versions": list(self.sks_versions)}

    def list_clusters(self, query, body):
        return 200, {"sks-clusters": [public(c) for c in self.clusters.values()]}

    def create_cluster(self, query, body):
        if body.get("version") not in self.sks_versions:
            return self.error(400, "invalid", "invalid version")
        cluster_id = str(uuid.uuid4())
        self.clusters[cluster_id] = {"id": cluster_id, "name": body["name"], "level": body["level"],
                                     "version": body["version"], "cni": body.get("cni", "calico"),
                                     "state": "creating", "created-at": now(), "nodepools": [],
                                     "labels": body.get("labels") or {},
                                     "endpoint": f"https://{cluster_id}.sks-ch-gva-2.exo.io", "_polls": 0}
        return 200, self._operation(cluster_id)

    def get_cluster(self, query, body, cluster):
        found = self._cluster(cluster)
        self.tick(found)
        if found["state"] == "creating" and self.booted(found):
            found["state"] = "running"
        return 200, public(found)

    def delete_cluster(self, query, body, cluster):
        found = self._cluster(cluster)
        if found["nodepools"]:
            return self.error(409, "conflict", "the cluster still has node pools")
        del self.clusters[cluster]
        return 200, self._operation(cluster)

    def create_nodepool(self, query, body, cluster):
        found = self._cluster(cluster)
        if body["instance-type"]["id"] not in self._type_ids.values():
            return self.error(400, "invalid", "invalid instance-type")
        pool_id = str(uuid.uuid4())
        found["nodepools"].append({"id": pool_id, "name": body["name"], "size": body["size"],
                                   "disk-size": body["disk-size"], "state": "running",
                                   "instance-type": body["instance-type"], "created-at": now()})
        return 200, self._operation(pool_id)

    def delete_nodepool(self, query, body, cluster, pool):
        found = self._cluster(cluster)
        found["nodepools"] = [p for p in found["nodepools"] if p["id"] != pool]
        return 200, self._operation(pool)

    def get_kubeconfig(self, query, body, cluster):
        self._cluster(cluster)
        return 200, {"kubeconfig": base64.b64encode(self.kubeconfig.encode()).decode()}
