"""DigitalOcean (DigitalOcean-public.v2.yaml): links.pages paging, SSH keys by fingerprint,
droplets that get their public IPv4 once booted, DOKS clusters."""
from __future__ import annotations

import uuid
from pathlib import Path

from nself.providers.keys import md5_fingerprint
from nself.testing.clouds.base import FakeCloud, now, public
from nself.testing.openapi import Contract

_IDS = {401: "unauthorized", 404: "not_found", 422: "unprocessable_entity", 429: "too_many_requests",
        500: "server_error"}
_GONE = "The resource you were accessing could not be found."
_UUID = r"[0-9a-f-]{36}"


class DigitalOceanFake(FakeCloud):
    name = "digitalocean"
    token_env = "DIGITALOCEAN_TOKEN"
    prefix = "/v2"
    routes = (
        ("GET", r"/account", "get_account"),
        ("GET", r"/regions", "list_regions"),
        ("GET", r"/sizes", "list_sizes"),
        ("GET", r"/account/keys", "list_keys"),
        ("POST", r"/account/keys", "create_key"),
        ("GET", r"/droplets", "list_droplets"),
        ("POST", r"/droplets", "create_droplet"),
        ("GET", r"/droplets/(?P<droplet>\d+)", "get_droplet"),
        ("DELETE", r"/droplets/(?P<droplet>\d+)", "delete_droplet"),
        ("POST", r"/droplets/(?P<droplet>\d+)/actions", "droplet_action"),
        ("GET", r"/kubernetes/options", "kubernetes_options"),
        ("GET", r"/kubernetes/clusters", "list_clusters"),
        ("POST", r"/kubernetes/clusters", "create_cluster"),
        ("GET", rf"/kubernetes/clusters/(?P<cluster>{_UUID})", "get_cluster"),
        ("DELETE", rf"/kubernetes/clusters/(?P<cluster>{_UUID})", "delete_cluster"),
        ("GET", rf"/kubernetes/clusters/(?P<cluster>{_UUID})/kubeconfig", "get_kubeconfig"),
    )

    def __init__(self, specs: Path, **kwargs):
        super().__init__(Contract(specs / "digitalocean" / "specification" / "DigitalOcean-public.v2.yaml",
                                  "https://api.digitalocean.com"), **kwargs)
        self.regions = self.catalog["regions"]
        self.sizes = self.catalog["sizes"]
        self.versions = self.catalog["kubernetes_versions"]

    def error(self, status, code, message):
        return status, {"id": _IDS.get(status, code), "message": message, "request_id": "fake"}

    def _listing(self, key: str, items: list, query: dict, path: str):
        chunk, last, following = self.page(items, query)
        per_page = min(int(query.get("per_page", 20)), self.page_cap)
        pages = {}
        if following:
            pages = {"next": f"https://api.digitalocean.com/v2{path}?page={following}&per_page={per_page}",
                     "last": f"https://api.digitalocean.com/v2{path}?page={last}&per_page={per_page}"}
        return 200, {key: chunk, "links": {"pages": pages}, "meta": {"total": len(items)}}

    def _size(self, size: dict) -> dict:
        return {"slug": size["slug"], "memory": size["memory"], "vcpus": size["vcpus"], "disk": size["disk"],
                "transfer": 1.0, "price_monthly": size["price"], "price_hourly": round(size["price"] / 730, 5),
                "regions": [r["slug"] for r in self.regions], "available": True, "description": "Basic"}

    def _region(self, slug: str) -> dict:
        region = next(r for r in self.regions if r["slug"] == slug)
        return {"slug": slug, "name": region["name"], "sizes": [s["slug"] for s in self.sizes], "available": True,
                "features": ["metadata"]}

    def _view(self, droplet: dict) -> dict:
        if droplet["status"] == "new" and self.booted(droplet):
            droplet["status"] = "active"
            droplet["networks"]["v4"] = [{"ip_address": droplet["_ip"], "netmask": "255.255.240.0",
                                          "gateway": "127.0.0.254", "type": "public"}]
        return public(droplet)

    # --- account, catalog, keys -----------------------------------------------------------
    def get_account(self, query, body):
        return 200, {"account": {"droplet_limit": 25, "floating_ip_limit": 3, "email": "ops@example.com",
                                 "uuid": "b6fr89dbf6d9156cace5f3c78dc9851d957381ef", "email_verified": True,
                                 "status": "active", "status_message": ""}}

    def list_regions(self, query, body):
        return self._listing("regions", [self._region(r["slug"]) for r in self.regions], query, "/regions")

    def list_sizes(self, query, body):
        return self._listing("sizes", [self._size(s) for s in self.sizes], query, "/sizes")

    def list_keys(self, query, body):
        return self._listing("ssh_keys", list(self.keys), query, "/account/keys")

    def create_key(self, query, body):
        key = {"id": next(self.ids), "name": body["name"], "public_key": body["public_key"],
               "fingerprint": md5_fingerprint(body["public_key"])}
        self.keys.append(key)
        return 201, {"ssh_key": key}

    # --- droplets -------------------------------------------------------------------------
    def list_droplets(self, query, body):
        found = [d for d in self.servers.values() if query.get("name") in (None, d["name"])]
        for droplet in found:
            self.tick(droplet)
        return self._listing("droplets", [self._view(d) for d in found], query, "/droplets")

    def get_droplet(self, query, body, droplet):
        found = self.one(self.servers, droplet, _GONE)
        self.tick(found)
        return 200, {"droplet": self._view(found)}

    def delete_droplet(self, query, body, droplet):
        self.one(self.servers, droplet, _GONE)
        del self.servers[droplet]
        return 204, None

    def droplet_action(self, query, body, droplet):
        found = self.one(self.servers, droplet, _GONE)
        return 201, {"action": {"id": next(self.ids), "status": "in-progress", "type": body["type"],
                                "started_at": now(), "completed_at": None, "resource_id": int(droplet),
                                "resource_type": "droplet", "region_slug": found["region"]["slug"]}}

    def create_droplet(self, query, body):
        if body.get("region") not in {r["slug"] for r in self.regions}:
            return self.error(422, "unprocessable_entity", "You specified an invalid region for Droplet creation.")
        size = next((s for s in self.sizes if s["slug"] == body.get("size")), None)
        if size is None:
            return self.error(422, "unprocessable_entity", "You specified an invalid size for Droplet creation.")
        known = {k["fingerprint"] for k in self.keys} | {k["id"] for k in self.keys}
        if any(k not in known for k in body.get("ssh_keys") or []):
            return self.error(422, "unprocessable_entity", "You specified an invalid SSH key.")
        if len((body.get("user_data") or "").encode()) > 64 * 1024:
            return self.error(422, "unprocessable_entity", "user_data is too long")
        droplet_id = str(next(self.ids))
        droplet = {
            "id": int(droplet_id), "name": body["name"], "memory": size["memory"], "vcpus": size["vcpus"],
            "disk": size["disk"], "locked": False, "status": "new", "created_at": now(), "features": [],
            "backup_ids": [], "next_backup_window": None, "snapshot_ids": [], "image": {}, "volume_ids": [],
            "size": self._size(size), "size_slug": size["slug"], "networks": {"v4": [], "v6": []},
            "region": self._region(body["region"]), "tags": body.get("tags") or [],
            "vpc_uuid": "760e09ef-dc84-11e8-981e-3cfdfeaae000", "_polls": 0, "_ip": "127.0.0.1",
        }
        self.servers[droplet_id] = droplet
        return 202, {"droplet": public(droplet),
                     "links": {"actions": [{"id": next(self.ids), "rel": "create", "href": "https://x/"}]}}

    # --- DOKS -----------------------------------------------------------------------------
    def kubernetes_options(self, query, body):
        return 200, {"options": {"regions": [{"name": r["name"], "slug": r["slug"]} for r in self.regions],
                                 "versions": [{"slug": v, "kubernetes_version": v.split("-")[0],
                                               "supported_features": []} for v in self.versions],
                                 "sizes": [{"name": s["slug"], "slug": s["slug"]} for s in self.sizes]}}

    def list_clusters(self, query, body):
        for cluster in self.clusters.values():
            self._tick_cluster(cluster)
        return self._listing("kubernetes_clusters", [public(k) for k in self.clusters.values()], query,
                             "/kubernetes/clusters")

    def create_cluster(self, query, body):
        if body.get("region") not in {r["slug"] for r in self.regions}:
            return self.error(422, "unprocessable_entity", "invalid region")
        if body.get("version") not in ("latest", *self.versions):
            return self.error(422, "unprocessable_entity", "invalid version")
        cluster_id = str(uuid.uuid4())
        cluster = {"id": cluster_id, "name": body["name"], "region": body["region"],
                   "version": self.versions[0] if body["version"] == "latest" else body["version"],
                   "cluster_subnet": "10.244.0.0/16", "service_subnet": "10.245.0.0/16",
                   "vpc_uuid": str(uuid.uuid4()), "ipv4": "", "endpoint": "", "tags": body.get("tags") or [],
                   "node_pools": [{"id": str(uuid.uuid4()), "name": p["name"], "size": p["size"],
                                   "count": p["count"], "tags": [], "labels": None, "taints": [],
                                   "auto_scale": False, "min_nodes": 0, "max_nodes": 0, "nodes": []}
                                  for p in body["node_pools"]],
                   "maintenance_policy": {"start_time": "00:00", "day": "any"}, "auto_upgrade": False,
                   "status": {"state": "provisioning", "message": "provisioning"}, "created_at": now(),
                   "updated_at": now(), "surge_upgrade": False, "registry_enabled": False, "ha": False,
                   "_polls": 0}
        self.clusters[cluster_id] = cluster
        return 201, {"kubernetes_cluster": public(cluster)}

    def get_cluster(self, query, body, cluster):
        found = self.one(self.clusters, cluster, _GONE)
        self._tick_cluster(found)
        return 200, {"kubernetes_cluster": public(found)}

    def delete_cluster(self, query, body, cluster):
        self.one(self.clusters, cluster, _GONE)
        del self.clusters[cluster]
        return 204, None

    def get_kubeconfig(self, query, body, cluster):
        self.one(self.clusters, cluster, _GONE)
        return 200, self.kubeconfig

    def _tick_cluster(self, cluster: dict) -> None:
        self.tick(cluster)
        if cluster["status"]["state"] == "provisioning" and self.booted(cluster):
            cluster["status"] = {"state": "running", "message": "running"}
            cluster["endpoint"] = f"https://{cluster['id']}.k8s.ondigitalocean.com"
