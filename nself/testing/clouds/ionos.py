"""IONOS Cloud (openapi.yaml): datacenters, LANs and servers become AVAILABLE a few reads
after they are created (IONOS provisions asynchronously); a server needs its datacenter and
a LAN that exists there; managed Kubernetes node pools need an AVAILABLE cluster."""
from __future__ import annotations

import uuid
from pathlib import Path

from nself.testing.clouds.base import FakeCloud, now, public
from nself.testing.openapi import Contract

_UUID = r"[0-9a-f-]{36}"
_DC = rf"/datacenters/(?P<dc>{_UUID})"
_GONE = "Resource does not exist"


def _meta(state: str) -> dict:
    return {"state": state, "createdDate": now(), "lastModifiedDate": now(), "etag": uuid.uuid4().hex}


def _collection(kind: str, href: str, items: list) -> tuple[int, dict]:
    return 200, {"id": kind, "type": "collection", "href": href, "items": items}


class IonosFake(FakeCloud):
    name = "ionos"
    token_env = "IONOS_TOKEN"
    prefix = "/cloudapi/v6"
    routes = (
        ("GET", r"/locations", "list_locations"),
        ("GET", r"/datacenters", "list_datacenters"),
        ("POST", r"/datacenters", "create_datacenter"),
        ("GET", _DC, "get_datacenter"),
        ("GET", rf"{_DC}/lans", "list_lans"),
        ("POST", rf"{_DC}/lans", "create_lan"),
        ("GET", rf"{_DC}/lans/(?P<lan>\d+)", "get_lan"),
        ("GET", rf"{_DC}/servers", "list_servers"),
        ("POST", rf"{_DC}/servers", "create_server"),
        ("GET", rf"{_DC}/servers/(?P<server>{_UUID})", "get_server"),
        ("DELETE", rf"{_DC}/servers/(?P<server>{_UUID})", "delete_server"),
        ("POST", rf"{_DC}/servers/(?P<server>{_UUID})/reboot", "reboot_server"),
        ("GET", r"/k8s/versions", "list_versions"),
        ("GET", r"/k8s", "list_clusters"),
        ("POST", r"/k8s", "create_cluster"),
        ("GET", rf"/k8s/(?P<cluster>{_UUID})", "get_cluster"),
        ("DELETE", rf"/k8s/(?P<cluster>{_UUID})", "delete_cluster"),
        ("GET", rf"/k8s/(?P<cluster>{_UUID})/kubeconfig", "get_kubeconfig"),
        ("POST", rf"/k8s/(?P<cluster>{_UUID})/nodepools", "create_nodepool"),
    )

    def __init__(self, specs: Path, **kwargs):
        # The description declares every `type` field (a string enum: "server", "lan", …) as
        # `type: object` beside its allOf, which no answer of the real API satisfies.
        super().__init__(Contract(specs / "ionos" / "openapi.yaml", "https://api.ionos.com", "/cloudapi/v6",
                                  tolerate=(r"^'[a-z-]+' is not of type 'object'$",)), **kwargs)
        self.locations = self.catalog["locations"]
        self.k8s_versions = self.catalog["k8s_versions"]
        self.datacenters: dict[str, dict] = {}

    def error(self, status, code, message):
        return status, {"httpStatus": status, "messages": [{"errorCode": str(status), "message": message}]}

    def _settle(self, thing: dict) -> dict:
        """A read: BUSY turns AVAILABLE after `boot_polls` of them (a server then runs, with its IP)."""
        self.tick(thing)
        if thing["metadata"]["state"] == "BUSY" and self.booted(thing):
            thing["metadata"]["state"] = "AVAILABLE"
            if thing.get("type") == "server":
                thing["properties"]["vmState"] = "RUNNING"
                nic = thing["entities"]["nics"]["items"][0]
                nic["properties"]["ips"] = [thing["_ip"]]
        return public(thing)

    def _dc_view(self, dc: dict) -> dict:
        return {k: v for k, v in self._settle(dc).items() if k != "lans"}

    def _server(self, dc: str, server_id: str) -> dict:
        found = self.servers.get(server_id)
        if found is None or found["_dc"] != dc:
            raise self.refuse(404, "not_found", _GONE)
        return found

    def _cluster(self, cluster_id: str) -> dict:
        return self.one(self.clusters, cluster_id, _GONE)

    # --- locations and datacenters --------------------------------------------------------
    def list_locations(self, query, body):
        return _collection("locations", "/locations", [
            {"id": loc["id"], "type": "location", "href": f"/locations/{loc['id']}",
             "properties": {"name": loc["name"], "features": ["SSD"], "imageAliases": ["ubuntu:latest"]}}
            for loc in self.locations])

    def list_datacenters(self, query, body):
        return _collection("datacenters", "/datacenters", [self._dc_view(dc) for dc in self.datacenters.values()])

    def create_datacenter(self, query, body):
        props = body["properties"]
        if props.get("location") not in {loc["id"] for loc in self.locations}:
            return self.error(422, "invalid", f"location {props.get('location')} does not exist")
        dc_id = str(uuid.uuid4())
        self.datacenters[dc_id] = {"id": dc_id, "type": "datacenter", "href": f"/datacenters/{dc_id}",
                                   "metadata": _meta("BUSY"), "properties": dict(props), "lans": {}}
        return 202, {k: v for k, v in self.datacenters[dc_id].items() if k != "lans"}

    def get_datacenter(self, query, body, dc):
        return 200, self._dc_view(self.one(self.datacenters, dc, _GONE))

    def list_lans(self, query, body, dc):
        found = self.one(self.datacenters, dc, _GONE)
        return _collection("lans", f"/datacenters/{dc}/lans", [self._settle(lan) for lan in found["lans"].values()])

    def create_lan(self, query, body, dc):
        lans = self.one(self.datacenters, dc, _GONE)["lans"]
        lan_id = str(len(lans) + 1)
        lans[lan_id] = {"id": lan_id, "type": "lan", "href": f"/datacenters/{dc}/lans/{lan_id}",
                        "metadata": _meta("BUSY"), "properties": dict(body["properties"])}
        return 202, public(lans[lan_id])

    def get_lan(self, query, body, dc, lan):
        found = self.one(self.one(self.datacenters, dc, _GONE)["lans"], lan, "LAN does not exist")
        return 200, self._settle(found)

    # --- servers --------------------------------------------------------------------------
    def list_servers(self, query, body, dc):
        self.one(self.datacenters, dc, _GONE)
        found = [s for s in self.servers.values() if s["_dc"] == dc]
        return _collection("servers", f"/datacenters/{dc}/servers", [self._settle(s) for s in found])

    def get_server(self, query, body, dc, server):
        self.one(self.datacenters, dc, _GONE)
        return 200, self._settle(self._server(dc, server))

    def delete_server(self, query, body, dc, server):
        self.one(self.datacenters, dc, _GONE)
        self._server(dc, server)
        del self.servers[server]
        return 202, None

    def reboot_server(self, query, body, dc, server):
        self.one(self.datacenters, dc, _GONE)
        self._server(dc, server)
        return 202, None

    def create_server(self, query, body, dc):
        datacenter = self.one(self.datacenters, dc, _GONE)
        if datacenter["metadata"]["state"] != "AVAILABLE":
            return self.error(422, "busy", "the datacenter is still being provisioned")
        nics = body.get("entities", {}).get("nics", {}).get("items") or []
        if any(str(n["properties"]["lan"]) not in datacenter["lans"] for n in nics):
            return self.error(422, "invalid", "the LAN does not exist in this datacenter")
        server_id = str(uuid.uuid4())
        volumes = [{"id": str(uuid.uuid4()), "type": "volume", "href": f"/volumes/{i}",
                    "properties": {k: v for k, v in v["properties"].items() if k not in ("sshKeys", "userData")}}
                   for i, v in enumerate(body.get("entities", {}).get("volumes", {}).get("items") or [])]
        server = {"id": server_id, "type": "server", "href": f"/datacenters/{dc}/servers/{server_id}",
                  "metadata": _meta("BUSY"),
                  "properties": {**body["properties"], "vmState": "SHUTOFF", "type": "ENTERPRISE"},
                  "entities": {"volumes": {"id": f"{server_id}/volumes", "type": "collection", "items": volumes},
                               "nics": {"id": f"{server_id}/nics", "type": "collection", "items": [
                                   {"id": str(uuid.uuid4()), "type": "nic",
                                    "properties": {**n["properties"], "ips": []}} for n in nics]}},
                  "_dc": dc, "_ip": "127.0.0.1", "_polls": 0}
        self.servers[server_id] = server
        return 202, public(server)

    # --- managed Kubernetes ---------------------------------------------------------------
    def list_versions(self, query, body):
        return 200, list(self.k8s_versions)

    def list_clusters(self, query, body):
        return _collection("k8s", "/k8s", [self._settle(c) for c in self.clusters.values()])

    def create_cluster(self, query, body):
        if body["properties"].get("k8sVersion") not in self.k8s_versions:
            return self.error(422, "invalid", "unsupported k8sVersion")
        cluster_id = str(uuid.uuid4())
        self.clusters[cluster_id] = {"id": cluster_id, "type": "k8s", "href": f"/k8s/{cluster_id}",
                                     "metadata": _meta("BUSY"), "properties": dict(body["properties"]),
                                     "_pools": []}
        return 202, public(self.clusters[cluster_id])

    def get_cluster(self, query, body, cluster):
        view = self._settle(self._cluster(cluster))
        if view["metadata"]["state"] == "AVAILABLE":       # clusters say ACTIVE when ready
            view["metadata"]["state"] = "ACTIVE"
        return 200, view

    def delete_cluster(self, query, body, cluster):
        self._cluster(cluster)
        del self.clusters[cluster]
        return 202, None

    def get_kubeconfig(self, query, body, cluster):
        self._cluster(cluster)
        return 200, self.kubeconfig

    def create_nodepool(self, query, body, cluster):
        found = self._cluster(cluster)
        props = body["properties"]
        if props.get("datacenterId") not in self.datacenters:
            return self.error(422, "invalid", "the datacenter does not exist")
        if found["metadata"]["state"] == "BUSY":
            return self.error(422, "busy", "the cluster is still being provisioned")
        found["_pools"].append(props)
        return 202, {"id": str(uuid.uuid4()), "type": "nodepool", "href": f"/k8s/{cluster}/nodepools/x",
                     "metadata": _meta("BUSY"), "properties": props}
