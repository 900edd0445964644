"""UpCloud (no OpenAPI description exists): zones, plans and prices are the recorded answers of
UpCloud's own Go SDK fixtures (specs/upcloud/fixtures), a created server starts from the
recorded create answer (its throwaway passwords removed), and request bodies are checked
against the fields the API documents (data/upcloud.yml). Deleting a started server fails as
the API does; UKS clusters live on a private network nself creates."""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import yaml

from nself.testing.clouds.base import FakeCloud, copy, public

_UUID = r"[0-9a-f-]{36}"


def _recorded(specs: Path, name: str) -> list:
    """The answer bodies of one recorded SDK fixture, in order."""
    data = yaml.safe_load((specs / "upcloud" / "fixtures" / f"{name}.yaml").read_text())
    return [json.loads(i["response"]["body"]) if i["response"].get("body") else None
            for i in data["interactions"]]


class UpCloudFake(FakeCloud):
    name = "upcloud"
    token_env = "UPCLOUD_TOKEN"
    prefix = "/1.3"
    routes = (
        ("GET", r"/account", "get_account"),
        ("GET", r"/zone", "list_zones"),
        ("GET", r"/plan", "list_plans"),
        ("GET", r"/price", "list_prices"),
        ("GET", r"/storage/template", "list_templates"),
        ("GET", r"/network", "list_networks"),
        ("POST", r"/network", "create_network"),
        ("GET", rf"/network/(?P<network>{_UUID})", "get_network"),
        ("GET", r"/server", "list_servers"),
        ("POST", r"/server", "create_server"),
        ("GET", rf"/server/(?P<server>{_UUID})", "get_server"),
        ("DELETE", rf"/server/(?P<server>{_UUID})", "delete_server"),
        ("POST", rf"/server/(?P<server>{_UUID})/stop", "stop_server"),
        ("POST", rf"/server/(?P<server>{_UUID})/restart", "restart_server"),
        ("GET", r"/kubernetes/versions", "list_versions"),
        ("GET", r"/kubernetes", "list_clusters"),
        ("POST", r"/kubernetes", "create_cluster"),
        ("GET", rf"/kubernetes/(?P<cluster>{_UUID})", "get_cluster"),
        ("DELETE", rf"/kubernetes/(?P<cluster>{_UUID})", "delete_cluster"),
        ("GET", rf"/kubernetes/(?P<cluster>{_UUID})/kubeconfig", "get_kubeconfig"),
    )

    def __init__(self, specs: Path, **kwargs):
        super().__init__(None, **kwargs)
        self.zones = _recorded(specs, "getzones")[0]
        self.plans = _recorded(specs, "getplans")[0]
        self.prices = _recorded(specs, "getpricezones")[0]
        self.server_template = _recorded(specs, "createmodifydeleteserver")[0]["server"]
        for secret in ("password", "remote_access_password"):
            self.server_template.pop(secret, None)
        self.templates = self.catalog["templates"]
        self.uks_versions = self.catalog["kubernetes_versions"]
        self.networks: dict[str, dict] = {}

    def error(self, status, code, message):
        return status, {"error": {"error_code": code.upper(), "error_message": message}}

    def route(self, method, path, query, body):
        # UpCloud takes /network/?zone=… as well (its SDK sends that)
        return super().route(method, path.rstrip("/") or "/", query, body)

    def _view(self, server: dict) -> dict:
        if server["state"] == "maintenance" and self.booted(server):
            server["state"] = "started"
        if server["state"] == "stopping":
            server["state"] = "stopped"
        return public(server)

    def _server(self, server_id: str) -> dict:
        return self.one(self.servers, server_id, f"The server {server_id} does not exist.", "server_not_found")

    def _cluster(self, cluster_id: str) -> dict:
        return self.one(self.clusters, cluster_id, "The cluster does not exist.", "cluster_not_found")

    # --- account and catalog --------------------------------------------------------------
    def get_account(self, query, body):
        return 200, {"account": {"username": "ops", "credits": 10000}}

    def list_zones(self, query, body):
        return 200, self.zones

    def list_plans(self, query, body):
        return 200, self.plans

    def list_prices(self, query, body):
        return 200, self.prices

    def list_templates(self, query, body):
        return 200, {"storages": {"storage": [{"uuid": t["uuid"], "title": t["title"], "access": "public",
                                               "type": "template", "state": "online", "size": 4, "zone": "fi-hel1"}
                                              for t in self.templates]}}

    # --- servers --------------------------------------------------------------------------
    def list_servers(self, query, body):
        for server in self.servers.values():
            self.tick(server)
        return 200, {"servers": {"server": [self._view(s) for s in self.servers.values()]}}

    def get_server(self, query, body, server):
        found = self._server(server)
        self.tick(found)
        return 200, {"server": self._view(found)}

    def stop_server(self, query, body, server):
        found = self._server(server)
        found["state"] = "stopping"
        return 200, {"server": public(found)}

    def restart_server(self, query, body, server):
        found = self._server(server)
        if found["state"] != "started":
            return self.error(400, "server_state_illegal", "The server is not started.")
        return 200, {"server": public(found)}

    def delete_server(self, query, body, server):
        if self._server(server)["state"] != "stopped":
            return self.error(400, "server_state_illegal", "The server is not stopped.")
        del self.servers[server]
        return 204, None

    def create_server(self, query, body):
        server = (body or {}).get("server") or {}
        refused = self.check_fields("POST /server", server, set(self.catalog["server_fields"]),
                                    tuple(self.catalog["server_required"]))
        if refused:
            return refused
        if server["zone"] not in {z["id"] for z in self.zones["zones"]["zone"]}:
            return self.error(400, "zone_invalid", "The zone is invalid.")
        plan = next((p for p in self.plans["plans"]["plan"] if p["name"] == server.get("plan")), None)
        if plan is None:
            return self.error(400, "plan_invalid", "The plan is invalid.")
        devices = server["storage_devices"]["storage_device"]
        templates = {t["uuid"] for t in self.templates}
        if any(d.get("storage") not in templates for d in devices if d.get("action") == "clone"):
            return self.error(400, "storage_not_found", "The storage does not exist.")
        server_id = str(uuid.uuid4())
        record = {**copy(self.server_template), "uuid": server_id, "title": server["title"],
                  "hostname": server["hostname"], "zone": server["zone"], "plan": plan["name"],
                  "core_number": str(plan["core_number"]), "memory_amount": str(plan["memory_amount"]),
                  "labels": server.get("labels") or {"label": []}, "state": "maintenance",
                  "created": int(time.time()), "metadata": server.get("metadata", "no")}
        record["ip_addresses"] = {"ip_address": [{"access": "public", "address": "127.0.0.1", "family": "IPv4"},
                                                 {"access": "public", "address": "2a04:3545:1000:720::1",
                                                  "family": "IPv6"}]}
        record.update(_polls=0, _ip="127.0.0.1")
        self.servers[server_id] = record
        return 202, {"server": public(record)}

    # --- networks and UKS -----------------------------------------------------------------
    def list_networks(self, query, body):
        found = [n for n in self.networks.values() if query.get("zone") in (None, n["zone"])]
        return 200, {"networks": {"network": found}}

    def create_network(self, query, body):
        network = {**body["network"], "uuid": str(uuid.uuid4()), "type": "private", "servers": {"server": []}}
        self.networks[network["uuid"]] = network
        return 201, {"network": network}

    def get_network(self, query, body, network):
        return 200, {"network": self.one(self.networks, network, "no network", "network_not_found")}

    def list_versions(self, query, body):
        return 200, [{"id": v, "version": v} for v in self.uks_versions]

    def list_clusters(self, query, body):
        return 200, [public(c) for c in self.clusters.values()]

    def create_cluster(self, query, body):
        refused = self.check_fields("POST /kubernetes", body, set(self.catalog["cluster_fields"]),
                                    tuple(self.catalog["cluster_required"]),
                                    {"node_groups": set(self.catalog["node_group_fields"])})
        if refused:
            return refused
        if body["network"] not in self.networks:
            return self.error(400, "network_not_found", "The network does not exist.")
        cluster_id = str(uuid.uuid4())
        self.clusters[cluster_id] = {"uuid": cluster_id, "name": body["name"], "zone": body["zone"],
                                     "network": body["network"], "network_cidr": body.get("network_cidr"),
                                     "node_groups": body["node_groups"], "state": "pending",
                                     "version": body.get("version", self.uks_versions[-1]), "_polls": 0}
        return 201, public(self.clusters[cluster_id])

    def get_cluster(self, query, body, cluster):
        found = self._cluster(cluster)
        self.tick(found)
        if found["state"] == "pending" and self.booted(found):
            found["state"] = "running"
        return 200, public(found)

    def delete_cluster(self, query, body, cluster):
        self._cluster(cluster)
        del self.clusters[cluster]
        return 204, None

    def get_kubeconfig(self, query, body, cluster):
        self._cluster(cluster)
        return 200, {"kubeconfig": self.kubeconfig}
