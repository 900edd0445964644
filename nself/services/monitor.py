"""`monitor enable|profile|status`: Prometheus, Grafana and the exporters of the stack.

A profile is a set of compose services (product plan Part 3.2, `monitor profile`):

    minimal   prometheus, grafana
    standard  + node-exporter (the host), postgres-exporter (PostgreSQL)
    full      + cadvisor (every container), alertmanager

Switching profiles adds and removes those services' blocks (fragments/, as `service … enable`
does) and rewrites `monitoring/prometheus.yml`, the scrape configuration the prometheus block
mounts, in one validated change. The profile in force is read back from the compose file.
"""
from __future__ import annotations

from pathlib import Path

from nself.errors import UsageError
from nself.services import manage
from nself.services.catalog import Service

COMPONENTS: dict[str, Service] = {s.name: s for s in (
    Service("prometheus", "prometheus", 9090),
    Service("grafana", "grafana", 3000, secrets=("GRAFANA_ADMIN_PASSWORD",)),
    Service("node-exporter", "node-exporter", 9100),
    Service("postgres-exporter", "postgres-exporter", 9187),
    Service("cadvisor", "cadvisor", 8080),
    Service("alertmanager", "alertmanager", 9093),
)}
PROFILES = {"minimal": ("prometheus", "grafana")}
PROFILES["standard"] = (*PROFILES["minimal"], "node-exporter", "postgres-exporter")
PROFILES["full"] = (*PROFILES["standard"], "cadvisor", "alertmanager")
SCRAPED = ("node-exporter", "postgres-exporter", "cadvisor")   # the exporters Prometheus scrapes
CONFIG = Path("monitoring") / "prometheus.yml"


def present(root: Path) -> list[str]:
    """The monitoring components the project's compose file has, in profile order."""
    services = manage.compose_services(root)
    return [name for name, svc in COMPONENTS.items() if svc.compose_name in services]


def current_profile(root: Path) -> str | None:
    """The profile whose components are exactly those present; None without any; "custom" else."""
    have = set(present(root))
    if not have:
        return None
    return next((name for name, parts in PROFILES.items() if set(parts) == have), "custom")


def scrape_config(profile: str) -> str:
    """monitoring/prometheus.yml for `profile`: Prometheus itself, the profile's exporters and
    (full) its Alertmanager. Targets are compose service names on the stack's network."""
    parts = PROFILES[profile]
    jobs = [("prometheus", "localhost:9090"), *((n, f"{COMPONENTS[n].compose_name}:{COMPONENTS[n].port}")
                                                 for n in SCRAPED if n in parts)]
    lines = [f"# Written by `nself monitor` for the {profile} profile: `nself monitor profile …` rewrites it.",
             "global:", "  scrape_interval: 15s", "scrape_configs:"]
    for job, target in jobs:
        lines += [f"  - job_name: {job}", "    static_configs:", f"      - targets: [\"{target}\"]"]
    if "alertmanager" in parts:
        lines += ["alerting:", "  alertmanagers:", "    - static_configs:",
                  f"        - targets: [\"alertmanager:{COMPONENTS['alertmanager'].port}\"]"]
    return "\n".join(lines) + "\n"


def set_profile(root: Path, profile: str, *, env: str | None = None) -> dict:
    """Make the project's monitoring `profile`: add and remove components, rewrite the scrape
    configuration; one change, validated (ConfigError and nothing changed when it fails)."""
    if profile not in PROFILES:
        raise UsageError(f"unknown monitoring profile {profile!r}", hint="use " + ", ".join(PROFILES))
    have, want = present(root), PROFILES[profile]
    add = [COMPONENTS[n] for n in want if n not in have]
    remove = [COMPONENTS[n] for n in have if n not in want]
    change = manage.apply(root, add=add, remove=remove, files={root / CONFIG: scrape_config(profile)}, env=env)
    changed = [str(p.relative_to(root)) for p, (old, new, _) in change.files.items() if (old or "") != new]
    return {"profile": profile, "added": [s.name for s in add], "removed": [s.name for s in remove],
            "components": list(want), "files": changed,
            "secrets": [k for s in add for k in s.secrets]}


def enable(root: Path, *, env: str | None = None) -> dict:
    """Turn monitoring on with the minimal profile; UsageError (exit 2) when it is on."""
    if present(root):
        raise UsageError(f"monitoring is already enabled (profile {current_profile(root)})",
                         hint="`nself monitor profile standard|full` changes what it covers")
    return set_profile(root, "minimal", env=env)
