"""Hetzner Cloud (hcloud.json): page/per_page paging with meta.pagination, SSH keys by name,
servers that get their IPv4 once booted, actions for delete and reboot."""
from __future__ import annotations

from pathlib import Path

from nself.providers.keys import md5_fingerprint
from nself.testing.clouds.base import FakeCloud, now, public
from nself.testing.openapi import Contract

_CODES = {401: "unauthorized", 404: "not_found", 409: "uniqueness_error", 422: "invalid_input",
          429: "rate_limit_exceeded", 500: "server_error", 503: "unavailable"}


class HetznerFake(FakeCloud):
    name = "hetzner"
    token_env = "HCLOUD_TOKEN"
    prefix = "/v1"
    routes = (
        ("GET", r"/locations", "list_locations"),
        ("GET", r"/server_types", "list_server_types"),
        ("GET", r"/ssh_keys", "list_ssh_keys"),
        ("POST", r"/ssh_keys", "create_ssh_key"),
        ("GET", r"/servers", "list_servers"),
        ("POST", r"/servers", "create_server"),
        ("GET", r"/servers/(?P<server>\d+)", "get_server"),
        ("DELETE", r"/servers/(?P<server>\d+)", "delete_server"),
        ("POST", r"/servers/(?P<server>\d+)/actions/reboot", "reboot_server"),
    )

    def __init__(self, specs: Path, **kwargs):
        # hcloud.json marks fields such as `image`, `iso` and `deprecation` `nullable` next to an
        # `allOf`; under OpenAPI 3.0.3 that does not make the referenced object nullable, so the
        # null the real API sends fails. Tolerated, for answers only.
        super().__init__(Contract(specs / "hetzner" / "hcloud.json", "https://api.hetzner.cloud", "/v1",
                                  tolerate=(r"^None for not nullable$", r"^None is not of type 'object'$")),
                         **kwargs)
        self.locations = self.catalog["locations"]
        self.types = self.catalog["server_types"]

    def error(self, status, code, message):
        return status, {"error": {"code": _CODES.get(status, code), "message": message, "details": {}}}

    def _listing(self, key: str, items: list, query: dict):
        chunk, last, following = self.page(items, query)
        per_page = min(int(query.get("per_page", 25)), self.page_cap)
        number = int(query.get("page", 1))
        return 200, {key: chunk, "meta": {"pagination": {
            "page": number, "per_page": per_page, "previous_page": number - 1 or None, "next_page": following,
            "last_page": last, "total_entries": len(items)}}}

    def _location(self, name: str) -> dict:
        index, loc = next((i, loc) for i, loc in enumerate(self.locations) if loc["name"] == name)
        return {"id": index + 1, "name": name, "description": f"{loc['city']} DC", "country": loc["country"],
                "city": loc["city"], "latitude": 50.0, "longitude": 12.0, "network_zone": loc["zone"]}

    def _type(self, kind: dict) -> dict:
        gross = kind["gross"]
        net = round(gross / 1.19, 4)
        prices = [{"location": loc["name"], "price_hourly": {"net": f"{net / 730:.4f}", "gross": f"{gross / 730:.4f}"},
                   "price_monthly": {"net": f"{net:.4f}", "gross": f"{gross:.4f}"},
                   "included_traffic": 21990232555520, "price_per_tb_traffic": {"net": "1.0000", "gross": "1.1900"}}
                  for loc in self.locations]
        return {"id": self.types.index(kind) + 1, "name": kind["name"], "description": kind["name"].upper(),
                "category": "shared", "cores": kind["cores"], "memory": kind["memory"], "disk": kind["disk"],
                "prices": prices, "storage_type": "local", "cpu_type": "shared", "architecture": "x86",
                "deprecated": kind["deprecated"],
                "deprecation": {"announced": "2024-06-01T00:00:00Z", "unavailable_after": "2024-09-01T00:00:00Z"}
                if kind["deprecated"] else None, "locations": []}

    def _view(self, server: dict) -> dict:
        if server["status"] == "initializing" and self.booted(server):
            server["status"] = "running"
            server["public_net"]["ipv4"] = {"id": 1, "ip": server["_ip"], "blocked": False, "dns_ptr": "x"}
        return public(server)

    def _action(self, command: str, resource_id: str) -> dict:
        return {"id": next(self.ids), "command": command, "status": "running", "progress": 0, "started": now(),
                "finished": None, "resources": [{"id": int(resource_id), "type": "server"}], "error": None}

    def _server(self, server_id: str) -> dict:
        return self.one(self.servers, server_id, f"server with ID '{server_id}' not found")

    def list_locations(self, query, body):
        return self._listing("locations", [self._location(loc["name"]) for loc in self.locations], query)

    def list_server_types(self, query, body):
        return self._listing("server_types", [self._type(t) for t in self.types], query)

    def list_ssh_keys(self, query, body):
        keys = [k for k in self.keys if query.get("fingerprint") in (None, k["fingerprint"])]
        return self._listing("ssh_keys", keys, query)

    def create_ssh_key(self, query, body):
        if any(k["name"] == body["name"] for k in self.keys):
            return self.error(409, "uniqueness_error", "SSH key with the same name already exists")
        key = {"id": next(self.ids), "name": body["name"], "public_key": body["public_key"],
               "fingerprint": md5_fingerprint(body["public_key"]), "labels": body.get("labels") or {},
               "created": now()}
        self.keys.append(key)
        return 201, {"ssh_key": key}

    def list_servers(self, query, body):
        found = [s for s in self.servers.values() if query.get("name") in (None, s["name"])]
        for server in found:
            self.tick(server)
        return self._listing("servers", [self._view(s) for s in found], query)

    def get_server(self, query, body, server):
        found = self._server(server)
        self.tick(found)
        return 200, {"server": self._view(found)}

    def delete_server(self, query, body, server):
        self._server(server)
        del self.servers[server]
        return 200, {"action": self._action("delete_server", server)}

    def reboot_server(self, query, body, server):
        self._server(server)
        return 201, {"action": self._action("reboot_server", server)}

    def create_server(self, query, body):
        if any(s["name"] == body["name"] for s in self.servers.values()):
            return self.error(409, "uniqueness_error", "server name is already used")
        if body.get("location") not in {loc["name"] for loc in self.locations}:
            return self.error(422, "invalid_input", f"location {body.get('location')!r} not found")
        kind = next((t for t in self.types if t["name"] == body["server_type"]), None)
        if kind is None:
            return self.error(422, "invalid_input", f"server type {body['server_type']!r} not found")
        unknown = [k for k in body.get("ssh_keys") or [] if k not in {x["name"] for x in self.keys}]
        if unknown:
            return self.error(422, "invalid_input", f"SSH key {unknown[0]!r} not found")
        if len((body.get("user_data") or "").encode()) > 32 * 1024:
            return self.error(422, "invalid_input", "user_data is too long")
        server_id = str(next(self.ids))
        index = len(self.servers) + 2
        location = self._location(body["location"])
        server = {
            "id": int(server_id), "name": body["name"], "status": "initializing", "created": now(),
            "public_net": {"ipv4": None, "ipv6": {"id": 2, "ip": f"2001:db8:{index:x}::/64", "blocked": False,
                                                  "dns_ptr": []}, "floating_ips": [], "firewalls": []},
            "private_net": [], "server_type": self._type(kind), "location": location,
            "datacenter": {"id": location["id"], "name": f"{body['location']}-dc1", "description": "DC 1",
                           "location": location,
                           "server_types": {"available": [], "available_for_migration": [], "supported": []}},
            "image": None, "iso": None, "rescue_enabled": False, "locked": False, "backup_window": None,
            "outgoing_traffic": None, "ingoing_traffic": None, "included_traffic": 0, "protection":
            {"delete": False, "rebuild": False}, "labels": body.get("labels") or {}, "volumes": [],
            "load_balancers": [], "primary_disk_size": kind["disk"], "placement_group": None,
            "_polls": 0, "_ip": "127.0.0.1",
        }
        self.servers[server_id] = server
        return 201, {"server": public(server), "action": self._action("create_server", server_id),
                     "next_actions": [], "root_password": None}
