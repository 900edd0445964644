"""What the cloud tasks change at a provider, as plans of http steps.

A step's `spec` is the request nself hands the provider's driver (method, the provider's API,
and the body: names, region, size, image, the SSH key by fingerprint); cloud-init user data is
the step's `data` (it may hold secrets: shown by size only). A step's `call` runs it through the
driver, which may need more than one HTTP call (an SSH key lookup, an operation to poll).
Building a plan is pure: `connect` is called only when a step runs, so a dry run needs no
credentials beyond what choosing the size already asked."""
from __future__ import annotations

from collections.abc import Callable

from nself.errors import Exit
from nself.plan import Plan, Step
from nself.providers.base import Cluster, ClusterRequest, ProvisionRequest, Size


def endpoint(provider: str, region: str | None = None) -> str:
    """The provider's API base URL (NSELF_<PROVIDER>_API_URL wins); a regional one for `region`."""
    from nself.providers import registry
    from nself.providers.http import api_url

    return api_url(provider, registry.driver_class(provider).base_url).replace("{zone}", region or "{zone}")


def _http(summary: str, method: str, provider: str, region: str | None, call: Callable[[], object],
          body: dict | None = None, data: str | None = None) -> Step:
    spec = {"method": method, "url": endpoint(provider, region), **({"body": body} if body else {})}
    return Step(summary, "http", spec=spec, data=data, error_code=Exit.PROVIDER, call=lambda step: call())


def provision_plan(provider: str, request: ProvisionRequest, size: Size, ssh_key: str,
                   create: Callable[[], object]) -> Plan:
    """One create; `ssh_key` is the public key's fingerprint (what the plan shows of it)."""
    price = "" if size.monthly is None else f", {size.monthly:.2f} {size.currency}/month"
    body = {"name": request.name, "region": request.region, "size": request.size, "vcpu": size.vcpu,
            "ram_gb": size.ram_gb, "image": request.image, "ssh_key": ssh_key}
    return Plan(f"provision {request.name} at {provider}", [_http(
        f"create {request.name}: {provider} {size.id} ({size.vcpu} vCPU, {size.ram_gb:g} GB{price}) "
        f"in {request.region}", "POST", provider, request.region, create, body, request.user_data)])


def destroy_plan(provider: str, name: str, server_id: str, host: str, region: str | None,
                 destroy: Callable[[], object]) -> Plan:
    return Plan(f"destroy {name} at {provider}", [_http(
        f"destroy {provider} server {server_id} ({name}, {host})", "DELETE", provider, region, destroy,
        {"id": server_id})])


def reboot_step(provider: str, name: str, server_id: str, region: str | None,
                reboot: Callable[[], object]) -> Step:
    return _http(f"reboot {name} through the {provider} API", "POST", provider, region, reboot,
                 {"id": server_id, "action": "reboot"})


def cluster_create_plan(provider: str, request: ClusterRequest, size: Size, create: Callable[[], object]) -> Plan:
    price = "" if size.monthly is None else f", nodes {size.monthly * request.nodes:.2f} {size.currency}/month"
    body = {"name": request.name, "region": request.region, "version": request.version, "size": request.size,
            "nodes": request.nodes}
    return Plan(f"create Kubernetes cluster {request.name} at {provider}", [_http(
        f"create {request.name}: {provider} Kubernetes {request.version} in {request.region}, "
        f"{request.nodes} × {size.id}{price}", "POST", provider, request.region, create, body)])


def cluster_delete_plan(provider: str, cluster: Cluster, delete: Callable[[], object]) -> Plan:
    return Plan(f"delete Kubernetes cluster {cluster.name} at {provider}", [_http(
        f"delete cluster {cluster.name} ({cluster.id}) and its nodes", "DELETE", provider, cluster.region, delete,
        {"id": cluster.id})])
