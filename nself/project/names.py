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
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_dns1035(name: str) -> bool:
    return len(name) <= MAX_LABEL and bool(_DNS1035.match(name))


def check_namespace(name: str) -> str:
    """A namespace given on the command line: a DNS-1123 label (Kubernetes' rule for
    namespaces: lowercase letters, digits and '-', 63 at most, alphanumeric at both ends)."""
    if len(name) > MAX_LABEL or not _DNS1123.match(name):
        from nself.errors import UsageError

        raise UsageError(f"{name!r} is not a valid Kubernetes namespace",
                         hint="use lowercase letters, digits and '-' (63 at most), starting and "
                              "ending with a letter or digit, e.g. " + repr(to_dns1035(name)))
    return name


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
                                    f"named {name!r} in Kubernetes; host references in the "
                                    f"compose environment follow (URLs, host:port, *_HOST), but an "
                                    f"image default or a config file naming {service!r} must be "
                                    f"set to {name!r}"))
    return names, warnings
