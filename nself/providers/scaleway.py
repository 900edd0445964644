"""Scaleway Instances (https://www.scaleway.com/en/developers/api/instance/): X-Auth-Token with a
project id, one path per zone, servers created stopped and then powered on, the SSH key passed as
an AUTHORIZED_KEY tag (Scaleway's own mechanism, no IAM call needed), cloud-init through the
user_data endpoint, terminate to delete a running server with its volumes and IP, EUR.

Scaleway has no endpoint listing zones; the zones are those it documents. Server ids are
`<zone>/<uuid>`."""
from __future__ import annotations

import base64

from nself.errors import UsageError
from nself.providers.base import (SERVERS, CloudServer, Cluster, ClusterRequest, Provider, ProvisionRequest, Region,
                                  Size, labels_from_tags, newest_first)

ZONES = {"fr-par-1": "Paris 1", "fr-par-2": "Paris 2", "fr-par-3": "Paris 3", "nl-ams-1": "Amsterdam 1",
         "nl-ams-2": "Amsterdam 2", "nl-ams-3": "Amsterdam 3", "pl-waw-1": "Warsaw 1", "pl-waw-2": "Warsaw 2",
         "pl-waw-3": "Warsaw 3"}
_HOME_ZONE = "fr-par-1"
_STATUS = {"running": "running", "starting": "starting", "stopped": "stopped", "stopping": "stopped",
           "stopped in place": "stopped", "locked": "unknown"}




def _error(body) -> str | None:
    if isinstance(body, dict) and body.get("message"):
        return f"{body.get('type', 'error')}: {body['message']}"
    return None


class Scaleway(Provider):
    name = "scaleway"
    title = "Scaleway"
    base_url = "https://api.scaleway.com"
    image = "Ubuntu 24.04 Noble Numbat"
    id_pattern = r"[a-z]{2}-[a-z]{3}-\d/[0-9a-f-]{36}"
    user_data_limit = 1024 * 1024
    capabilities = SERVERS | {"k8s"}
    describe_error = staticmethod(_error)

    def __init__(self, api, project: str = ""):
        super().__init__(api)
        self.project = project

    @staticmethod
    def auth(values: dict[str, str]):
        def sign(request):
            request.headers["X-Auth-Token"] = values["secret_key"]
            return request
        return sign

    @classmethod
    def configure(cls, api, values: dict[str, str]) -> Scaleway:
        return cls(api, values["project_id"])

    @staticmethod
    def _zone(zone: str) -> str:
        if zone not in ZONES:
            raise UsageError(f"Scaleway has no zone {zone!r}", hint="zones: " + ", ".join(ZONES))
        return f"/instance/v1/zones/{zone}"

    def validate(self) -> str:
        self.api.request("GET", f"{self._zone(_HOME_ZONE)}/servers", params={"per_page": 1, "project": self.project})
        return f"a Scaleway key for project {self.project}"

    def list_regions(self) -> list[Region]:
        return [Region(zone, name, zone[:2].upper()) for zone, name in ZONES.items()]

    def _pages(self, path: str, key: str, **params) -> list:
        """Pages until `total_count` items came (the server may return fewer than per_page)."""
        items: list = []
        for page in range(1, 1000):
            body = self.api.request("GET", path, params={"per_page": 50, "page": page, **params})
            chunk = body.get(key) or []
            items += list(chunk.items()) if isinstance(chunk, dict) else chunk
            if not chunk or len(items) >= int(body.get("total_count") or 0):
                break
        return items

    def list_sizes(self, zone: str = _HOME_ZONE) -> list[Size]:
        types = dict(self._pages(f"{self._zone(zone)}/products/servers", "servers"))
        return [Size(name, int(t["ncpus"]), t["ram"] / 2 ** 30,
                     int(((t.get("volumes_constraint") or {}).get("min_size") or 0) / 10 ** 9),
                     float(t["monthly_price"]) if t.get("monthly_price") else None, "EUR")
                for name, t in types.items() if t.get("arch", "x86_64") == "x86_64"]

    def _image(self, zone: str, image: str) -> str:
        if len(image) == 36 and image.count("-") == 4:
            return image
        found = self.api.request("GET", f"{self._zone(zone)}/images",
                                 params={"name": image, "public": "true", "arch": "x86_64"}).get("images") or []
        exact = [i for i in found if i.get("name") == image]
        if not exact:
            raise UsageError(f"Scaleway has no public image {image!r} in {zone}",
                             hint="pass --image with an image id or its exact name")
        return exact[0]["id"]

    def create(self, request: ProvisionRequest) -> CloudServer:
        base = self._zone(request.region)
        key = "_".join(request.ssh_public_key.split()[:2])     # Scaleway tags take no spaces
        body = {"name": request.name, "commercial_type": request.size, "image": self._image(request.region,
                                                                                              request.image),
                "project": self.project, "dynamic_ip_required": True, "enable_ipv6": True,
                "tags": ["managed-by-nself", f"nself-request:{request.request_id}", f"AUTHORIZED_KEY={key}"]}
        created = self.api.request("POST", f"{base}/servers", json=body)["server"]
        return self.complete(request, self._server(request.region, created))

    def complete(self, request: ProvisionRequest, server: CloudServer) -> CloudServer:
        zone, uuid = server.id.split("/", 1)
        base = self._zone(zone)
        if request.user_data:
            self.api.request("PATCH", f"{base}/servers/{uuid}/user_data/cloud-init", text=request.user_data)
        if server.status == "stopped":
            # Created servers are stopped: start it, or it would sit there (and cost) doing nothing.
            self.api.request("POST", f"{base}/servers/{uuid}/action", json={"action": "poweron"})
        return server

    def get(self, server_id: str) -> CloudServer | None:
        zone, uuid = server_id.split("/", 1)
        body = self.api.request("GET", f"{self._zone(zone)}/servers/{uuid}", ok=(404,))
        return self._server(zone, body["server"]) if body else None

    def find(self, name: str) -> list[CloudServer]:
        return self._list(name=name)

    def list(self) -> list[CloudServer]:
        return self._list()

    def _list(self, **filters) -> list[CloudServer]:
        return [self._server(zone, s) for zone in ZONES
                for s in self._pages(f"{self._zone(zone)}/servers", "servers", project=self.project, **filters)]

    def destroy(self, server_id: str) -> None:
        """terminate removes a running server with its volumes and flexible IP; a stopped one is
        deleted, then its volumes, so nothing is left to bill."""
        zone, uuid = server_id.split("/", 1)
        base = self._zone(zone)
        body = self.api.request("GET", f"{base}/servers/{uuid}", ok=(404,))
        if body is None:
            return
        server = body["server"]
        if server.get("state") == "running":
            self.api.request("POST", f"{base}/servers/{uuid}/action", json={"action": "terminate"})
            return
        self.api.request("DELETE", f"{base}/servers/{uuid}", ok=(404,))
        for volume in (server.get("volumes") or {}).values():
            self.api.request("DELETE", f"{base}/volumes/{volume['id']}", ok=(404,))

    def reboot(self, server_id: str) -> None:
        zone, uuid = server_id.split("/", 1)
        self.api.request("POST", f"{self._zone(zone)}/servers/{uuid}/action", json={"action": "reboot"})

    # Kapsule: regional (a zone's region: fr-par-1 → fr-par); ids are `<region>/<uuid>`.
    @staticmethod
    def _k8s(region: str) -> str:
        return f"/k8s/v1/regions/{region}"

    def k8s_versions(self, region: str = "fr-par") -> list[str]:
        versions = [v["name"] for v in self.api.request("GET", f"{self._k8s(region)}/versions").get("versions") or []]
        return newest_first(versions)

    def k8s_create(self, request: ClusterRequest) -> Cluster:
        self._zone(request.region)
        region = request.region.rsplit("-", 1)[0]
        version = self.k8s_versions(region)[0] if request.version == "latest" else request.version
        body = {"project_id": self.project, "type": "kapsule", "name": request.name, "version": version,
                "cni": "cilium", "tags": ["managed-by-nself"],
                "pools": [{"name": f"{request.name}-pool", "node_type": request.size, "size": request.nodes,
                           "zone": request.region, "autoscaling": False, "autohealing": True}]}
        return self._cluster(region, self.api.request("POST", f"{self._k8s(region)}/clusters", json=body))

    def k8s_list(self) -> list[Cluster]:
        regions = sorted({zone.rsplit("-", 1)[0] for zone in ZONES})
        return [self._cluster(region, c) for region in regions
                for c in self._pages(f"{self._k8s(region)}/clusters", "clusters", project_id=self.project)]

    def k8s_get(self, cluster_id: str) -> Cluster | None:
        region, uuid = cluster_id.split("/", 1)
        body = self.api.request("GET", f"{self._k8s(region)}/clusters/{uuid}", ok=(404,))
        return self._cluster(region, body) if body else None

    def k8s_delete(self, cluster_id: str) -> None:
        region, uuid = cluster_id.split("/", 1)
        self.api.request("DELETE", f"{self._k8s(region)}/clusters/{uuid}",
                         params={"with_additional_resources": "true"}, ok=(404,))

    def k8s_kubeconfig(self, cluster_id: str) -> str:
        region, uuid = cluster_id.split("/", 1)
        body = self.api.request("GET", f"{self._k8s(region)}/clusters/{uuid}/kubeconfig")
        return base64.b64decode(body["content"]).decode()

    @staticmethod
    def _cluster(region: str, data: dict) -> Cluster:
        status = {"ready": "running", "creating": "starting", "pool_required": "starting", "updating": "starting",
                  "deleting": "deleting", "error": "error"}.get(data.get("status"), "unknown")
        return Cluster(f"{region}/{data['id']}", data.get("name", ""), status, region, data.get("version"),
                       data.get("cluster_url"), None)

    @staticmethod
    def _server(zone: str, data: dict) -> CloudServer:
        labels = labels_from_tags(data.get("tags") or [])
        ipv6 = (data.get("ipv6") or {}).get("address")
        return CloudServer(f"{zone}/{data['id']}", data.get("name", ""), _STATUS.get(data.get("state"), "unknown"),
                           (data.get("public_ip") or {}).get("address"), ipv6, zone, data.get("commercial_type"),
                           data.get("creation_date"), labels)


DRIVER = Scaleway
