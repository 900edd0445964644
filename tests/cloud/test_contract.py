"""The provider contract: every registered driver keeps it, the check notices a driver that
does not, and a verb a driver lacks answers NotSupported (exit 8) instead of AttributeError."""
import pytest

from nself.errors import Exit
from nself.providers import operations, registry
from nself.providers.base import SERVERS, VERBS, NotSupported, Provider, ProvisionRequest, contract_gaps
from nself.providers.http import ProviderError


@pytest.mark.parametrize("name", registry.implemented())
def test_every_registered_driver_keeps_the_contract(name):
    driver = registry.driver_class(name)
    assert issubclass(driver, Provider) and driver.name == name
    assert contract_gaps(driver) == []
    assert SERVERS <= driver.capabilities
    assert driver.base_url.startswith("https://") and driver.user_data_limit > 0
    assert driver.describe_error({"nothing": "the provider's words"}) is None


@pytest.mark.parametrize("name", registry.implemented())
def test_the_verbs_a_driver_lacks_say_not_supported(name):
    driver = registry.driver_class(name)(api=None)      # never reaches the network: no verb here calls it
    missing = [m for verb, methods in VERBS.items() if verb not in driver.capabilities for m in methods]
    for method in missing:
        with pytest.raises(NotSupported) as refused:
            getattr(driver, method)(*["x"] * (getattr(Provider, method).__code__.co_argcount - 1))
        assert refused.value.code == Exit.PROVIDER and "features here: destroy, " in refused.value.hint
    assert bool(set(missing) - {"k8s_token"}) == (name in ("hetzner", "gcp"))   # none (Hetzner), not yet (GKE)
    assert ("k8s_token" in missing) == (name != "aws")      # only EKS kubeconfigs ask nself for tokens


class Half(Provider):
    name = title = "half"
    base_url = "https://half.example"
    image = "ubuntu"
    capabilities = frozenset({"provision", "reboot", "clouds"})

    def create(self, request):
        raise ProviderError("half: POST /servers: 500", status=500, ambiguous=True)

    def k8s_list(self):
        return []

    def find(self, name, zone):
        return []


def test_the_check_names_each_way_a_driver_breaks_it():
    assert contract_gaps(Half) == [
        "unknown capability 'clouds'",
        "find(self, name, zone) cannot be called as the contract's find(self, name: 'str') -> 'list[CloudServer]'",
        "reboot: reboot is not implemented",
        "k8s_list is implemented but 'k8s' is not in capabilities"]

    class Bare(Provider):
        pass
    assert contract_gaps(Bare) == [f"{a} is not set" for a in ("name", "title", "base_url", "image")]


def test_a_lost_create_on_a_driver_without_find_is_refused_in_words():
    class NoFind(Provider):
        title = "NoFind"
        capabilities = frozenset({"validate"})

        def create(self, request):
            raise ProviderError("nofind: POST /servers: 500", status=500, ambiguous=True)

    request = ProvisionRequest("web1", "r1", "s1", "ubuntu", "ssh-ed25519 AAAA")
    with pytest.raises(NotSupported, match="NoFind does not support finding servers by name"):
        operations.create(NoFind(api=None), request, log=lambda text: None)
    operations.check_user_data(NoFind(api=None), "x" * 10 ** 6)          # no stated limit: no refusal
