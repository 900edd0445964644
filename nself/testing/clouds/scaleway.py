"""Scaleway (instance.v1.openapi.yml): X-Auth-Token, zones in the path, servers created
stopped that run only after `poweron`, `terminate` only on a running server, user data as
plain-text PATCH; objects start from the description's shapes. Kapsule (/k8s/) is checked
against the fields its API reference documents (data/scaleway.yml)."""
from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

from nself.testing.clouds.base import FakeCloud, copy, now, public
from nself.testing.openapi import Contract, response_example

_UUID = r"[0-9a-f-]{36}"
_ZONE = r"/instance/v1/zones/(?P<zone>[a-z]{2}-[a-z]{3}-\d)"
_REGION = r"/k8s/v1/regions/(?P<region>[a-z]{2}-[a-z]{3})"
_KINDS = {400: "invalid_arguments", 401: "denied_authentication", 404: "unknown_resource", 409: "resource_conflict",
          429: "quotas_exceeded"}
# What a server action needs the server to be.
_ACTION_FROM = {"poweron": "stopped", "terminate": "running", "reboot": "running", "poweroff": "running"}


class ScalewayFake(FakeCloud):
    name = "scaleway"
    token_env = "SCW_SECRET_KEY"
    prefix = ""
    project = "11111111-2222-4333-8444-555555555555"
    routes = (
        ("GET", rf"{_ZONE}/products/servers", "list_types"),
        ("GET", rf"{_ZONE}/images", "list_images"),
        ("GET", rf"{_ZONE}/servers", "list_servers"),
        ("POST", rf"{_ZONE}/servers", "create_server"),
        ("GET", rf"{_ZONE}/servers/(?P<server>{_UUID})", "get_server"),
        ("DELETE", rf"{_ZONE}/servers/(?P<server>{_UUID})", "delete_server"),
        ("POST", rf"{_ZONE}/servers/(?P<server>{_UUID})/action", "server_action"),
        ("DELETE", rf"{_ZONE}/volumes/(?P<volume>{_UUID})", "delete_volume"),
        ("GET", rf"{_REGION}/versions", "list_versions"),
        ("GET", rf"{_REGION}/clusters", "list_clusters"),
        ("POST", rf"{_REGION}/clusters", "create_cluster"),
        ("GET", rf"{_REGION}/clusters/(?P<cluster>{_UUID})", "get_cluster"),
        ("DELETE", rf"{_REGION}/clusters/(?P<cluster>{_UUID})", "delete_cluster"),
        ("GET", rf"{_REGION}/clusters/(?P<cluster>{_UUID})/kubeconfig", "get_kubeconfig"),
    )

    def __init__(self, specs: Path, **kwargs):
        # The description is a 2022 copy: its zone enum predates nl-ams-3, pl-waw-2 and pl-waw-3,
        # which Scaleway runs today; and like Hetzner's it puts `nullable` beside `allOf`
        # (public_ip is null until the server has an address).
        super().__init__(Contract(specs / "scaleway" / "instance.v1.openapi.yml", "https://api.scaleway.com",
                                  tolerate=(r"^'(nl-ams-3|pl-waw-2|pl-waw-3)' is not one of ",
                                            r"^None for not nullable$", r"^None is not of type 'object'$"),
                                  scope=r"^/instance/"), **kwargs)
        self.types = self.catalog["types"]
        self.kapsule_versions = self.catalog["kapsule_versions"]
        self._server_shape = response_example(self.contract, "GET", "/instance/v1/zones/fr-par-1/servers/x")["server"]
        self._image_ids = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, name)) for name in self.catalog["images"]}
        self.user_data: dict[str, str] = {}

    def env(self) -> dict[str, str]:
        return {**super().env(), "SCW_DEFAULT_PROJECT_ID": self.project}

    def authorized(self, method, raw_path, header, body) -> bool:
        return True    # checked in _serve(): Scaleway authenticates with X-Auth-Token, not Authorization

    def error(self, status, code, message):
        return status, {"type": _KINDS.get(status, code), "message": message}

    def _serve(self, method, raw_path, headers, raw_body):
        if headers.get("X-Auth-Token") != self.token:
            return (*self.error(401, "denied_authentication", "authentication is denied"), {})
        if method == "PATCH" and "/user_data/" in raw_path:      # plain text, not JSON
            with self.lock:
                self.requests.append({"method": method, "path": urlparse(raw_path).path, "query": {},
                                      "body": raw_body.decode(), "at": time.monotonic(), "authorization": None})
                server_id = raw_path.split("/servers/")[1].split("/")[0]
                if server_id not in self.servers:
                    return (*self.error(404, "unknown_resource", "server not found"), {})
                self.user_data[server_id] = raw_body.decode()
            return 204, None, {}
        return super()._serve(method, raw_path, headers, raw_body)

    def _view(self, server: dict) -> dict:
        if server["state"] == "starting" and self.booted(server):
            server.update(state="running", public_ip={"id": str(uuid.uuid4()), "address": server["_ip"],
                                                      "dynamic": True})
        return public(server)

    def _server(self, zone: str, server_id: str) -> dict:
        found = self.servers.get(server_id)
        if found is None or found["zone"] != zone:
            raise self.refuse(404, "unknown_resource", f'"{server_id}" not found')
        return found

    def _cluster(self, region: str, cluster_id: str) -> dict:
        found = self.clusters.get(cluster_id)
        if found is None or found["region"] != region:
            raise self.refuse(404, "unknown_resource", f'"{cluster_id}" not found')
        return found

    # --- instances ------------------------------------------------------------------------
    def list_types(self, query, body, zone):
        items = [(t["name"], {"monthly_price": t["monthly"], "hourly_price": round(t["monthly"] / 730, 4),
                              "ncpus": t["cpus"], "ram": t["ram"] * 2 ** 30, "arch": "x86_64", "alt_names": [],
                              "baremetal": False, "volumes_constraint": {"min_size": t["disk"] * 10 ** 9,
                                                                         "max_size": t["disk"] * 10 ** 10}})
                 for t in self.types]
        chunk, _, _ = self.page(items, query)
        return 200, {"servers": dict(chunk), "total_count": len(items)}

    def list_images(self, query, body, zone):
        found = [{"id": image_id, "name": name, "arch": "x86_64", "public": True, "zone": zone}
                 for name, image_id in self._image_ids.items() if query.get("name") in (None, name)]
        return 200, {"images": found, "total_count": len(found)}

    def list_servers(self, query, body, zone):
        found = [s for s in self.servers.values() if s["zone"] == zone and query.get("name") in (None, s["name"])]
        for server in found:
            self.tick(server)
        chunk, _, _ = self.page([self._view(s) for s in found], query)
        return 200, {"servers": chunk, "total_count": len(found)}

    def get_server(self, query, body, zone, server):
        found = self._server(zone, server)
        self.tick(found)
        return 200, {"server": self._view(found)}

    def delete_server(self, query, body, zone, server):
        if self._server(zone, server)["state"] != "stopped":
            return self.error(400, "invalid_request_error", "server should be stopped")
        del self.servers[server]
        return 204, None

    def server_action(self, query, body, zone, server):
        found = self._server(zone, server)
        action = body.get("action")
        if found["state"] != _ACTION_FROM.get(action):
            return self.error(400, "precondition_failed", f"action {action} not allowed in state {found['state']}")
        if action == "terminate":
            del self.servers[server]
        elif action == "poweron":
            found.update(state="starting", _polls=0)
        return 200, {"task": {"id": str(uuid.uuid4()), "description": action, "status": "pending",
                              "href_from": f"/servers/{server}/action", "progress": 0}}

    def delete_volume(self, query, body, zone, volume):
        return 204, None

    def create_server(self, query, body, zone):
        kind = next((t for t in self.types if t["name"] == body.get("commercial_type")), None)
        if kind is None:
            return self.error(400, "invalid_arguments", "commercial_type is not valid")
        if body.get("image") not in self._image_ids.values():
            return self.error(404, "unknown_resource", f"image {body.get('image')!r} not found")
        if body.get("project") != self.project:
            return self.error(403, "permissions_denied", "the project is not yours")
        server_id = str(uuid.uuid4())
        server = {**copy(self._server_shape), "id": server_id, "name": body["name"],
                  "commercial_type": kind["name"], "state": "stopped", "zone": zone, "project": self.project,
                  "tags": body.get("tags") or [], "creation_date": now(), "modification_date": now(),
                  "public_ip": None, "ipv6": {"address": "2001:bc8:1::1", "gateway": "2001:bc8:1::", "netmask": "64"},
                  "volumes": {"0": {"id": str(uuid.uuid4()), "name": f"{body['name']}-vol",
                                    "size": kind["disk"] * 10 ** 9, "volume_type": "l_ssd", "state": "available",
                                    "zone": zone}},
                  "_polls": 0, "_ip": "127.0.0.1"}
        self.servers[server_id] = server
        return 201, {"server": public(server)}

    # --- Kapsule --------------------------------------------------------------------------
    def list_versions(self, query, body, region):
        return 200, {"versions": [{"name": v, "label": f"Kubernetes {v}", "region": region,
                                   "available_cnis": ["cilium", "calico"]} for v in self.kapsule_versions]}

    def list_clusters(self, query, body, region):
        found = [public(c) for c in self.clusters.values() if c["region"] == region]
        chunk, _, _ = self.page(found, query)
        return 200, {"clusters": chunk, "total_count": len(found)}

    def create_cluster(self, query, body, region):
        refused = self.check_fields(f"POST /k8s/v1/regions/{region}/clusters", body,
                                    set(self.catalog["cluster_fields"]), tuple(self.catalog["cluster_required"]),
                                    {"pools": set(self.catalog["pool_fields"])})
        if refused:
            return refused
        if body["version"] not in self.kapsule_versions:
            return self.error(400, "invalid_arguments", "version is not available")
        cluster_id = str(uuid.uuid4())
        self.clusters[cluster_id] = {"id": cluster_id, "name": body["name"], "region": region,
                                     "version": body["version"], "cni": body["cni"], "type": body.get("type"),
                                     "status": "creating", "project_id": body.get("project_id"),
                                     "cluster_url": f"https://{cluster_id}.api.k8s.{region}.scw.cloud:6443",
                                     "created_at": now(), "tags": body.get("tags") or [], "_polls": 0}
        return 200, public(self.clusters[cluster_id])

    def get_cluster(self, query, body, region, cluster):
        found = self._cluster(region, cluster)
        self.tick(found)
        if found["status"] == "creating" and self.booted(found):
            found["status"] = "ready"
        return 200, public(found)

    def delete_cluster(self, query, body, region, cluster):
        found = self._cluster(region, cluster)
        del self.clusters[cluster]
        return 200, {**public(found), "status": "deleting"}

    def get_kubeconfig(self, query, body, region, cluster):
        found = self._cluster(region, cluster)
        return 200, {"name": f"{found['name']}.yaml", "content_type": "application/octet-stream",
                     "content": base64.b64encode(self.kubeconfig.encode()).decode()}
