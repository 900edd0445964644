"""DigitalOcean (https://docs.digitalocean.com/reference/api/): bearer token, page/per_page
pagination with links.pages.next, SSH keys by fingerprint, user data up to 64 KiB, prices in USD."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from nself.providers.base import (SERVERS, CloudServer, Cluster, ClusterRequest, ProvisionRequest, Region, Size,
                                  labels_from_tags)
from nself.providers.keys import key_name, md5_fingerprint
from nself.providers.rest import Collection, RestProvider

_STATUS = {"new": "starting", "active": "running", "off": "stopped", "archive": "stopped"}


def _next(body: dict, params: dict) -> dict | None:
    following = ((body.get("links") or {}).get("pages") or {}).get("next")
    if not following:
        return None
    page = parse_qs(urlparse(following).query).get("page")
    return {**params, "page": int(page[0])} if page else None


def _error(body) -> str | None:
    return f"{body.get('id')}: {body.get('message')}" if isinstance(body, dict) and "message" in body else None


def _tag(request_id: str) -> str:
    return f"nself-request:{request_id}"


class DigitalOcean(RestProvider):
    name = "digitalocean"
    title = "DigitalOcean"
    base_url = "https://api.digitalocean.com/v2"
    image = "ubuntu-24-04-x64"
    user_data_limit = 64 * 1024
    capabilities = SERVERS | {"k8s"}
    describe_error = staticmethod(_error)
    servers = Collection("/droplets", "droplets", "droplet")
    clusters = Collection("/kubernetes/clusters", "kubernetes_clusters", "kubernetes_cluster")
    page_size = 200
    next_page = staticmethod(_next)

    def validate(self) -> str:
        account = self.api.request("GET", "/account")["account"]
        return f"{account.get('email', 'an account')} ({account.get('status', 'unknown')})"

    def list_regions(self) -> list[Region]:
        return [Region(r["slug"], r["name"], available=bool(r.get("available")))
                for r in self._all("/regions", "regions")]

    def list_sizes(self) -> list[Size]:
        return [Size(s["slug"], int(s["vcpus"]), s["memory"] / 1024, int(s["disk"]), float(s["price_monthly"]),
                     "USD", tuple(s.get("regions") or ()))
                for s in self._all("/sizes", "sizes") if s.get("available", True)]

    def _ssh_key(self, public_key: str) -> str:
        # Listing, not GET /account/keys/{fingerprint}: the description marks a fingerprint in the
        # path as read-only, so only the numeric id is a contract-safe path value.
        fingerprint = md5_fingerprint(public_key)
        if not any(k.get("fingerprint") == fingerprint for k in self._all("/account/keys", "ssh_keys")):
            self.api.request("POST", "/account/keys", json={"name": key_name(public_key), "public_key": public_key})
        return fingerprint

    def create(self, request: ProvisionRequest) -> CloudServer:
        body = {"name": request.name, "region": request.region, "size": request.size, "image": request.image,
                "ssh_keys": [self._ssh_key(request.ssh_public_key)],
                "tags": ["managed-by-nself", _tag(request.request_id)]}
        if request.user_data:
            body["user_data"] = request.user_data
        return self._server(self.api.request("POST", "/droplets", json=body)["droplet"])

    def reboot(self, server_id: str) -> None:
        self.api.request("POST", f"/droplets/{server_id}/actions", json={"type": "reboot"})

    # DOKS
    def k8s_versions(self) -> list[str]:
        options = self.api.request("GET", "/kubernetes/options")["options"]
        return [v["slug"] for v in options.get("versions") or []]

    def k8s_create(self, request: ClusterRequest) -> Cluster:
        body = {"name": request.name, "region": request.region, "version": request.version,
                "node_pools": [{"size": request.size, "name": f"{request.name}-pool", "count": request.nodes}],
                "tags": ["managed-by-nself"]}
        return self._cluster(self.api.request("POST", "/kubernetes/clusters", json=body)["kubernetes_cluster"])

    def k8s_list(self) -> list[Cluster]:
        return [self._cluster(c) for c in self._all(self.clusters.path, self.clusters.plural)]

    def k8s_get(self, cluster_id: str) -> Cluster | None:
        data = self._one(self.clusters, cluster_id)
        return self._cluster(data) if data else None

    def k8s_delete(self, cluster_id: str) -> None:
        self._delete(self.clusters, cluster_id)

    def k8s_kubeconfig(self, cluster_id: str) -> str:
        return self.api.request("GET", f"/kubernetes/clusters/{cluster_id}/kubeconfig", raw=True)

    @staticmethod
    def _cluster(data: dict) -> Cluster:
        state = (data.get("status") or {}).get("state")
        status = {"running": "running", "provisioning": "starting", "degraded": "running", "error": "error",
                  "deleting": "deleting", "invalid": "error"}.get(state, "unknown")
        return Cluster(data["id"], data["name"], status, data.get("region"), data.get("version"),
                       data.get("endpoint") or None, sum(p.get("count", 0) for p in data.get("node_pools") or []))

    @staticmethod
    def _server(data: dict) -> CloudServer:
        networks = data.get("networks") or {}

        def public(family: str) -> str | None:
            return next((n["ip_address"] for n in networks.get(family) or [] if n.get("type") == "public"), None)

        labels = labels_from_tags(data.get("tags") or [])
        return CloudServer(str(data["id"]), data["name"], _STATUS.get(data.get("status"), "unknown"),
                           public("v4"), public("v6"), (data.get("region") or {}).get("slug"),
                           data.get("size_slug"), data.get("created_at"), labels)


DRIVER = DigitalOcean
