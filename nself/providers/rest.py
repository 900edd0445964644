"""Providers whose servers are a plain REST collection (DigitalOcean, Hetzner, Vultr): a paged
list at `/things` that filters by name, one item at `/things/{id}` wrapped in its singular key,
DELETE to remove it (404: already gone). The driver names its collections and converts items."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nself.providers.base import CloudServer, Provider


@dataclass(frozen=True)
class Collection:
    path: str                      # "/droplets"
    plural: str                    # the key of a list answer: "droplets"
    singular: str                  # the key of a one-item answer: "droplet"
    by_name: str = "name"          # the list's query parameter that filters by name


class RestProvider(Provider):
    """get, find, list and destroy over `servers`; `next_page(body, params)` reads the
    provider's paging (None at the end) and `page_size` is what it asks for per page."""

    servers: Collection
    page_size = 100
    next_page: Callable[[dict, dict], dict | None]

    @staticmethod
    def _server(data: dict) -> CloudServer:
        raise NotImplementedError   # each driver converts its own item

    def _all(self, path: str, key: str, **params) -> list[dict]:
        return list(self.api.pages(path, key, self.next_page, {"per_page": self.page_size, **params}))

    def _one(self, collection: Collection, item_id: str) -> dict | None:
        body = self.api.request("GET", f"{collection.path}/{item_id}", ok=(404,))
        return body[collection.singular] if body else None

    def _delete(self, collection: Collection, item_id: str) -> None:
        self.api.request("DELETE", f"{collection.path}/{item_id}", ok=(404,))

    def get(self, server_id: str) -> CloudServer | None:
        data = self._one(self.servers, server_id)
        return self._server(data) if data else None

    def find(self, name: str) -> list[CloudServer]:
        found = self._all(self.servers.path, self.servers.plural, **{self.servers.by_name: name})
        return [self._server(d) for d in found]

    def list(self) -> list[CloudServer]:
        return [self._server(d) for d in self._all(self.servers.path, self.servers.plural)]

    def destroy(self, server_id: str) -> None:
        self._delete(self.servers, server_id)
