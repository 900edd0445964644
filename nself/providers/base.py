"""The provider contract (after Apache Libcloud's driver interface): typed results and one small
class per provider. Lifecycle orchestration (wait, inventory, idempotent retry) lives in
`operations`, so a provider module only speaks its API."""
from __future__ import annotations

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


class Provider:
    """One provider API. Subclasses set the class attributes and implement the methods they
    declare in `capabilities`; everything else raises NotSupported."""

    name = ""
    title = ""
    base_url = ""
    image = ""                     # default image: a current Ubuntu LTS
    id_pattern = r"\d+"            # what the provider's server ids look like
    name_rule: tuple[str, str] | None = None   # (regex, words) when names are stricter than ours
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

    def _unsupported(self, feature: str):
        raise NotSupported(f"{self.title} does not support {feature} in nself yet",
                           "features here: " + ", ".join(sorted(self.capabilities)))

    def validate(self) -> str:
        """Check the credentials; returns who they belong to."""
        raise NotImplementedError

    def list_regions(self) -> list[Region]:
        raise NotImplementedError

    def list_sizes(self) -> list[Size]:
        raise NotImplementedError

    def create(self, request: ProvisionRequest) -> CloudServer:
        raise NotImplementedError

    def complete(self, request: ProvisionRequest, server: CloudServer) -> CloudServer:
        """Steps after the create call (Scaleway: user data, power on); also run on a server
        found after a create whose answer was lost."""
        return server

    def get(self, server_id: str) -> CloudServer | None:
        raise NotImplementedError

    def list(self) -> list[CloudServer]:
        raise NotImplementedError

    def destroy(self, server_id: str) -> None:
        raise NotImplementedError

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
