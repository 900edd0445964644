"""The fakes' own machinery: one fake per driver nself registers, a route table that answers
404 and 405 in the provider's words, catalogs read from their data files."""
import pytest
import requests

from conftest import SPECS
from nself.providers import registry
from nself.testing.clouds import FAKES
from nself.testing.clouds.base import catalog


def test_every_implemented_provider_has_a_fake():
    assert set(FAKES) == set(registry.implemented())


@pytest.mark.parametrize("name", sorted(FAKES))
def test_unknown_paths_are_404_and_wrong_methods_405_in_the_providers_shape(name):
    fake = FAKES[name](SPECS)
    try:
        method, pattern, _ = fake.routes[0]
        path = {"scaleway": "/instance/v1/zones/fr-par-1/products/servers"}.get(name, pattern)
        assert fake.route(method, path, {}, None)[0] == 200
        other = "PATCH" if method != "PATCH" else "PUT"
        status, answer = fake.route(other, path, {}, None)
        assert status == 405 and answer == fake.error(405, "method_not_allowed", f"{other} {path}")[1]
        status, answer = fake.route("GET", "/nowhere/at/all", {}, None)
        assert status == 404 and answer == fake.error(404, "not_found", "GET /nowhere/at/all not found")[1]
        assert fake.catalog is catalog(name)
    finally:
        fake.stop()


def test_an_unknown_id_is_the_providers_404_over_http():
    fake = FAKES["hetzner"](SPECS)
    try:
        r = requests.get(fake.url + "/servers/4242", headers={"Authorization": f"Bearer {fake.token}"}, timeout=10)
        assert r.status_code == 404
        assert r.json() == {"error": {"code": "not_found", "message": "server with ID '4242' not found",
                                      "details": {}}}
        assert fake.violations == []
    finally:
        fake.stop()
