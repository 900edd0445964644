"""Akamai Linode (openapi.yaml): objects start from the description's own examples (every
documented field) with the fake's state laid over them; LKE kubeconfigs answer 503 until the
cluster is ready, as the API does."""
from __future__ import annotations

import base64
from pathlib import Path

from nself.testing.clouds.base import FakeCloud, copy, now, public
from nself.testing.openapi import Contract, response_example


class LinodeFake(FakeCloud):
    name = "linode"
    token_env = "LINODE_TOKEN"
    prefix = "/v4"
    routes = (
        ("GET", r"/profile", "get_profile"),
        ("GET", r"/regions", "list_regions"),
        ("GET", r"/linode/types", "list_types"),
        ("GET", r"/linode/instances", "list_instances"),
        ("POST", r"/linode/instances", "create_instance"),
        ("GET", r"/linode/instances/(?P<instance>\d+)", "get_instance"),
        ("DELETE", r"/linode/instances/(?P<instance>\d+)", "delete_instance"),
        ("POST", r"/linode/instances/(?P<instance>\d+)/reboot", "reboot_instance"),
        ("GET", r"/lke/versions", "list_versions"),
        ("GET", r"/lke/clusters", "list_clusters"),
        ("POST", r"/lke/clusters", "create_cluster"),
        ("GET", r"/lke/clusters/(?P<cluster>\d+)", "get_cluster"),
        ("DELETE", r"/lke/clusters/(?P<cluster>\d+)", "delete_cluster"),
        ("GET", r"/lke/clusters/(?P<cluster>\d+)/kubeconfig", "get_kubeconfig"),
    )

    def __init__(self, specs: Path, **kwargs):
        # Known defects of the description: its formats are stricter than the API (timestamps
        # come without a zone, "2018-01-01T00:01:01", as the real API sends them; host_uuid is
        # not a UUID), and the create body is an allOf of parts that each forbid the others'
        # fields, which no body can satisfy; unknown top-level fields are still caught by the
        # Contract's own check.
        super().__init__(Contract(specs / "linode" / "openapi.yaml", "https://api.linode.com",
                                  tolerate=(r"is not a 'date-time'$", r"is not a 'uuid'$",
                                            r"^Additional properties are not allowed")), **kwargs)
        self.regions = self.catalog["regions"]
        self.types = self.catalog["types"]
        self.lke_versions = self.catalog["lke_versions"]
        self._examples = {kind: response_example(self.contract, "GET", path) for kind, path in (
            ("instance", "/v4/linode/instances/1"), ("type", "/v4/linode/types/g6-nanode-1"),
            ("region", "/v4/regions/us-east"), ("profile", "/v4/profile"))}

    def error(self, status, code, message):
        return status, {"errors": [{"reason": message}]}

    def _invalid(self, field: str, reason: str):
        return 400, {"errors": [{"field": field, "reason": reason}]}

    def _from(self, kind: str, **fields) -> dict:
        return {**copy(self._examples[kind]), **fields}

    def _listing(self, items: list, query: dict):
        if "page" not in query and "page_size" not in query:      # regions, types: whole
            return 200, {"data": items, "page": 1, "pages": 1, "results": len(items)}
        chunk, last, _ = self.page(items, query)
        return 200, {"data": chunk, "page": int(query.get("page", 1)), "pages": last, "results": len(items)}

    def _view(self, instance: dict) -> dict:
        if instance["status"] == "provisioning" and self.booted(instance):
            instance["status"] = "running"
        return public(instance)

    def _instance(self, instance_id: str) -> dict:
        return self.one(self.servers, instance_id, "Not found")

    def _cluster(self, cluster_id: str) -> dict:
        return self.one(self.clusters, cluster_id, "Not found")

    # --- account and catalog --------------------------------------------------------------
    def get_profile(self, query, body):
        return 200, self._from("profile", username="ops", email="ops@example.com")

    def list_regions(self, query, body):
        return self._listing([self._from("region", id=r["id"], label=r["label"], country=r["country"], status="ok")
                              for r in self.regions], query)

    def list_types(self, query, body):
        return self._listing([self._from("type", id=t["id"], label=t["id"], vcpus=t["vcpus"], memory=t["memory"],
                                         disk=t["disk"], **{"class": t["class"], "price": {
                                             "hourly": round(t["monthly"] / 730, 3), "monthly": t["monthly"]}})
                              for t in self.types], query)

    # --- instances ------------------------------------------------------------------------
    def list_instances(self, query, body):
        for instance in self.servers.values():
            self.tick(instance)
        return self._listing([self._view(i) for i in self.servers.values()], query)

    def get_instance(self, query, body, instance):
        found = self._instance(instance)
        self.tick(found)
        return 200, self._view(found)

    def delete_instance(self, query, body, instance):
        self._instance(instance)
        del self.servers[instance]
        return 200, {}

    def reboot_instance(self, query, body, instance):
        self._instance(instance)
        return 200, {}

    def create_instance(self, query, body):
        if body.get("region") not in {r["id"] for r in self.regions}:
            return self._invalid("region", "region is not valid")
        kind = next((t for t in self.types if t["id"] == body.get("type")), None)
        if kind is None:
            return self._invalid("type", "A valid plan type by that ID was not found")
        if body.get("image") and not body.get("root_pass"):
            return self._invalid("root_pass", "root_pass is required")
        if any(i["label"] == body.get("label") for i in self.servers.values()):
            return self._invalid("label", "Label must be unique among your linodes")
        instance_id = str(next(self.ids))
        instance = self._from("instance", id=int(instance_id), label=body["label"], status="provisioning",
                              region=body["region"], type=kind["id"], image=body.get("image"),
                              ipv4=["127.0.0.1", "192.168.130.5"], ipv6="2600:3c00::f03c:91ff:fe24:1/128",
                              tags=body.get("tags") or [], created=now().rstrip("Z"),
                              has_user_data="metadata" in body, placement_group=None, lke_cluster_id=None,
                              specs={"disk": kind["disk"], "memory": kind["memory"], "vcpus": kind["vcpus"],
                                     "gpus": 0, "transfer": 1000})
        instance.update(_polls=0, _ip="127.0.0.1")
        self.servers[instance_id] = instance
        return 200, public(instance)

    # --- LKE ------------------------------------------------------------------------------
    def list_versions(self, query, body):
        return self._listing([{"id": v} for v in self.lke_versions], query)

    def list_clusters(self, query, body):
        return self._listing([public(k) for k in self.clusters.values()], query)

    def create_cluster(self, query, body):
        if body.get("k8s_version") not in self.lke_versions:
            return self._invalid("k8s_version", "not a supported version")
        if body.get("region") not in {r["id"] for r in self.regions}:
            return self._invalid("region", "region is not valid")
        cluster_id = str(next(self.ids))
        self.clusters[cluster_id] = {"id": int(cluster_id), "label": body["label"], "region": body["region"],
                                     "k8s_version": body["k8s_version"], "tags": body.get("tags") or [],
                                     "created": now().rstrip("Z"), "updated": now().rstrip("Z"),
                                     "control_plane": {"high_availability": False}, "_polls": 0}
        return 200, public(self.clusters[cluster_id])

    def get_cluster(self, query, body, cluster):
        return 200, public(self._cluster(cluster))

    def delete_cluster(self, query, body, cluster):
        self._cluster(cluster)
        del self.clusters[cluster]
        return 200, {}

    def get_kubeconfig(self, query, body, cluster):
        found = self._cluster(cluster)
        self.tick(found)
        if not self.booted(found):
            return self.error(503, "unavailable", "Cluster kubeconfig is not yet available.")
        return 200, {"kubeconfig": base64.b64encode(self.kubeconfig.encode()).decode()}
