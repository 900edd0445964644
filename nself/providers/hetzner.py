"""Hetzner Cloud (https://docs.hetzner.cloud): bearer token, page/per_page pagination,
SSH keys registered by name, user data up to 32 KiB, prices in EUR per location."""
from __future__ import annotations

from nself.providers.base import SERVERS, CloudServer, ProvisionRequest, Region, Size
from nself.providers.keys import key_name, md5_fingerprint
from nself.providers.rest import Collection, RestProvider

_STATUS = {"initializing": "starting", "starting": "starting", "running": "running", "off": "stopped",
           "stopping": "stopped", "deleting": "deleting"}


def _next(body: dict, params: dict) -> dict | None:
    following = ((body.get("meta") or {}).get("pagination") or {}).get("next_page")
    return {**params, "page": following} if following else None


def _error(body) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    return f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict) else None


class Hetzner(RestProvider):
    name = "hetzner"
    title = "Hetzner Cloud"
    base_url = "https://api.hetzner.cloud/v1"
    image = "ubuntu-24.04"
    user_data_limit = 32 * 1024
    capabilities = SERVERS
    describe_error = staticmethod(_error)
    servers = Collection("/servers", "servers", "server")
    page_size = 50
    next_page = staticmethod(_next)

    def validate(self) -> str:
        self.api.request("GET", "/servers", params={"per_page": 1})
        return "a Hetzner Cloud project token"

    def list_regions(self) -> list[Region]:
        return [Region(loc["name"], f"{loc.get('city', '')} ({loc.get('description', '')})", loc.get("country", ""))
                for loc in self._all("/locations", "locations")]

    def list_sizes(self) -> list[Size]:
        sizes = []
        for kind in self._all("/server_types", "server_types"):
            if kind.get("deprecated") or kind.get("deprecation"):
                continue
            prices = {p["location"]: float(p["price_monthly"]["gross"]) for p in kind.get("prices") or []}
            sizes.append(Size(kind["name"], int(kind["cores"]), float(kind["memory"]), int(kind["disk"]),
                              min(prices.values()) if prices else None, "EUR", tuple(sorted(prices))))
        return sizes

    def _ssh_key(self, public_key: str) -> str:
        found = self._all("/ssh_keys", "ssh_keys", fingerprint=md5_fingerprint(public_key))
        if found:
            return found[0]["name"]
        name = key_name(public_key)
        self.api.request("POST", "/ssh_keys", json={"name": name, "public_key": public_key,
                                                     "labels": {"managed-by": "nself"}})
        return name

    def create(self, request: ProvisionRequest) -> CloudServer:
        body = {"name": request.name, "server_type": request.size, "image": request.image,
                "location": request.region, "ssh_keys": [self._ssh_key(request.ssh_public_key)],
                "labels": {"managed-by": "nself", "nself-request": request.request_id}}
        if request.user_data:
            body["user_data"] = request.user_data
        return self._server(self.api.request("POST", "/servers", json=body)["server"])

    def reboot(self, server_id: str) -> None:
        self.api.request("POST", f"/servers/{server_id}/actions/reboot")

    @staticmethod
    def _server(data: dict) -> CloudServer:
        net = data.get("public_net") or {}
        location = (data.get("location") or (data.get("datacenter") or {}).get("location") or {}).get("name")
        return CloudServer(str(data["id"]), data["name"], _STATUS.get(data.get("status"), "unknown"),
                           ((net.get("ipv4") or {}).get("ip")), ((net.get("ipv6") or {}).get("ip")),
                           location, (data.get("server_type") or {}).get("name"), data.get("created"),
                           dict(data.get("labels") or {}))


DRIVER = Hetzner
