"""The 26 providers of the plan: what each one can do in nself today, and where its
credentials come from. Only the modules named here are imported, and only when used."""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from nself.providers.base import NotSupported, Provider


@dataclass(frozen=True)
class Info:
    name: str
    title: str
    credentials: tuple[tuple[str, tuple[str, ...]], ...]   # (field, env vars in order of preference)
    module: str | None = None      # nself.providers.<module> implements it
    managed_k8s: str | None = None  # the provider's managed Kubernetes, if it has one
    website: str = ""
    alternative: tuple[tuple[str, tuple[str, ...]], ...] = ()   # another accepted set of fields

    @property
    def implemented(self) -> bool:
        return self.module is not None

    def env_names(self) -> list[str]:
        return [env for _, names in self.credentials for env in names]

    def credential_sets(self) -> list[tuple[tuple[str, tuple[str, ...]], ...]]:
        return [self.credentials, *([self.alternative] if self.alternative else [])]


def _token(*names: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (("token", names),)


PROVIDERS: dict[str, Info] = {i.name: i for i in (
    Info("aws", "AWS EC2", (("access_key", ("AWS_ACCESS_KEY_ID",)), ("secret_key", ("AWS_SECRET_ACCESS_KEY",))),
         module="aws", managed_k8s="EKS", website="aws.amazon.com"),
    Info("gcp", "Google Compute Engine", (("key_file", ("GOOGLE_APPLICATION_CREDENTIALS",)),), module="gcp",
         managed_k8s="GKE", website="cloud.google.com"),
    Info("azure", "Microsoft Azure", _token("AZURE_ACCESS_TOKEN"), managed_k8s="AKS", website="azure.microsoft.com"),
    Info("digitalocean", "DigitalOcean", _token("DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN"),
         module="digitalocean", managed_k8s="DOKS", website="digitalocean.com"),
    Info("hetzner", "Hetzner Cloud", _token("HCLOUD_TOKEN"), module="hetzner", website="hetzner.com/cloud"),
    Info("linode", "Akamai Linode", _token("LINODE_TOKEN"), module="linode", managed_k8s="LKE",
         website="linode.com"),
    Info("vultr", "Vultr", _token("VULTR_API_KEY"), module="vultr", managed_k8s="VKE", website="vultr.com"),
    Info("ionos", "IONOS Cloud", _token("IONOS_TOKEN"), module="ionos", managed_k8s="IONOS Managed Kubernetes",
         website="cloud.ionos.com", alternative=(("username", ("IONOS_USERNAME",)), ("password", ("IONOS_PASSWORD",)))),
    Info("ovh", "OVHcloud", (("application_key", ("OVH_APPLICATION_KEY",)),
                             ("application_secret", ("OVH_APPLICATION_SECRET",)),
                             ("consumer_key", ("OVH_CONSUMER_KEY",))), managed_k8s="OVH Managed Kubernetes",
         website="ovhcloud.com"),
    Info("scaleway", "Scaleway", (("secret_key", ("SCW_SECRET_KEY",)), ("project_id", ("SCW_DEFAULT_PROJECT_ID",))),
         module="scaleway", managed_k8s="Kapsule", website="scaleway.com"),
    Info("oracle", "Oracle Cloud", _token("OCI_CLI_KEY_FILE"), managed_k8s="OKE", website="oracle.com/cloud"),
    Info("ibm", "IBM Cloud", _token("IBMCLOUD_API_KEY"), managed_k8s="IKS", website="cloud.ibm.com"),
    Info("upcloud", "UpCloud", _token("UPCLOUD_TOKEN"), module="upcloud", managed_k8s="UKS", website="upcloud.com",
         alternative=(("username", ("UPCLOUD_USERNAME",)), ("password", ("UPCLOUD_PASSWORD",)))),
    Info("contabo", "Contabo", (("client_id", ("CNTB_OAUTH2_CLIENT_ID",)),
                                ("client_secret", ("CNTB_OAUTH2_CLIENT_SECRET",)),
                                ("user", ("CNTB_OAUTH2_USER",)), ("password", ("CNTB_OAUTH2_PASS",))),
         website="contabo.com"),
    Info("netcup", "netcup", _token("NETCUP_API_KEY"), website="netcup.com"),
    Info("hostinger", "Hostinger VPS", _token("HOSTINGER_API_TOKEN"), website="hostinger.com"),
    Info("hostwinds", "Hostwinds", _token("HOSTWINDS_API_KEY"), website="hostwinds.com"),
    Info("kamatera", "Kamatera", (("client_id", ("KAMATERA_API_CLIENT_ID",)),
                                  ("secret", ("KAMATERA_API_SECRET",))), website="kamatera.com"),
    Info("ssdnodes", "SSD Nodes", _token("SSDNODES_API_KEY"), website="ssdnodes.com"),
    Info("exoscale", "Exoscale", (("api_key", ("EXOSCALE_API_KEY",)), ("api_secret", ("EXOSCALE_API_SECRET",))),
         module="exoscale", managed_k8s="SKS", website="exoscale.com"),
    Info("alibaba", "Alibaba Cloud ECS", (("access_key", ("ALIBABA_CLOUD_ACCESS_KEY_ID",)),
                                          ("secret_key", ("ALIBABA_CLOUD_ACCESS_KEY_SECRET",))),
         managed_k8s="ACK", website="alibabacloud.com"),
    Info("tencent", "Tencent Cloud CVM", (("secret_id", ("TENCENTCLOUD_SECRET_ID",)),
                                          ("secret_key", ("TENCENTCLOUD_SECRET_KEY",))),
         managed_k8s="TKE", website="tencentcloud.com"),
    Info("yandex", "Yandex Cloud", _token("YC_TOKEN"), managed_k8s="Managed Service for Kubernetes",
         website="cloud.yandex.com"),
    Info("racknerd", "RackNerd", _token("RACKNERD_API_KEY"), website="racknerd.com"),
    Info("buyvm", "BuyVM", _token("BUYVM_API_KEY"), website="buyvm.net"),
    Info("time4vps", "Time4VPS", (("user", ("TIME4VPS_USER",)), ("password", ("TIME4VPS_PASSWORD",))),
         website="time4vps.com"),
)}
NAMES = tuple(PROVIDERS)


def info(name: str) -> Info:
    if name not in PROVIDERS:
        raise NotSupported(f"unknown provider {name!r}", "providers: " + ", ".join(NAMES))
    return PROVIDERS[name]


def implemented() -> list[str]:
    return [name for name, i in PROVIDERS.items() if i.implemented]


def driver_class(name: str) -> type[Provider]:
    entry = info(name)
    if not entry.implemented:
        raise NotSupported(
            f"{entry.title} cannot provision servers through nself yet",
            f"create the server in its console ({entry.website}) and add it with "
            f"`nself cloud.servers.add NAME --host IP --trust-new`; providers nself drives: "
            + ", ".join(implemented()))
    module = importlib.import_module(f"nself.providers.{entry.module}")
    return module.DRIVER
