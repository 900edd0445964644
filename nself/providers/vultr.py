"""Vultr (https://www.vultr.com/api/): bearer API key, cursor pagination (meta.links.next),
SSH keys registered and passed by id, images by OS id (looked up by name), cloud-init as
base64 user_data, USD."""
from __future__ import annotations

import base64

from nself.errors import UsageError
from nself.providers.base import (SERVERS, CloudServer, Cluster, ClusterRequest, ProvisionRequest, Region, Size,
                                  labels_from_tags)
from nself.providers.keys import key_name
from nself.providers.rest import Collection, RestProvider


def _next(body: dict, params: dict) -> dict | None:
    cursor = ((body.get("meta") or {}).get("links") or {}).get("next")
    return {**params, "cursor": cursor} if cursor else None


def _error(body) -> str | None:
    return str(body["error"]) if isinstance(body, dict) and body.get("error") else None


def _same_key(a: str, b: str) -> bool:
    return a.split()[:2] == b.split()[:2]      # type and base64 blob; the comment may differ


class Vultr(RestProvider):
    name = "vultr"
    title = "Vultr"
    base_url = "https://api.vultr.com/v2"
    image = "Ubuntu 24.04 LTS x64"
    id_pattern = r"[0-9a-f]{8}-[0-9a-f-]{27}"
    user_data_limit = 64 * 1024
    capabilities = SERVERS | {"k8s"}
    describe_error = staticmethod(_error)
    servers = Collection("/instances", "instances", "instance", by_name="label")
    clusters = Collection("/kubernetes/clusters", "vke_clusters", "vke_cluster")
    next_page = staticmethod(_next)

    def validate(self) -> str:
        account = self.api.request("GET", "/account")["account"]
        return f"{account.get('name') or 'an account'} ({account.get('email')})"

    def list_regions(self) -> list[Region]:
        return [Region(r["id"], r.get("city", r["id"]), r.get("country", "")) for r in self._all("/regions", "regions")]

    def list_sizes(self) -> list[Size]:
        return [Size(p["id"], int(p["vcpu_count"]), p["ram"] / 1024, int(p["disk"]), float(p["monthly_cost"]), "USD",
                     tuple(p.get("locations") or ()))
                for p in self._all("/plans", "plans", type="vc2")]

    def _os_id(self, image: str) -> int:
        if image.isdigit():
            return int(image)
        systems = self._all("/os", "os")
        for system in systems:
            if system.get("name") == image:
                return int(system["id"])
        raise UsageError(f"Vultr has no image {image!r}",
                         hint="use an OS name or id: " + ", ".join(s["name"] for s in systems[:8]))

    def _ssh_key(self, public_key: str) -> str:
        for key in self._all("/ssh-keys", "ssh_keys"):
            if _same_key(key.get("ssh_key", ""), public_key):
                return key["id"]
        created = self.api.request("POST", "/ssh-keys", json={"name": key_name(public_key), "ssh_key": public_key})
        return created["ssh_key"]["id"]

    def create(self, request: ProvisionRequest) -> CloudServer:
        body = {"region": request.region, "plan": request.size, "os_id": self._os_id(request.image),
                "label": request.name, "hostname": request.name, "sshkey_id": [self._ssh_key(request.ssh_public_key)],
                "tags": ["managed-by-nself", f"nself-request:{request.request_id}"]}
        if request.user_data:
            body["user_data"] = base64.b64encode(request.user_data.encode()).decode()
        return self._server(self.api.request("POST", "/instances", json=body)["instance"])

    def reboot(self, server_id: str) -> None:
        self.api.request("POST", f"/instances/{server_id}/reboot")

    # VKE
    def k8s_versions(self) -> list[str]:
        return list(self.api.request("GET", "/kubernetes/versions").get("versions") or [])

    def k8s_create(self, request: ClusterRequest) -> Cluster:
        version = self.k8s_versions()[0] if request.version == "latest" else request.version
        body = {"label": request.name, "region": request.region, "version": version,
                "node_pools": [{"node_quantity": request.nodes, "label": f"{request.name}-pool",
                                "plan": request.size}]}
        return self._cluster(self.api.request("POST", "/kubernetes/clusters", json=body)["vke_cluster"])

    def k8s_list(self) -> list[Cluster]:
        # The VKE list takes no paging parameters (its description lists none).
        listing = self.api.request("GET", self.clusters.path)
        return [self._cluster(c) for c in listing.get(self.clusters.plural) or []]

    def k8s_get(self, cluster_id: str) -> Cluster | None:
        data = self._one(self.clusters, cluster_id)
        return self._cluster(data) if data else None

    def k8s_delete(self, cluster_id: str) -> None:
        self._delete(self.clusters, cluster_id)

    def k8s_kubeconfig(self, cluster_id: str) -> str:
        config = self.api.request("GET", f"/kubernetes/clusters/{cluster_id}/config")["kube_config"]
        return base64.b64decode(config).decode()

    @staticmethod
    def _cluster(data: dict) -> Cluster:
        status = {"active": "running", "pending": "starting"}.get(data.get("status"), "unknown")
        nodes = sum(p.get("node_quantity", 0) for p in data.get("node_pools") or [])
        return Cluster(data["id"], data.get("label", ""), status, data.get("region"), data.get("version"),
                       data.get("endpoint") or None, nodes)

    @staticmethod
    def _server(data: dict) -> CloudServer:
        if data.get("status") == "active":
            status = "running" if data.get("power_status") == "running" else "stopped"
        else:
            status = {"pending": "starting", "suspended": "stopped", "resizing": "starting"}.get(data.get("status"),
                                                                                               "unknown")
        ipv4 = data.get("main_ip") if data.get("main_ip") not in (None, "", "0.0.0.0") else None
        labels = labels_from_tags(data.get("tags") or [])
        return CloudServer(data["id"], data.get("label", ""), status, ipv4, data.get("v6_main_ip") or None,
                           data.get("region"), data.get("plan"), data.get("date_created"), labels)


DRIVER = Vultr
