"""Vultr (vultr-v2.openapi.json): cursor paging (meta.links.next), SSH keys and OS ids,
instances that get their main IP once booted, VKE clusters; objects start from the
description's examples."""
from __future__ import annotations

import base64
import uuid
from pathlib import Path

from nself.testing.clouds.base import FakeCloud, copy, now, public
from nself.testing.openapi import Contract, response_example

_UUID = r"[0-9a-f-]{36}"


class VultrFake(FakeCloud):
    name = "vultr"
    token_env = "VULTR_API_KEY"
    prefix = "/v2"
    routes = (
        ("GET", r"/account", "get_account"),
        ("GET", r"/regions", "list_regions"),
        ("GET", r"/plans", "list_plans"),
        ("GET", r"/os", "list_os"),
        ("GET", r"/ssh-keys", "list_ssh_keys"),
        ("POST", r"/ssh-keys", "create_ssh_key"),
        ("GET", r"/instances", "list_instances"),
        ("POST", r"/instances", "create_instance"),
        ("GET", rf"/instances/(?P<instance>{_UUID})", "get_instance"),
        ("DELETE", rf"/instances/(?P<instance>{_UUID})", "delete_instance"),
        ("POST", rf"/instances/(?P<instance>{_UUID})/reboot", "reboot_instance"),
        ("GET", r"/kubernetes/versions", "list_versions"),
        ("GET", r"/kubernetes/clusters", "list_clusters"),
        ("POST", r"/kubernetes/clusters", "create_cluster"),
        ("GET", rf"/kubernetes/clusters/(?P<cluster>{_UUID})", "get_cluster"),
        ("DELETE", rf"/kubernetes/clusters/(?P<cluster>{_UUID})", "delete_cluster"),
        ("GET", rf"/kubernetes/clusters/(?P<cluster>{_UUID})/config", "get_kubeconfig"),
    )

    def __init__(self, specs: Path, **kwargs):
        super().__init__(Contract(specs / "vultr" / "vultr-v2.openapi.json", "https://api.vultr.com", "/v2"),
                         **kwargs)
        self.regions = self.catalog["regions"]
        self.plans = self.catalog["plans"]
        self.systems = self.catalog["os"]
        self.vke_versions = self.catalog["vke_versions"]
        self._shapes = {key: response_example(self.contract, "GET", path) for key, path in (
            ("instance", "/v2/instances/x"), ("plans", "/v2/plans"), ("regions", "/v2/regions"),
            ("account", "/v2/account"), ("ssh_keys", "/v2/ssh-keys"), ("os", "/v2/os"))}

    def _shape(self, key: str, **fields) -> dict:
        shape = self._shapes[key]
        base = shape[key][0] if isinstance(shape.get(key), list) else shape[key]
        return {**copy(base), **fields}

    def error(self, status, code, message):
        return status, {"error": message, "status": status}

    def _listing(self, key: str, items: list, query: dict):
        start = int(query.get("cursor") or 0)
        per_page = min(int(query.get("per_page", 100)), self.page_cap)
        following = str(start + per_page) if start + per_page < len(items) else ""
        return 200, {key: items[start:start + per_page],
                     "meta": {"total": len(items), "links": {"next": following, "prev": ""}}}

    def _view(self, instance: dict) -> dict:
        if instance["status"] == "pending" and self.booted(instance):
            instance.update(status="active", server_status="ok", main_ip=instance["_ip"])
        return public(instance)

    def _instance(self, instance_id: str) -> dict:
        return self.one(self.servers, instance_id, "Invalid instance-id.")

    def _cluster(self, cluster_id: str) -> dict:
        return self.one(self.clusters, cluster_id, "Invalid vke-id.")

    # --- account and catalog --------------------------------------------------------------
    def get_account(self, query, body):
        return 200, {"account": self._shape("account", name="ops", email="ops@example.com")}

    def list_regions(self, query, body):
        return self._listing("regions", [self._shape("regions", **r, options=["ddos_protection"])
                                         for r in self.regions], query)

    def list_plans(self, query, body):
        plans = [self._shape("plans", id=p["id"], vcpu_count=p["vcpu"], ram=p["ram"], disk=p["disk"], disk_count=1,
                             bandwidth=1024, monthly_cost=p["monthly"], type="vc2",
                             locations=[r["id"] for r in self.regions])
                 for p in self.plans if query.get("type") in (None, "vc2")]
        return self._listing("plans", plans, query)

    def list_os(self, query, body):
        return self._listing("os", [self._shape("os", **s, arch="x64") for s in self.systems], query)

    def list_ssh_keys(self, query, body):
        return self._listing("ssh_keys", list(self.keys), query)

    def create_ssh_key(self, query, body):
        key = self._shape("ssh_keys", id=str(uuid.uuid4()), name=body["name"], ssh_key=body["ssh_key"],
                          date_created=now())
        self.keys.append(key)
        return 201, {"ssh_key": key}

    # --- instances ------------------------------------------------------------------------
    def list_instances(self, query, body):
        found = [i for i in self.servers.values() if query.get("label") in (None, i["label"])]
        for instance in found:
            self.tick(instance)
        return self._listing("instances", [self._view(i) for i in found], query)

    def get_instance(self, query, body, instance):
        found = self._instance(instance)
        self.tick(found)
        return 200, {"instance": self._view(found)}

    def delete_instance(self, query, body, instance):
        self._instance(instance)
        del self.servers[instance]
        return 204, None

    def reboot_instance(self, query, body, instance):
        self._instance(instance)
        return 204, None

    def create_instance(self, query, body):
        if body.get("region") not in {r["id"] for r in self.regions}:
            return self.error(400, "invalid", "Invalid region.")
        plan = next((p for p in self.plans if p["id"] == body.get("plan")), None)
        if plan is None:
            return self.error(400, "invalid", "Invalid plan.")
        system = next((s for s in self.systems if s["id"] == body.get("os_id")), None)
        if system is None:
            return self.error(400, "invalid", "Invalid operating system.")
        if any(k not in {x["id"] for x in self.keys} for k in body.get("sshkey_id") or []):
            return self.error(400, "invalid", "Invalid SSH key.")
        instance_id = str(uuid.uuid4())
        instance = self._shape("instance", id=instance_id, os=system["name"], os_id=system["id"], ram=plan["ram"],
                               disk=plan["disk"], vcpu_count=plan["vcpu"], main_ip="0.0.0.0", region=body["region"],
                               plan=plan["id"], date_created=now(), status="pending", power_status="running",
                               server_status="none", label=body.get("label", ""), hostname=body.get("hostname", ""),
                               tags=body.get("tags") or [], v6_main_ip="2001:19f0:6c01::1", default_password="")
        instance.update(_polls=0, _ip="127.0.0.1")
        self.servers[instance_id] = instance
        return 202, {"instance": public(instance)}

    # --- VKE ------------------------------------------------------------------------------
    def list_versions(self, query, body):
        return 200, {"versions": list(self.vke_versions)}

    def list_clusters(self, query, body):
        return 200, {"vke_clusters": [public(k) for k in self.clusters.values()],
                     "meta": {"total": len(self.clusters), "links": {"next": "", "prev": ""}}}

    def create_cluster(self, query, body):
        if body.get("version") not in self.vke_versions:
            return self.error(400, "invalid", "Invalid Kubernetes version.")
        if body.get("region") not in {r["id"] for r in self.regions}:
            return self.error(400, "invalid", "Invalid region.")
        cluster_id = str(uuid.uuid4())
        self.clusters[cluster_id] = {
            "id": cluster_id, "firewall_group_id": "", "label": body.get("label", ""), "date_created": now(),
            "cluster_subnet": "10.244.0.0/16", "service_subnet": "10.96.0.0/12", "ip": "", "endpoint": "",
            "version": body["version"], "region": body["region"], "status": "pending",
            "ha_controlplanes": False,
            "node_pools": [{"id": str(uuid.uuid4()), "date_created": now(), "date_updated": now(),
                            "label": p["label"], "plan": p["plan"], "status": "pending",
                            "node_quantity": p["node_quantity"], "min_nodes": p["node_quantity"],
                            "max_nodes": p["node_quantity"], "auto_scaler": False, "tag": "", "nodes": []}
                           for p in body.get("node_pools") or []], "_polls": 0}
        return 201, {"vke_cluster": public(self.clusters[cluster_id])}

    def get_cluster(self, query, body, cluster):
        found = self._cluster(cluster)
        self.tick(found)
        if found["status"] == "pending" and self.booted(found):
            found.update(status="active", endpoint=f"{found['id']}.vultr-k8s.com", ip="127.0.0.1")
        return 200, {"vke_cluster": public(found)}

    def delete_cluster(self, query, body, cluster):
        self._cluster(cluster)
        del self.clusters[cluster]
        return 204, None

    def get_kubeconfig(self, query, body, cluster):
        self._cluster(cluster)
        return 200, {"kube_config": base64.b64encode(self.kubeconfig.encode()).decode()}
