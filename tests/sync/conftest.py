"""A world for sync tests: a project on this machine with a PostgreSQL cluster on loopback
(`local`), and two networked sshd test hosts each running PostgreSQL 15 (`staging` on host1,
`production` on host2), in the inventory with trusted host keys."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from nself.remote import inventory
from nself.remote.connection import trust
from nself.remote.inventory import Server
from tests.conftest import make_project
from tests.sync import pg

COMPOSE = """
name: app
services:
  postgres:
    image: postgres:15-alpine
    environment:
      POSTGRES_USER: ${POSTGRES_USER:-postgres}
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set it}
      POSTGRES_DB: ${POSTGRES_DB:-app}
    ports: ["127.0.0.1:${POSTGRES_PORT:-5432}:5432"]
"""
PASSWORDS = {"local": "local-Pa55:word", "staging": "stg-S3cret\\pw", "production": "prod-S3cret-pw"}


def settings(anonymize: str = "", extra: str = "") -> str:
    return ("environments:\n"
            "  staging:\n    hosts: [host1]\n    path: /var/lib/app-host1\n    database: {via: direct}\n"
            "  production:\n    hosts: [host2]\n    path: /var/lib/app-host2\n    database: {via: direct}\n"
            "sync:\n  exclude: ['*.log']\n  files: {paths: [uploads]}\n" + anonymize + extra)


@dataclass
class World:
    root: Path
    local: pg.Cluster
    staging: pg.Cluster
    production: pg.Cluster
    hosts: list

    def cluster(self, env: str) -> pg.Cluster:
        return getattr(self, env)

    def reset(self, env: str, users: int = 50, orders: int = 200) -> None:
        """Drop and refill one environment's database."""
        cluster = self.cluster(env)
        cluster.sql("drop database if exists app with (force)", db="postgres")
        cluster.sql("create database app", db="postgres")
        if users:
            pg.fill(cluster, users, orders)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from nself.testing.sshd import start_hosts

    base = tmp_path_factory.mktemp("sync")
    hosts = start_hosts(base / "hosts", 2, networked=True)
    clusters = []
    try:
        local = pg.start_local(PASSWORDS["local"])
        clusters.append(local)
        remote = [pg.start_on_host(h, PASSWORDS[env]) for h, env in zip(hosts, ("staging", "production"))]
        clusters += remote
        root = make_project(base / "app", COMPOSE, {
            "nself.yml": settings(),
            ".env": "POSTGRES_DB=app\nPOSTGRES_USER=postgres\n",
            ".env.dev": f"POSTGRES_PORT={local.port}\nPOSTGRES_PASSWORD={PASSWORDS['local']}\n",
            ".env.staging": f"POSTGRES_PASSWORD='{PASSWORDS['staging']}'\n",
            ".env.production": f"POSTGRES_PASSWORD={PASSWORDS['production']}\n",
        })
        servers = {h.name: Server(h.name, h.address, h.port, "root", str(h.user_key)) for h in hosts}
        inventory.save(root, servers)
        for server in servers.values():
            trust(root, server, servers)
        yield World(root, local, *remote, hosts)
    finally:
        for cluster in clusters:
            cluster.stop()
        for host in hosts:
            host.remove()
        for cluster in clusters[:1]:
            shutil.rmtree(cluster.folder, ignore_errors=True)


@pytest.fixture
def project(world, tmp_path):
    """A fresh copy of the world's project (its own state, history and locks)."""
    root = tmp_path / "app"
    shutil.copytree(world.root, root)
    return root
