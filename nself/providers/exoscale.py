"""Exoscale (https://openapi-v2.exoscale.com): EXO2-HMAC-SHA256 signed requests, one API endpoint
per zone (api-<zone>.exoscale.com), asynchronous operations, instance types without prices (the
catalog has none either: prices show as unknown), cloud-init as base64 user-data (32 KiB).

Server ids are `<zone>/<uuid>`, because every call about an instance goes to its zone's endpoint."""
from __future__ import annotations

import base64
import os
import time

from nself.errors import UsageError
from nself.providers.base import SERVERS, CloudServer, Cluster, ClusterRequest, Provider, ProvisionRequest, Region, Size
from nself.providers.http import ProviderError
from nself.providers.keys import key_name
from nself.providers.signers import Exo2Signer

ZONES = ("ch-gva-2", "ch-dk-2", "de-fra-1", "de-muc-1", "at-vie-1", "at-vie-2", "bg-sof-1", "hr-zag-1")
_HOME_ZONE = "ch-gva-2"
_STATUS = {"starting": "starting", "running": "running", "stopping": "stopped", "stopped": "stopped",
           "destroying": "deleting", "destroyed": "deleting", "migrating": "starting"}


def _error(body) -> str | None:
    return str(body["message"]) if isinstance(body, dict) and body.get("message") else None


class Exoscale(Provider):
    name = "exoscale"
    title = "Exoscale"
    base_url = "https://api-{zone}.exoscale.com/v2"
    image = "Linux Ubuntu 24.04 LTS 64-bit"
    id_pattern = r"[a-z]{2}-[a-z]{3}-\d/[0-9a-f-]{36}"
    user_data_limit = 24 * 1024      # 32 KiB after base64
    disk_gb = 50
    capabilities = SERVERS | {"k8s"}
    describe_error = staticmethod(_error)

    @staticmethod
    def auth(values: dict[str, str]):
        return Exo2Signer(values["api_key"], values["api_secret"])

    def _in(self, zone: str):
        """The same credentials against a zone's endpoint (NSELF_EXOSCALE_API_URL: one for all)."""
        if zone not in ZONES:
            raise UsageError(f"Exoscale has no zone {zone!r}", hint="zones: " + ", ".join(ZONES))
        api = self.api
        if not os.environ.get("NSELF_EXOSCALE_API_URL"):
            api = api.at(self.base_url.format(zone=zone))
        return api

    def validate(self) -> str:
        self._in(_HOME_ZONE).request("GET", "/zone")
        return "an Exoscale API key"

    def list_regions(self) -> list[Region]:
        return [Region(z["name"], z["name"], z["name"][:2].upper())
                for z in self._in(_HOME_ZONE).request("GET", "/zone").get("zones") or []]

    def _types(self) -> list[dict]:
        return self._in(_HOME_ZONE).request("GET", "/instance-type").get("instance-types") or []

    def list_sizes(self) -> list[Size]:
        return [Size(f"{t['family']}.{t['size']}", int(t["cpus"]), t["memory"] / 2 ** 30, self.disk_gb, None,
                     "EUR", tuple(t.get("zones") or ()))
                for t in self._types() if t.get("authorized", True) and t.get("family") == "standard"]

    def _template(self, api, image: str) -> str:
        templates = api.request("GET", "/template", params={"visibility": "public"}).get("templates") or []
        for template in templates:
            if image in (template.get("id"), template.get("name")):
                return template["id"]
        raise UsageError(f"Exoscale has no public template {image!r}",
                         hint="templates: " + ", ".join(t["name"] for t in templates[:8]))

    def _ssh_key(self, api, public_key: str) -> str:
        name = key_name(public_key)
        if api.request("GET", f"/ssh-key/{name}", ok=(404,)) is None:
            self._wait(api, api.request("POST", "/ssh-key", json={"name": name, "public-key": public_key}))
        return name

    def _wait(self, api, operation: dict) -> dict:
        """Operations finish in seconds; the caller's own wait covers the instance booting."""
        for _ in range(60):
            if operation.get("state") != "pending":
                break
            time.sleep(0.5)
            operation = api.request("GET", f"/operation/{operation['id']}")
        if operation.get("state") not in ("success", None):
            raise ProviderError(f"exoscale: operation {operation.get('id')} ended {operation.get('state')}: "
                                f"{operation.get('message') or operation.get('reason')}")
        return operation

    def create(self, request: ProvisionRequest) -> CloudServer:
        api = self._in(request.region)
        kind = next((t for t in self._types() if f"{t['family']}.{t['size']}" == request.size), None)
        if kind is None:
            raise UsageError(f"Exoscale has no instance type {request.size!r}",
                             hint="see cloud.providers.sizes exoscale")
        body = {"name": request.name, "instance-type": {"id": kind["id"]},
                "template": {"id": self._template(api, request.image)}, "disk-size": self.disk_gb,
                "ssh-keys": [{"name": self._ssh_key(api, request.ssh_public_key)}],
                "labels": {"managed-by": "nself", "nself-request": request.request_id}}
        if request.user_data:
            body["user-data"] = base64.b64encode(request.user_data.encode()).decode()
        operation = self._wait(api, api.request("POST", "/instance", json=body))
        return self.get(f"{request.region}/{operation['reference']['id']}")

    def get(self, server_id: str) -> CloudServer | None:
        zone, uuid = server_id.split("/", 1)
        body = self._in(zone).request("GET", f"/instance/{uuid}", ok=(404,))
        return self._server(zone, body) if body else None

    def find(self, name: str) -> list[CloudServer]:
        return [s for s in self.list() if s.name == name]

    def list(self) -> list[CloudServer]:
        zones = [_HOME_ZONE] if os.environ.get("NSELF_EXOSCALE_API_URL") else list(ZONES)
        return [self._server(zone, i) for zone in zones
                for i in self._in(zone).request("GET", "/instance").get("instances") or []]

    def destroy(self, server_id: str) -> None:
        zone, uuid = server_id.split("/", 1)
        api = self._in(zone)
        operation = api.request("DELETE", f"/instance/{uuid}", ok=(404,))
        if operation:
            self._wait(api, operation)

    def reboot(self, server_id: str) -> None:
        zone, uuid = server_id.split("/", 1)
        api = self._in(zone)
        self._wait(api, api.request("PUT", f"/instance/{uuid}:reboot"))

    # SKS: a cluster (control plane) and one node pool; ids are `<zone>/<uuid>` like servers.
    def k8s_versions(self) -> list[str]:
        return list(self._in(_HOME_ZONE).request("GET", "/sks-cluster-version").get("sks-cluster-versions") or [])

    def k8s_create(self, request: ClusterRequest) -> Cluster:
        api = self._in(request.region)
        kind = next((t for t in self._types() if f"{t['family']}.{t['size']}" == request.size), None)
        if kind is None:
            raise UsageError(f"Exoscale has no instance type {request.size!r}",
                             hint="see cloud.providers.sizes exoscale")
        version = self.k8s_versions()[0] if request.version == "latest" else request.version
        operation = self._wait(api, api.request("POST", "/sks-cluster", json={
            "name": request.name, "level": "starter", "version": version, "cni": "calico",
            "labels": {"managed-by": "nself"}}))
        cluster_id = operation["reference"]["id"]
        self._wait(api, api.request("POST", f"/sks-cluster/{cluster_id}/nodepool", json={
            "name": f"{request.name}-pool", "size": request.nodes, "disk-size": self.disk_gb,
            "instance-type": {"id": kind["id"]}}))
        return self.k8s_get(f"{request.region}/{cluster_id}")

    def k8s_list(self) -> list[Cluster]:
        zones = [_HOME_ZONE] if os.environ.get("NSELF_EXOSCALE_API_URL") else list(ZONES)
        return [self._cluster(zone, c) for zone in zones
                for c in self._in(zone).request("GET", "/sks-cluster").get("sks-clusters") or []]

    def k8s_get(self, cluster_id: str) -> Cluster | None:
        zone, uuid = cluster_id.split("/", 1)
        body = self._in(zone).request("GET", f"/sks-cluster/{uuid}", ok=(404,))
        return self._cluster(zone, body) if body else None

    def k8s_delete(self, cluster_id: str) -> None:
        """Node pools first: Exoscale refuses to delete a cluster that still has them."""
        zone, uuid = cluster_id.split("/", 1)
        api = self._in(zone)
        body = api.request("GET", f"/sks-cluster/{uuid}", ok=(404,))
        if body is None:
            return
        for pool in body.get("nodepools") or []:
            self._wait(api, api.request("DELETE", f"/sks-cluster/{uuid}/nodepool/{pool['id']}"))
        self._wait(api, api.request("DELETE", f"/sks-cluster/{uuid}"))

    def k8s_kubeconfig(self, cluster_id: str) -> str:
        zone, uuid = cluster_id.split("/", 1)
        body = self._in(zone).request("POST", f"/sks-cluster-kubeconfig/{uuid}",
                                      json={"user": "nself-admin", "groups": ["system:masters"]})
        return base64.b64decode(body["kubeconfig"]).decode()

    @staticmethod
    def _cluster(zone: str, data: dict) -> Cluster:
        status = {"running": "running", "creating": "starting", "deleting": "deleting", "error": "error"}.get(
            data.get("state"), "starting" if data.get("state") in ("upgrading", "updating") else "unknown")
        nodes = sum(p.get("size", 0) for p in data.get("nodepools") or [])
        return Cluster(f"{zone}/{data['id']}", data.get("name", ""), status, zone, data.get("version"),
                       data.get("endpoint"), nodes)

    @staticmethod
    def _server(zone: str, data: dict) -> CloudServer:
        kind = data.get("instance-type") or {}
        size = f"{kind['family']}.{kind['size']}" if "family" in kind else kind.get("id")
        return CloudServer(f"{zone}/{data['id']}", data.get("name", ""), _STATUS.get(data.get("state"), "unknown"),
                           data.get("public-ip"), data.get("ipv6-address"), zone, size, data.get("created-at"),
                           dict(data.get("labels") or {}))


DRIVER = Exoscale
