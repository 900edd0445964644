"""Kubernetes-safe names for compose services (DNS-1035 labels: a Service name
must start with a letter, so every object uses this stricter form)."""
from __future__ import annotations

import re
from collections.abc import Iterable

from nself.errors import ConfigError
from nself.project.warnings import Warning

MAX_LABEL = 63
_INVALID = re.compile(r"[^a-z0-9-]+")
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def is_dns1035(name: str) -> bool:
    return len(name) <= MAX_LABEL and bool(_DNS1035.match(name))


def to_dns1035(name: str) -> str:
    """`my_Service.v2` → `my-service-v2`; empty or digit-led names get a letter prefix."""
    out = _INVALID.sub("-", name.lower()).strip("-")
    out = re.sub(r"-{2,}", "-", out)
    if not out or not out[0].isalpha():
        out = "s-" + out if out else "s"
    return out[:MAX_LABEL].rstrip("-")


def object_names(services: Iterable[str]) -> tuple[dict[str, str], list[Warning]]:
    """Object name per service; a collision after normalising is an error."""
    names: dict[str, str] = {}
    owners: dict[str, str] = {}
    warnings = []
    for service in services:
        name = to_dns1035(service)
        if name in owners:
            raise ConfigError(f"services {owners[name]!r} and {service!r} both become {name!r} "
                              "as Kubernetes names",
                              hint="rename one of them in the compose file")
        owners[name] = service
        names[service] = name
        if name != service:
            warnings.append(Warning("renamed", service, None,
                                    f"named {name!r} in Kubernetes; if an image or another "
                                    f"service expects the hostname {service!r}, add it as an alias"))
    return names, warnings
