"""Akamai Linode (https://techdocs.akamai.com/linode-api/reference/api): bearer token, page /
page_size pagination, keys inlined as authorized_keys, cloud-init as base64 metadata, a root
password required by the API (random, never stored or shown: log in with the key), USD."""
from __future__ import annotations

import base64
import secrets

from nself.providers.base import (SERVERS, CloudServer, Cluster, ClusterRequest, Provider, ProvisionRequest, Region,
                                  Size, labels_from_tags, newest_first)

_STATUS = {"provisioning": "starting", "booting": "starting", "running": "running", "offline": "stopped",
           "shutting_down": "stopped", "deleting": "deleting", "rebooting": "starting", "migrating": "starting"}


def _next(body: dict, params: dict) -> dict | None:
    page, pages = body.get("page", 1), body.get("pages", 1)
    return {**params, "page": page + 1} if page < pages else None


def _error(body) -> str | None:
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors:
        return None
    return "; ".join((f"{e['field']}: " if e.get("field") else "") + str(e.get("reason")) for e in errors)


class Linode(Provider):
    name = "linode"
    title = "Akamai Linode"
    base_url = "https://api.linode.com/v4"
    image = "linode/ubuntu24.04"
    user_data_limit = 16 * 1024        # before base64, as the API documents for metadata
    name_rule = (r"[a-zA-Z][a-zA-Z0-9-_.]{1,62}[a-zA-Z0-9]", "3-64 characters, starting with a letter")
    capabilities = SERVERS | {"k8s"}
    describe_error = staticmethod(_error)

    def _all(self, path: str) -> list[dict]:
        return list(self.api.pages(path, "data", _next, {"page_size": 100}))

    def _one_page(self, path: str) -> list[dict]:
        """Regions, types and LKE clusters come whole: the API takes no page parameters there."""
        return self.api.request("GET", path).get("data") or []

    def validate(self) -> str:
        profile = self.api.request("GET", "/profile")
        return f"{profile.get('username')} ({profile.get('email')})"

    def list_regions(self) -> list[Region]:
        return [Region(r["id"], r.get("label", r["id"]), (r.get("country") or "").upper(), r.get("status") == "ok")
                for r in self._one_page("/regions")]

    def list_sizes(self) -> list[Size]:
        return [Size(t["id"], int(t["vcpus"]), t["memory"] / 1024, int(t["disk"] / 1024),
                     float((t.get("price") or {}).get("monthly") or 0) or None, "USD")
                for t in self._one_page("/linode/types") if t.get("class") in ("nanode", "standard", "dedicated")]

    def create(self, request: ProvisionRequest) -> CloudServer:
        body = {"label": request.name, "region": request.region, "type": request.size, "image": request.image,
                "authorized_keys": [request.ssh_public_key], "root_pass": secrets.token_urlsafe(32) + "!aA1",
                "tags": ["managed-by-nself", f"nself-request:{request.request_id}"], "booted": True}
        if request.user_data:
            body["metadata"] = {"user_data": base64.b64encode(request.user_data.encode()).decode()}
        return self._server(self.api.request("POST", "/linode/instances", json=body))

    def get(self, server_id: str) -> CloudServer | None:
        body = self.api.request("GET", f"/linode/instances/{server_id}", ok=(404,))
        return self._server(body) if body else None

    def find(self, name: str) -> list[CloudServer]:
        return [s for s in self.list() if s.name == name]

    def list(self) -> list[CloudServer]:
        return [self._server(i) for i in self._all("/linode/instances")]

    def destroy(self, server_id: str) -> None:
        self.api.request("DELETE", f"/linode/instances/{server_id}", ok=(404,))

    def reboot(self, server_id: str) -> None:
        self.api.request("POST", f"/linode/instances/{server_id}/reboot", json={})

    # LKE: the description has no cluster status; a cluster is running once its kubeconfig is
    # served (the API answers 503 until then).
    def k8s_versions(self) -> list[str]:
        versions = [v["id"] for v in self.api.request("GET", "/lke/versions").get("data") or []]
        return newest_first(versions)

    def k8s_create(self, request: ClusterRequest) -> Cluster:
        version = self.k8s_versions()[0] if request.version == "latest" else request.version
        body = {"label": request.name, "region": request.region, "k8s_version": version,
                "node_pools": [{"type": request.size, "count": request.nodes}], "tags": ["managed-by-nself"]}
        return self._cluster(self.api.request("POST", "/lke/clusters", json=body), request.nodes)

    def k8s_list(self) -> list[Cluster]:
        return [self._cluster(c) for c in self._one_page("/lke/clusters")]

    def k8s_get(self, cluster_id: str) -> Cluster | None:
        body = self.api.request("GET", f"/lke/clusters/{cluster_id}", ok=(404,))
        if body is None:
            return None
        ready = self.api.request("GET", f"/lke/clusters/{cluster_id}/kubeconfig", ok=(503,)) is not None
        return self._cluster(body, status="running" if ready else "starting")

    def k8s_delete(self, cluster_id: str) -> None:
        self.api.request("DELETE", f"/lke/clusters/{cluster_id}", ok=(404,))

    def k8s_kubeconfig(self, cluster_id: str) -> str:
        return base64.b64decode(self.api.request("GET", f"/lke/clusters/{cluster_id}/kubeconfig")["kubeconfig"]
                                ).decode()

    @staticmethod
    def _cluster(data: dict, nodes: int | None = None, status: str = "unknown") -> Cluster:
        return Cluster(str(data["id"]), data["label"], status, data.get("region"), data.get("k8s_version"),
                       None, nodes)

    @staticmethod
    def _server(data: dict) -> CloudServer:
        # Linode's private addresses are 192.168.128.0/17; every other ipv4 entry is public.
        public = [ip for ip in data.get("ipv4") or [] if not ip.startswith("192.168.")]
        labels = labels_from_tags(data.get("tags") or [])
        return CloudServer(str(data["id"]), data["label"], _STATUS.get(data.get("status"), "unknown"),
                           public[0] if public else None, (data.get("ipv6") or "").split("/")[0] or None,
                           data.get("region"), data.get("type"), data.get("created"), labels)


DRIVER = Linode
