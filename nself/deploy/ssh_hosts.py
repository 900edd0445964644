"""Environments sharing SSH hosts (pure): what one environment takes on a host must not be
another's. Names are kept apart by construction (`compose_render.compose_name` puts the
environment in every compose project and container); what remains to check is the `path`
(releases, links, router folder, lock) and the TCP ports each one's router and slots take.
"""
from __future__ import annotations

from dataclasses import dataclass

from nself.errors import ConfigError


@dataclass(frozen=True)
class Footprint:
    """What one ssh environment takes on each of its hosts."""

    env: str
    hosts: frozenset[str]
    path: str
    ports: frozenset[tuple[str | None, int]]     # (host_ip or None for every address, port)


def refuse_overlaps(mine: Footprint, others: list[Footprint]) -> None:
    """Raise ConfigError (exit 3) naming both environments when another one on a shared host
    has the same `path` or would listen on one of the same ports."""
    for other in others:
        shared = sorted(mine.hosts & other.hosts)
        if not shared or other.env == mine.env:
            continue
        where = f"environments {mine.env} and {other.env} share {', '.join(shared)}"
        if other.path.rstrip("/") == mine.path.rstrip("/"):
            raise ConfigError(f"{where} and the same path {mine.path}: one's deploy would replace the other's",
                              hint=f"give environments.{mine.env}.path or environments.{other.env}.path its own "
                                   "folder")
        clash = sorted(port for ip, port in mine.ports if any(_overlap(ip, oip) and port == oport
                                                              for oip, oport in other.ports))
        if clash:
            raise ConfigError(f"{where} and both would listen on port(s) {', '.join(map(str, clash))}",
                              hint="publish different ports per environment (e.g. `${WEB_PORT}` set in each "
                                   ".env.<env>), or put the environments on different hosts")


def _overlap(ip: str | None, other: str | None) -> bool:
    """Two listen addresses collide when equal or when either is every address."""
    return ip is None or other is None or ip in ("0.0.0.0", other) or other == "0.0.0.0"
