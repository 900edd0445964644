"""Services (who needs one, which ports), Ingress and NetworkPolicies."""
from __future__ import annotations

import re
from collections.abc import Mapping

from nself.k8s.kinds import image_base
from nself.k8s.objects import NETWORK_LABEL, labels, obj, port_name, selector
from nself.project.model import Project, Service
from nself.project.names import is_dns1035
from nself.project.warnings import Warning

# The port a well-known image listens on, for services that others reach but that declare none.
DEFAULT_PORTS = {"postgres": 5432, "postgis": 5432, "timescaledb": 5432, "mysql": 3306,
                 "mariadb": 3306, "mongo": 27017, "redis": 6379, "valkey": 6379, "memcached": 11211,
                 "elasticsearch": 9200, "opensearch": 9200, "minio": 9000, "meilisearch": 7700,
                 "typesense": 8108, "rabbitmq": 5672, "nats": 4222, "kafka": 9092,
                 "zookeeper": 2181, "clickhouse": 8123, "mailpit": 1025}


def references(project: Project) -> dict[str, set[int | None]]:
    """service → ports other services use to reach it (None: by name, port unknown)."""
    names = {s.name: s for s in project.services.values()}
    names.update({s.object_name: s for s in project.services.values()})
    pattern = re.compile(r"(?<![\w.-])(" + "|".join(sorted(map(re.escape, names), key=len,
                                                              reverse=True)) +
                         r")(?::(\d{1,5}))?(?=[:/?]|$|\s)") if names else None
    found: dict[str, set[int | None]] = {}
    for svc in project.services.values():
        for dep in svc.depends_on:  # waiting for a one-shot task to finish needs no Service
            if dep.service in names and dep.condition != "service_completed_successfully":
                found.setdefault(names[dep.service].name, set()).add(None)
        for link in svc.links:
            target = link.split(":", 1)[0]
            if target in names:
                found.setdefault(names[target].name, set()).add(None)
        if pattern is None:
            continue
        for value in svc.environment.values():
            for match in pattern.finditer(value or ""):
                target = names[match.group(1)]
                if target.name != svc.name:
                    found.setdefault(target.name, set()).add(int(match.group(2)) if match.group(2) else None)
    return found


def service_ports(svc: Service, referenced: set[int | None] | None,
                  warnings: list[Warning]) -> list[dict]:
    """Container-side ports to serve: published, exposed, and ports others use."""
    seen: dict[tuple[int, str], dict] = {}
    for port in svc.ports:
        key = (port.target, port.protocol.upper())
        seen.setdefault(key, {"name": port.name, "port": port.target, "protocol": key[1]})
    for text in svc.expose:
        number, _, proto = str(text).partition("/")
        if "-" in number:
            low, high = (int(x) for x in number.split("-", 1))
            targets = range(low, high + 1)
        else:
            targets = [int(number)]
        for target in targets:
            key = (target, (proto or "tcp").upper())
            seen.setdefault(key, {"name": None, "port": target, "protocol": key[1]})
    for port in sorted(p for p in (referenced or ()) if p is not None):
        if not any(k[0] == port for k in seen):
            seen[(port, "TCP")] = {"name": None, "port": port, "protocol": "TCP"}
    if not seen and referenced:
        default = DEFAULT_PORTS.get(image_base(svc.image))
        if default:
            seen[(default, "TCP")] = {"name": None, "port": default, "protocol": "TCP"}
            warnings.append(Warning("port-assumed", svc.name, "ports",
                                    f"other services reach it but it declares no port; assuming "
                                    f"{default} (the image's default): add `expose: [\"{default}\"]`"))
        else:
            warnings.append(Warning("no-port", svc.name, "ports",
                                    "other services reach it by name but it declares no port, so "
                                    "it gets no Service: add `expose: [\"PORT\"]`"))
    ports = []
    for (number, proto), port in sorted(seen.items()):
        ports.append({"name": port["name"] or port_name(proto, number), "port": number,
                      "protocol": proto})
    return ports


def service_object(project: Project, svc: Service, ports: list[dict], headless: bool) -> dict:
    spec: dict = {"selector": selector(project.name, svc.object_name)}
    if headless:
        spec = {"clusterIP": "None", **spec}
    spec["ports"] = [{"name": p["name"], "port": p["port"], "targetPort": p["port"],
                      "protocol": p["protocol"]} for p in ports]
    return obj("v1", "Service", svc.object_name, labels(project.name, svc.object_name), spec=spec)


def alias_services(svc: Service, service: dict, taken: set[str],
                   warnings: list[Warning]) -> list[dict]:
    """A Service per `networks.<n>.aliases` name, selecting the same pods on the same ports
    (what an alias is in compose: another DNS name for the container). `taken`: the names
    of Services so far, extended with each alias given. An alias that is no DNS label or
    names another Service is warned and left out."""
    out = []
    for alias in sorted({a for n in svc.networks.values() for a in n.aliases}):
        if alias == svc.object_name:
            continue
        if not is_dns1035(alias):
            warnings.append(Warning("alias-name", svc.name, "networks.aliases",
                                    f"alias {alias!r} is not a DNS label (a-z, 0-9, '-'); no "
                                    "Service for it: use a name such as "
                                    f"{alias.lower().replace('_', '-').replace('.', '-')!r}"))
        elif alias in taken:
            warnings.append(Warning("alias-name", svc.name, "networks.aliases",
                                    f"alias {alias!r} is already the name of a Service; left out"))
        else:
            taken.add(alias)
            out.append({**service, "metadata": {**service["metadata"], "name": alias}})
    return out


def ingress_object(project: Project, svc: Service, conf: Mapping, ports: list[dict],
                   ingress_class: str, domain: str | None, tls: bool,
                   annotations: Mapping[str, str], warnings: list[Warning]) -> dict | None:
    """An Ingress for a public service (x-nself ingress/public, or publishing 80/443).
    Without a host (no `ingress.host`, no domain) it answers every host and has no TLS:
    the environment's cert-manager annotations are left off (cert-manager cannot issue a
    certificate for no name) and a warning says how to give it one."""
    rule = conf.get("ingress")
    rule = {} if rule is True else dict(rule or {})
    http_ports = [p["port"] for p in ports if p["protocol"] == "TCP"]
    if not http_ports:
        return None
    host = rule.get("host") or (f"{svc.object_name}.{domain}" if domain else None)
    port = int(rule.get("port") or (80 if 80 in http_ports else http_ports[0]))
    path = rule.get("path") or "/"
    backend = {"service": {"name": svc.object_name, "port": {"number": port}}}
    http_rule: dict = {"http": {"paths": [{"path": path, "pathType": "Prefix", "backend": backend}]}}
    if host:
        http_rule = {"host": host, **http_rule}
    spec: dict = {"ingressClassName": rule.get("class") or ingress_class, "rules": [http_rule]}
    if tls and host:
        spec["tls"] = [{"hosts": [host], "secretName": f"{svc.object_name}-tls"}]
    if not host:
        annotations = {k: v for k, v in annotations.items() if not k.startswith("cert-manager.io/")}
        warnings.append(Warning("ingress-host", svc.name, "ingress",
                                "the Ingress has no host: it answers every host name, without "
                                "TLS (set BASE_DOMAIN in the env files, kubernetes.generate.domain "
                                "in nself.yml, or x-nself: {ingress: {host: …}})"))
    return obj("networking.k8s.io/v1", "Ingress", svc.object_name,
               labels(project.name, svc.object_name),
               annotations={**annotations, **(rule.get("annotations") or {})}, spec=spec)


def is_public(svc: Service, conf: Mapping) -> bool:
    if "ingress" in conf or "public" in conf:
        return bool(conf.get("ingress", conf.get("public")))
    return any(p.target in (80, 443) and p.published and p.host_ip in (None, "0.0.0.0", "::")
               for p in svc.ports)


def network_names(svc: Service) -> list[str]:
    return sorted(svc.networks) if svc.networks else ["default"]


def network_policies(project: Project, ingress_namespace: str) -> list[dict]:
    """One NetworkPolicy per compose network: pods on it accept traffic from its members
    (and from the ingress controller); nothing else reaches them."""
    members: dict[str, list[str]] = {}
    for svc in project.services.values():
        if svc.network_mode:
            continue
        for net in network_names(svc):
            members.setdefault(net, []).append(svc.name)
    out = []
    for net in sorted(members):
        label = {f"{NETWORK_LABEL}{_label_suffix(net)}": "true"}
        out.append(obj("networking.k8s.io/v1", "NetworkPolicy", f"network-{_label_suffix(net)}",
                       labels(project.name), spec={
                           "podSelector": {"matchLabels": label},
                           "policyTypes": ["Ingress"],
                           "ingress": [{"from": [
                               {"podSelector": {"matchLabels": label}},
                               {"namespaceSelector": {"matchLabels": {
                                   "kubernetes.io/metadata.name": ingress_namespace}}}]}]}))
    return out


def network_labels(svc: Service) -> dict[str, str]:
    return {f"{NETWORK_LABEL}{_label_suffix(n)}": "true" for n in network_names(svc)}


def _label_suffix(network: str) -> str:
    from nself.project.names import to_dns1035

    return to_dns1035(network)[:40]
