"""IONOS Cloud (https://api.ionos.com/docs/cloud/v6/): a token (Bearer) or user and password
(Basic). Servers live in a virtual datacenter with a LAN: nself keeps one datacenter per location
(`nself-<location>`) with one public LAN and creates both when missing, waiting until IONOS reports
them AVAILABLE. ENTERPRISE servers take any cores/RAM, so sizes are `<cores>c-<ram>gb` and IONOS
publishes no prices through its API. Server ids are `<datacenter>/<server>`."""
from __future__ import annotations

import base64
import re
import time

from nself.errors import UsageError
from nself.providers.base import (SERVERS, CloudServer, Cluster, ClusterRequest, Provider, ProvisionRequest, Region,
                                  Size, newest_first)
from nself.providers.http import ProviderError, token_or_basic

_SIZES = [(1, 1), (1, 2), (2, 4), (2, 8), (4, 8), (4, 16), (8, 16), (8, 32), (16, 32), (16, 64)]
_SIZE = re.compile(r"^(\d+)c-(\d+)gb$")
_LAN = "nself-public"


def _error(body) -> str | None:
    messages = body.get("messages") if isinstance(body, dict) else None
    return "; ".join(f"{m.get('errorCode')}: {m.get('message')}" for m in messages) if messages else None


def _datacenter_name(location: str) -> str:
    return "nself-" + location.replace("/", "-")


class Ionos(Provider):
    name = "ionos"
    title = "IONOS Cloud"
    base_url = "https://api.ionos.com/cloudapi/v6"
    image = "ubuntu:latest"
    id_pattern = r"[0-9a-f-]{36}/[0-9a-f-]{36}"
    user_data_limit = 64 * 1024
    disk_gb = 20
    capabilities = SERVERS | {"k8s"}
    describe_error = staticmethod(_error)

    auth = staticmethod(token_or_basic)

    def validate(self) -> str:
        self.api.request("GET", "/datacenters", params={"depth": 0, "limit": 1})
        return "an IONOS Cloud account"

    def list_regions(self) -> list[Region]:
        return [Region(item["id"], (item.get("properties") or {}).get("name", item["id"]), item["id"][:2].upper())
                for item in self.api.request("GET", "/locations", params={"depth": 1}).get("items") or []]

    def list_sizes(self) -> list[Size]:
        return [Size(f"{cores}c-{ram}gb", cores, ram, self.disk_gb, None, "EUR") for cores, ram in _SIZES]

    def _await_available(self, path: str, what: str) -> dict:
        for _ in range(300):
            body = self.api.request("GET", path, params={"depth": 1})
            if (body.get("metadata") or {}).get("state") in ("AVAILABLE", "ACTIVE"):
                return body
            time.sleep(1)
        raise ProviderError(f"ionos: {what} is not AVAILABLE after 300 s")

    def _datacenters(self) -> list[dict]:
        return [d for d in self.api.request("GET", "/datacenters", params={"depth": 1}).get("items") or []
                if (d.get("properties") or {}).get("name", "").startswith("nself-")]

    def _datacenter(self, location: str) -> str:
        """The datacenter and public LAN nself uses in this location, created when missing."""
        found = [d for d in self._datacenters() if d["properties"].get("location") == location
                 and d["properties"]["name"] == _datacenter_name(location)]
        if found:
            dc = found[0]["id"]
        else:
            dc = self.api.request("POST", "/datacenters", json={"properties": {
                "name": _datacenter_name(location), "location": location,
                "description": "servers created by nself"}})["id"]
            self._await_available(f"/datacenters/{dc}", f"datacenter {dc}")
        lans = self.api.request("GET", f"/datacenters/{dc}/lans", params={"depth": 1}).get("items") or []
        if not any((lan.get("properties") or {}).get("name") == _LAN for lan in lans):
            lan = self.api.request("POST", f"/datacenters/{dc}/lans",
                                   json={"properties": {"name": _LAN, "public": True}})
            self._await_available(f"/datacenters/{dc}/lans/{lan['id']}", f"LAN {lan['id']}")
        return dc

    def _lan_id(self, dc: str) -> int:
        lans = self.api.request("GET", f"/datacenters/{dc}/lans", params={"depth": 1}).get("items") or []
        return int(next(lan["id"] for lan in lans if lan["properties"].get("name") == _LAN))

    def create(self, request: ProvisionRequest) -> CloudServer:
        match = _SIZE.match(request.size)
        if not match:
            raise UsageError(f"IONOS sizes are <cores>c-<ram>gb, not {request.size!r}", hint="e.g. --size 2c-4gb")
        dc = self._datacenter(request.region)
        volume = {"name": f"{request.name}-{request.request_id}", "size": self.disk_gb, "type": "SSD",
                  "imageAlias": request.image, "sshKeys": [request.ssh_public_key]}
        if request.user_data:
            volume["userData"] = base64.b64encode(request.user_data.encode()).decode()
        body = {"properties": {"name": request.name, "cores": int(match[1]), "ram": int(match[2]) * 1024},
                "entities": {"volumes": {"items": [{"properties": volume}]},
                             "nics": {"items": [{"properties": {"name": "public", "lan": self._lan_id(dc),
                                                                "dhcp": True}}]}}}
        created = self.api.request("POST", f"/datacenters/{dc}/servers", json=body)
        return self._server(dc, created)

    def get(self, server_id: str) -> CloudServer | None:
        dc, server = server_id.split("/", 1)
        body = self.api.request("GET", f"/datacenters/{dc}/servers/{server}", params={"depth": 3}, ok=(404,))
        return self._server(dc, body) if body else None

    def find(self, name: str) -> list[CloudServer]:
        return [s for s in self.list() if s.name == name]

    def list(self) -> list[CloudServer]:
        return [self._server(dc["id"], item) for dc in self._datacenters()
                for item in self.api.request("GET", f"/datacenters/{dc['id']}/servers",
                                             params={"depth": 3}).get("items") or []]

    def destroy(self, server_id: str) -> None:
        dc, server = server_id.split("/", 1)
        self.api.request("DELETE", f"/datacenters/{dc}/servers/{server}", params={"deleteVolumes": "true"},
                         ok=(404,))

    def reboot(self, server_id: str) -> None:
        dc, server = server_id.split("/", 1)
        self.api.request("POST", f"/datacenters/{dc}/servers/{server}/reboot")

    # Managed Kubernetes: the cluster, then a node pool in nself's datacenter of that location.
    def k8s_versions(self) -> list[str]:
        versions = self.api.request("GET", "/k8s/versions", shape=list) or []
        return newest_first(versions)

    def k8s_create(self, request: ClusterRequest) -> Cluster:
        match = _SIZE.match(request.size)
        if not match:
            raise UsageError(f"IONOS sizes are <cores>c-<ram>gb, not {request.size!r}", hint="e.g. --size 2c-4gb")
        version = self.k8s_versions()[0] if request.version == "latest" else request.version
        dc = self._datacenter(request.region)
        cluster = self.api.request("POST", "/k8s", json={"properties": {"name": request.name, "k8sVersion": version}})
        self._await_available(f"/k8s/{cluster['id']}", f"cluster {cluster['id']}")
        self.api.request("POST", f"/k8s/{cluster['id']}/nodepools", json={"properties": {
            "name": f"{request.name}-pool", "datacenterId": dc, "nodeCount": request.nodes,
            "cpuFamily": "INTEL_SKYLAKE", "coresCount": int(match[1]), "ramSize": int(match[2]) * 1024,
            "availabilityZone": "AUTO", "storageType": "SSD", "storageSize": self.disk_gb}})
        return self._cluster(cluster, request.region)

    def k8s_list(self) -> list[Cluster]:
        return [self._cluster(c) for c in self.api.request("GET", "/k8s", params={"depth": 1}).get("items") or []]

    def k8s_get(self, cluster_id: str) -> Cluster | None:
        body = self.api.request("GET", f"/k8s/{cluster_id}", params={"depth": 1}, ok=(404,))
        return self._cluster(body) if body else None

    def k8s_delete(self, cluster_id: str) -> None:
        self.api.request("DELETE", f"/k8s/{cluster_id}", ok=(404,))

    def k8s_kubeconfig(self, cluster_id: str) -> str:
        return self.api.request("GET", f"/k8s/{cluster_id}/kubeconfig", raw=True)

    @staticmethod
    def _cluster(data: dict, region: str | None = None) -> Cluster:
        props = data.get("properties") or {}
        state = (data.get("metadata") or {}).get("state")
        status = {"ACTIVE": "running", "DEPLOYING": "starting", "BUSY": "starting", "DESTROYING": "deleting",
                  "FAILED": "error"}.get(state, "unknown")
        return Cluster(data["id"], props.get("name", ""), status, props.get("location") or region,
                       props.get("k8sVersion"), None, None)

    @staticmethod
    def _server(dc: str, data: dict) -> CloudServer:
        props = data.get("properties") or {}
        state = (data.get("metadata") or {}).get("state")
        vm = props.get("vmState")
        status = "running" if state == "AVAILABLE" and vm == "RUNNING" else \
            "stopped" if vm in ("SHUTOFF", "SHUTDOWN") else "deleting" if state == "DEPROVISIONING" else "starting"
        entities = data.get("entities") or {}
        ips = [ip for nic in (entities.get("nics") or {}).get("items") or []
               for ip in (nic.get("properties") or {}).get("ips") or []]
        labels = {}
        for volume in (entities.get("volumes") or {}).get("items") or []:
            # The boot volume is named <server>-<request id>: IONOS names are not unique, this is.
            name = (volume.get("properties") or {}).get("name") or ""
            if name.startswith(props.get("name", "") + "-"):
                labels["nself-request"] = name[len(props.get("name", "")) + 1:]
        return CloudServer(f"{dc}/{data['id']}", props.get("name", ""), status, ips[0] if ips else None, None,
                           None, f"{props.get('cores')}c-{(props.get('ram') or 0) // 1024}gb"
                           if props.get("cores") else None, (data.get("metadata") or {}).get("createdDate"), labels)


DRIVER = Ionos
