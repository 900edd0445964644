"""The provider contract (after Apache Libcloud's driver interface): typed results and one small
class per provider. Lifecycle orchestration (wait, inventory, idempotent retry) lives in
`operations`, so a provider module only speaks its API."""
from __future__ import annotations

import inspect
import re
from dataclasses import asdict, dataclass, field

from nself.errors import Exit, NselfError

# The plan's normalised sizes: (vCPU range, RAM range in GB). The chooser takes the cheapest
# size inside both ranges, so names are never hard-coded per provider.
NORMALISED = {
    "tiny": ((1, 1), (0.5, 1)),
    "small": ((1, 2), (1, 2)),
    "medium": ((2, 4), (4, 8)),
    "large": ((4, 8), (8, 16)),
    "xlarge": ((8, 16), (16, 32)),
}


# What every implemented driver does; managed Kubernetes adds "k8s".
SERVERS = frozenset({"validate", "regions", "sizes", "provision", "status", "list", "destroy", "reboot"})


def newest_first(versions: list[str]) -> list[str]:
    """Kubernetes versions by their numbers, newest first ("1.31.2" before "1.30.6")."""
    return sorted(versions, key=lambda v: [int(x) for x in re.findall(r"\d+", v)], reverse=True)


def labels_from_tags(tags: list[str]) -> dict[str, str]:
    """`key:value` tags (providers without labels) as labels; other tags are left out."""
    return dict(t.split(":", 1) for t in tags if ":" in t and "=" not in t)


@dataclass(frozen=True)
class Region:
    id: str
    name: str
    country: str = ""
    available: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Size:
    id: str
    vcpu: int
    ram_gb: float
    disk_gb: int
    monthly: float | None          # None: the provider does not say
    currency: str = "USD"
    regions: tuple[str, ...] = ()  # empty: every region

    def to_dict(self) -> dict:
        data = asdict(self)
        data["regions"] = list(self.regions)
        return data


@dataclass(frozen=True)
class CloudServer:
    id: str
    name: str
    status: str                    # normalised: new, starting, running, stopped, deleting, unknown
    ipv4: str | None = None
    ipv6: str | None = None
    region: str | None = None
    size: str | None = None
    created: str | None = None
    labels: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("labels")
        return data


@dataclass(frozen=True)
class Cluster:
    id: str
    name: str
    status: str                    # normalised: starting, running, deleting, error, unknown
    region: str | None = None
    version: str | None = None
    endpoint: str | None = None
    nodes: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ClusterRequest:
    name: str
    region: str
    version: str                   # "latest" or one of k8s_versions()
    size: str                      # the provider's size id for the nodes
    nodes: int
    cluster_role: str = ""         # EKS: IAM role (name or ARN) of the control plane; "": nself's own
    node_role: str = ""            # EKS: IAM role of the nodes; "": nself's own


@dataclass(frozen=True)
class ProvisionRequest:
    name: str
    region: str
    size: str                      # the provider's size id (already chosen)
    image: str
    ssh_public_key: str
    user_data: str | None = None
    request_id: str = ""           # label that lets a retried create find its own server


class NotSupported(NselfError):
    """A provider or feature that is not implemented: says so, and what is possible instead."""

    def __init__(self, what: str, instead: str):
        super().__init__(what, code=Exit.PROVIDER, hint=instead)


def choose_size(sizes: list[Size], normalised: str, region: str | None = None) -> Size:
    """The cheapest size whose vCPU and RAM fall in the normalised ranges (and in the region)."""
    if normalised not in NORMALISED:
        raise NselfError(f"unknown size {normalised!r}", code=Exit.USAGE,
                         hint="use " + ", ".join(NORMALISED) + ", or a provider size id")
    (cpu_lo, cpu_hi), (ram_lo, ram_hi) = NORMALISED[normalised]
    fits = [s for s in sizes if cpu_lo <= s.vcpu <= cpu_hi and ram_lo <= s.ram_gb <= ram_hi
            and (not region or not s.regions or region in s.regions)]
    if not fits:
        raise NotSupported(f"no {normalised} size ({cpu_lo}-{cpu_hi} vCPU, {ram_lo}-{ram_hi} GB)"
                           + (f" in {region}" if region else ""),
                           "pass a provider size id with --size (see cloud.providers.sizes)")
    return min(fits, key=lambda s: (s.monthly is None, s.monthly or 0, s.vcpu, s.ram_gb))


# The contract: each capability and the driver methods that provide it. Every method is declared
# on `Provider`; a driver overrides exactly the methods of the capabilities it lists, and the
# base answers the others with NotSupported (Apache Libcloud's style: every verb present).
VERBS: dict[str, tuple[str, ...]] = {
    "validate": ("validate",),
    "regions": ("list_regions",),
    "sizes": ("list_sizes",),
    "provision": ("create", "find"),
    "status": ("get",),
    "list": ("list",),
    "destroy": ("destroy",),
    "reboot": ("reboot",),
    "k8s": ("k8s_versions", "k8s_create", "k8s_list", "k8s_get", "k8s_delete", "k8s_kubeconfig"),
    # short-lived cluster tokens a kubeconfig's exec entry asks for (EKS)
    "k8s-token": ("k8s_token",),
}


class Provider:
    """One provider API. Subclasses set the class attributes and override the methods of the
    capabilities they list (`VERBS`); every other method raises NotSupported, saying what the
    driver can do instead."""

    name = ""
    title = ""
    base_url = ""
    image = ""                     # default image: a current Ubuntu LTS
    ssh_user = "root"              # who logs in on the default image
    id_pattern = r"\d+"            # what the provider's server ids look like
    name_rule: tuple[str, str] | None = None   # (regex, words) when names are stricter than ours
    user_data_limit: int | None = None         # bytes of user data the API takes; None: no stated limit
    capabilities: frozenset[str] = frozenset()

    def __init__(self, api):
        self.api = api             # nself.providers.http.Api

    @classmethod
    def configure(cls, api, values: dict[str, str]) -> Provider:
        """The driver for these credentials (Scaleway also needs the project id from them)."""
        return cls(api)

    @staticmethod
    def auth(values: dict[str, str]):
        """How requests are authenticated with these credentials (most providers: a bearer token)."""
        from nself.providers.http import bearer

        return bearer(values["token"])

    @staticmethod
    def describe_error(body: dict | str) -> str | None:
        """The provider's error body (decoded JSON, or the text when it is not JSON) as one
        sentence; None: show the body as it came."""
        return None

    def _unsupported(self, feature: str):
        raise NotSupported(f"{self.title} does not support {feature} in nself yet",
                           "features here: " + ", ".join(sorted(self.capabilities)))

    def validate(self) -> str:
        """Check the credentials; returns who they belong to."""
        self._unsupported("checking credentials")

    def list_regions(self) -> list[Region]:
        self._unsupported("listing regions")

    def list_sizes(self) -> list[Size]:
        self._unsupported("listing sizes")

    def create(self, request: ProvisionRequest) -> CloudServer:
        """Start creating a server; it need not be running yet (operations.wait_running)."""
        self._unsupported("creating servers")

    def complete(self, request: ProvisionRequest, server: CloudServer) -> CloudServer:
        """Steps after the create call (Scaleway: user data, power on); also run on a server
        found after a create whose answer was lost."""
        return server

    def find(self, name: str) -> list[CloudServer]:
        """The servers with this name (a lost create is found again by its request label)."""
        self._unsupported("finding servers by name")

    def get(self, server_id: str) -> CloudServer | None:
        """The server, or None when the provider has no such server."""
        self._unsupported("reading a server")

    def list(self) -> list[CloudServer]:
        self._unsupported("listing servers")

    def destroy(self, server_id: str) -> None:
        """Delete the server; one that is already gone counts as deleted."""
        self._unsupported("destroying servers")

    def reboot(self, server_id: str) -> None:
        self._unsupported("reboot")

    # Managed Kubernetes ("k8s" in capabilities)
    def k8s_versions(self) -> list[str]:
        """Newest first."""
        self._unsupported("managed Kubernetes")

    def k8s_create(self, request: ClusterRequest) -> Cluster:
        self._unsupported("managed Kubernetes")

    def k8s_list(self) -> list[Cluster]:
        self._unsupported("managed Kubernetes")

    def k8s_get(self, cluster_id: str) -> Cluster | None:
        self._unsupported("managed Kubernetes")

    def k8s_delete(self, cluster_id: str) -> None:
        self._unsupported("managed Kubernetes")

    def k8s_kubeconfig(self, cluster_id: str) -> str:
        self._unsupported("managed Kubernetes")

    def k8s_token(self, cluster_id: str) -> dict:
        """A client.authentication.k8s.io ExecCredential with a fresh token for the cluster."""
        self._unsupported("cluster tokens (its kubeconfig carries its own credentials)")


def contract_gaps(driver: type[Provider]) -> list[str]:
    """How a driver class breaks the contract: a capability it lists without overriding its
    methods, a method it overrides for a capability it does not list, a verb it does not know,
    a method that cannot be called as the base's is (extra parameters need defaults). Empty when
    it keeps it."""
    gaps = [f"unknown capability {c!r}" for c in sorted(driver.capabilities - set(VERBS))]
    for verb, methods in VERBS.items():
        for method in methods:
            own = getattr(driver, method) is not getattr(Provider, method)
            if verb in driver.capabilities and not own:
                gaps.append(f"{verb}: {method} is not implemented")
            elif own and verb not in driver.capabilities:
                gaps.append(f"{method} is implemented but {verb!r} is not in capabilities")
            elif own and not _callable_as(getattr(driver, method), getattr(Provider, method)):
                gaps.append(f"{method}{inspect.signature(getattr(driver, method))} cannot be called as the "
                            f"contract's {method}{inspect.signature(getattr(Provider, method))}")
    for attribute in ("name", "title", "base_url", "image"):
        if not getattr(driver, attribute):
            gaps.append(f"{attribute} is not set")
    return gaps


def _callable_as(method, contract) -> bool:
    """The contract's parameters come first, by the same names, and any others have defaults."""
    mine = list(inspect.signature(method).parameters.values())
    theirs = list(inspect.signature(contract).parameters.values())
    return [p.name for p in mine[:len(theirs)]] == [p.name for p in theirs] and \
        all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in mine[len(theirs):])
