"""UpCloud (https://developers.upcloud.com/1.3/): an API token (Bearer) or account username and
password (Basic), zones and plans with hourly prices per zone, servers cloned from a public
template with the SSH key given to the login user, cloud-init as user_data (metadata on),
delete only after a stop."""
from __future__ import annotations

import time

from nself.errors import UsageError
from nself.providers.base import (SERVERS, CloudServer, Cluster, ClusterRequest, Provider, ProvisionRequest, Region,
                                  Size, newest_first)
from nself.providers.http import ProviderError, token_or_basic

_STATUS = {"started": "running", "stopped": "stopped", "maintenance": "starting", "error": "unknown"}
_HOURS_PER_MONTH = 672      # UpCloud caps monthly billing at 28 days of hourly use


def _error(body) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    return f"{error.get('error_code')}: {error.get('error_message')}" if isinstance(error, dict) else None


class UpCloud(Provider):
    name = "upcloud"
    title = "UpCloud"
    base_url = "https://api.upcloud.com/1.3"
    image = "Ubuntu Server 24.04 LTS (Noble Numbat)"
    id_pattern = r"[0-9a-f]{8}-[0-9a-f-]{27}"
    user_data_limit = 64 * 1024
    capabilities = SERVERS | {"k8s"}
    describe_error = staticmethod(_error)

    auth = staticmethod(token_or_basic)

    def validate(self) -> str:
        account = self.api.request("GET", "/account")["account"]
        return f"{account.get('username')} (credits {account.get('credits')})"

    def list_regions(self) -> list[Region]:
        return [Region(z["id"], z.get("description", z["id"]), z["id"][:2].upper())
                for z in self.api.request("GET", "/zone")["zones"]["zone"] if z.get("public", "yes") == "yes"]

    def list_sizes(self) -> list[Size]:
        prices: dict[str, float] = {}
        for zone in self.api.request("GET", "/price")["prices"]["zone"]:
            for key, value in zone.items():
                if key.startswith("server_plan_") and isinstance(value, dict) and value.get("price"):
                    # cents per hour; the cheapest zone is the plan's price
                    monthly = round(value["price"] * _HOURS_PER_MONTH / 100, 2)
                    plan = key.removeprefix("server_plan_")
                    prices[plan] = min(prices.get(plan, monthly), monthly)
        return [Size(p["name"], int(p["core_number"]), p["memory_amount"] / 1024, int(p["storage_size"]),
                     prices.get(p["name"]), "EUR")
                for p in self.api.request("GET", "/plan")["plans"]["plan"]
                if not p["name"].startswith(("GPU-", "DEV-"))]

    def _template(self, image: str) -> str:
        templates = self.api.request("GET", "/storage/template")["storages"]["storage"]
        for template in templates:
            if image in (template.get("uuid"), template.get("title")):
                return template["uuid"]
        raise UsageError(f"UpCloud has no template {image!r}",
                         hint="templates: " + ", ".join(t["title"] for t in templates[:8]))

    def create(self, request: ProvisionRequest) -> CloudServer:
        size = next((s for s in self.list_sizes() if s.id == request.size), None)
        server = {
            "zone": request.region, "title": request.name,
            "hostname": request.name, "plan": request.size, "metadata": "yes",
            "storage_devices": {"storage_device": [{
                "action": "clone", "storage": self._template(request.image), "title": f"{request.name}-disk",
                "size": size.disk_gb if size else 25, "tier": "maxiops"}]},
            "login_user": {"username": "root", "create_password": "no",
                           "ssh_keys": {"ssh_key": [request.ssh_public_key]}},
            "password_delivery": "none",
            "labels": {"label": [{"key": "managed-by", "value": "nself"},
                                 {"key": "nself-request", "value": request.request_id}]},
        }
        if request.user_data:
            server["user_data"] = request.user_data
        return self._server(self.api.request("POST", "/server", json={"server": server})["server"])

    def get(self, server_id: str) -> CloudServer | None:
        body = self.api.request("GET", f"/server/{server_id}", ok=(404,))
        return self._server(body["server"]) if body else None

    def find(self, name: str) -> list[CloudServer]:
        return [s for s in self.list() if s.name == name]

    def list(self) -> list[CloudServer]:
        return [self._server(s) for s in self.api.request("GET", "/server")["servers"]["server"]]

    def destroy(self, server_id: str) -> None:
        """UpCloud deletes only stopped servers: stop hard, wait, then delete with its storage."""
        current = self.api.request("GET", f"/server/{server_id}", ok=(404,))
        if current is None:
            return
        if current["server"].get("state") != "stopped":
            self.api.request("POST", f"/server/{server_id}/stop",
                             json={"stop_server": {"stop_type": "hard", "timeout": "60"}})
            for _ in range(120):
                state = self.api.request("GET", f"/server/{server_id}")["server"].get("state")
                if state == "stopped":
                    break
                time.sleep(1)
            else:
                raise ProviderError(f"upcloud: server {server_id} did not stop within 120 s; it was not deleted")
        self.api.request("DELETE", f"/server/{server_id}", params={"storages": "1"}, ok=(404,))

    def reboot(self, server_id: str) -> None:
        self.api.request("POST", f"/server/{server_id}/restart",
                         json={"restart_server": {"stop_type": "soft", "timeout": "60", "timeout_action": "destroy"}})

    # UKS: clusters live on a private network in their zone; nself keeps one per zone.
    _UKS_CIDR = "172.16.1.0/24"

    def k8s_versions(self) -> list[str]:
        versions = [v["version"] for v in self.api.request("GET", "/kubernetes/versions", shape=list) or []]
        return newest_first(versions)

    def _uks_network(self, zone: str) -> str:
        name = f"nself-uks-{zone}"
        networks = self.api.request("GET", "/network", params={"zone": zone})["networks"]["network"]
        for network in networks:
            if network.get("name") == name:
                return network["uuid"]
        created = self.api.request("POST", "/network", json={"network": {
            "name": name, "zone": zone,
            "ip_networks": {"ip_network": [{"address": self._UKS_CIDR, "dhcp": "yes", "family": "IPv4"}]}}})
        return created["network"]["uuid"]

    def k8s_create(self, request: ClusterRequest) -> Cluster:
        body = {"name": request.name, "zone": request.region, "network": self._uks_network(request.region),
                "network_cidr": self._UKS_CIDR,
                "node_groups": [{"name": f"{request.name}-pool", "count": request.nodes, "plan": request.size}],
                "labels": [{"key": "managed-by", "value": "nself"}]}
        if request.version != "latest":
            body["version"] = request.version
        return self._cluster(self.api.request("POST", "/kubernetes", json=body))

    def k8s_list(self) -> list[Cluster]:
        return [self._cluster(c) for c in self.api.request("GET", "/kubernetes", shape=list) or []]

    def k8s_get(self, cluster_id: str) -> Cluster | None:
        body = self.api.request("GET", f"/kubernetes/{cluster_id}", ok=(404,))
        return self._cluster(body) if body else None

    def k8s_delete(self, cluster_id: str) -> None:
        self.api.request("DELETE", f"/kubernetes/{cluster_id}", ok=(404,))

    def k8s_kubeconfig(self, cluster_id: str) -> str:
        return self.api.request("GET", f"/kubernetes/{cluster_id}/kubeconfig")["kubeconfig"]

    @staticmethod
    def _cluster(data: dict) -> Cluster:
        status = {"running": "running", "pending": "starting", "terminating": "deleting",
                  "failed": "error"}.get(data.get("state"), "unknown")
        return Cluster(data["uuid"], data.get("name", ""), status, data.get("zone"), data.get("version"), None,
                       sum(g.get("count", 0) for g in data.get("node_groups") or []))

    @staticmethod
    def _server(data: dict) -> CloudServer:
        addresses = (data.get("ip_addresses") or {}).get("ip_address") or []

        def public(family: str) -> str | None:
            return next((a["address"] for a in addresses if a.get("access") == "public" and a.get("family") == family),
                        None)

        labels = {entry["key"]: entry["value"] for entry in (data.get("labels") or {}).get("label") or []}
        created = data.get("created")
        return CloudServer(data["uuid"], data.get("title", ""), _STATUS.get(data.get("state"), "unknown"),
                           public("IPv4"), public("IPv6"), data.get("zone"), data.get("plan"),
                           time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)) if created else None, labels)


DRIVER = UpCloud
