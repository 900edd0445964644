"""What the cloud tasks do with a provider: connect, provision (idempotent, waits until running),
destroy, refresh the inventory, compare prices. Providers only speak their APIs."""
from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from nself.errors import Exit, NselfError, UsageError
from nself.providers import credentials, registry
from nself.providers.base import NORMALISED, CloudServer, Cluster, Provider, ProvisionRequest, Size, choose_size
from nself.providers.http import Api, ProviderError, api_url


def connect(name: str, *, log: Callable[[str], None] = lambda t: None,
            secrets: Callable[[list[str]], None] = lambda v: None, values: dict[str, str] | None = None,
            sleep=time.sleep) -> Provider:
    """The provider's driver with its credentials (`values`, or the configured ones); `secrets`
    receives them for redaction."""
    driver = registry.driver_class(name)
    if values is None:
        values, _ = credentials.resolve(registry.info(name))
    secrets(list(values.values()))
    api = Api(name, api_url(name, driver.base_url), auth=driver.auth(values), secrets=list(values.values()),
              describe_error=driver.describe_error, log=log, sleep=sleep)
    return driver.configure(api, values)


def resolve_size(provider: Provider, size: str, region: str | None) -> Size:
    return _pick(provider.list_sizes(), size, region, provider.title)


def catalog_size(name: str, size: str, region: str | None) -> Size:
    """The size from nself's dated price catalog, for a dry run without credentials (no API to
    ask). UsageError when the catalog has none for the provider."""
    from nself.providers import catalog

    sizes = catalog.sizes(name)
    title = registry.info(name).title
    if not sizes:
        raise UsageError(f"nself's price catalog has no sizes for {title}",
                         hint="set the provider's credentials: a dry run then asks its API")
    return _pick(sizes, size, region, title)


def _pick(sizes: list[Size], size: str, region: str | None, title: str) -> Size:
    if size in NORMALISED:
        return choose_size(sizes, size, region)
    for candidate in sizes:
        if candidate.id == size:
            return candidate
    raise UsageError(f"{title} has no size {size!r}",
                     hint="use " + ", ".join(NORMALISED) + " or one of: " + ", ".join(s.id for s in sizes[:12]))


def check_region(provider: Provider, region: str) -> None:
    regions = provider.list_regions()
    if region not in {r.id for r in regions}:
        raise UsageError(f"{provider.title} has no region {region!r}",
                         hint="regions: " + ", ".join(r.id for r in regions))


def check_name(provider: Provider, name: str) -> None:
    if provider.name_rule and not re.fullmatch(provider.name_rule[0], name):
        raise UsageError(f"{provider.title} does not take the name {name!r}", hint=provider.name_rule[1])


def check_user_data(provider: Provider, text: str | None) -> None:
    limit = provider.user_data_limit
    if text is not None and limit and len(text.encode()) > limit:
        raise UsageError(f"the user data is {len(text.encode())} bytes; {provider.title} takes at most {limit}",
                         hint="shorten it, or have it download a larger script")


def create(provider: Provider, request: ProvisionRequest, log: Callable[[str], None]) -> CloudServer:
    """Create once. When a create fails in a way that may have created the server anyway
    (timeout, 5xx), look for a server carrying this request's label before trying again, so a
    retry never makes a second server."""
    request = ProvisionRequest(**{**request.__dict__, "request_id": request.request_id or uuid.uuid4().hex[:16]})
    for attempt in range(3):
        try:
            return provider.create(request)
        except ProviderError as exc:
            if not exc.ambiguous:
                raise
            mine = [s for s in provider.find(request.name) if s.labels.get("nself-request") == request.request_id]
            if mine:
                log(f"{provider.name}: the create went through after all ({mine[0].id})")
                return provider.complete(request, mine[0])
            if attempt == 2:
                raise
            log(f"{provider.name}: create failed ({exc.message}); no server was made, trying again")
            time.sleep(1)
    raise AssertionError("unreachable")


def wait_running(provider: Provider, server: CloudServer, timeout: float,
                 progress: Callable[[str], None]) -> CloudServer:
    return _wait(lambda: provider.get(server.id), lambda s: s.status == "running" and bool(s.ipv4),
                 f"{provider.title} server {server.id}", timeout, progress,
                 "see cloud.servers.list --refresh later; it was not destroyed")


def wait_cluster(provider: Provider, cluster: Cluster, timeout: float, progress: Callable[[str], None]) -> Cluster:
    return _wait(lambda: provider.k8s_get(cluster.id), lambda c: c.status == "running",
                 f"{provider.title} cluster {cluster.id}", timeout, progress,
                 f"see cloud.k8s.list {provider.name} later; it was not deleted")


def _wait(get, ready, what: str, timeout: float, progress: Callable[[str], None], later: str):
    """Poll, soon at first and then less often (0.5 s growing to 5 s): most servers boot in
    seconds, some take minutes, and every poll counts against the rate limit."""
    deadline = time.monotonic() + timeout
    interval = 0.5
    last = None
    while True:
        current = get()
        if current is None:
            raise NselfError(f"{what} disappeared while starting", code=Exit.PROVIDER,
                             hint="see the provider's console")
        if current.status != last:
            progress(f"{current.name}: {current.status}")
            last = current.status
        if ready(current):
            return current
        if current.status == "error":
            raise NselfError(f"{what} failed to start", code=Exit.PROVIDER, hint="see the provider's console")
        if time.monotonic() > deadline:
            raise NselfError(f"{current.name} is still {current.status} after {timeout:.0f}s", code=Exit.TIMEOUT,
                             hint=later)
        time.sleep(interval)
        interval = min(interval * 1.5, 5.0)


def resolve_id(provider: Provider, name_or_id: str) -> CloudServer:
    """A server by id, or by name when exactly one has it (ambiguous names list the ids)."""
    matches = provider.find(name_or_id)
    if len(matches) > 1:
        raise UsageError(f"{len(matches)} {provider.title} servers are named {name_or_id!r}",
                         hint="pass the id: " + ", ".join(f"{s.id} ({s.region}, {s.created})" for s in matches))
    if matches:
        return matches[0]
    found = provider.get(name_or_id) if re.fullmatch(provider.id_pattern, name_or_id) else None
    if found is None:
        raise NselfError(f"{provider.title} has no server {name_or_id!r}", code=Exit.PROVIDER,
                         hint="see cloud.servers.list --refresh")
    return found


def resolve_cluster(provider: Provider, name_or_id: str) -> Cluster:
    """A cluster by id, or by name when exactly one has it (ambiguous names list the ids)."""
    clusters = provider.k8s_list()
    named = [c for c in clusters if c.name == name_or_id]
    if len(named) > 1:
        raise UsageError(f"{len(named)} {provider.title} clusters are named {name_or_id!r}",
                         hint="pass the id: " + ", ".join(f"{c.id} ({c.region})" for c in named))
    found = named or [c for c in clusters if c.id == name_or_id]
    if not found:
        raise NselfError(f"{provider.title} has no cluster {name_or_id!r}", code=Exit.PROVIDER,
                         hint=f"see cloud.k8s.list {provider.name}")
    return found[0]


def live_sizes(names: list[str], normalised: str, connect_one: Callable[[str], Provider]) -> list[dict]:
    """Ask several providers at once for the size that fits; a provider that fails gives its error."""
    def one(name: str) -> dict:
        try:
            size = choose_size(connect_one(name).list_sizes(), normalised)
            return {"provider": name, **size.to_dict(), "source": "live"}
        except NselfError as exc:
            return {"provider": name, "error": exc.message}

    with ThreadPoolExecutor(max_workers=min(8, max(1, len(names)))) as pool:
        return list(pool.map(one, names))
