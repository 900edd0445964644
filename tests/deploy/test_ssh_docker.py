"""The ssh target with `runtime: docker`, end to end: a networked sshd host running its own
dockerd (Debian's docker.io) with the Compose v2 plugin, nginx in front; the app built by
`nself deploy.build` with a local dockerd and streamed to the host with `docker save`/`load`.
Everything through the `nself` CLI; pages read over HTTP from outside the host."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from nself.testing.containers import ssh
from nself.testing.docker import LocalDocker, start_docker_hosts, stop_docker_hosts
from tests.deploy.test_ssh import App, git

pytestmark = pytest.mark.skipif(not shutil.which("dockerd"), reason="dockerd is not installed (.ci/run installs "
                                                                     "docker.io)")

COMPOSE = """\
services:
  web:
    build: {{context: ./app, dockerfile: Containerfile}}
    ports: ["{port}:8080"]
    environment:
      API_TOKEN: ${{API_TOKEN}}
    volumes: ["data:/data"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://localhost:8080/health"]
      interval: 1s
  api:
    build: {{context: ./app, dockerfile: Containerfile}}
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O /dev/null http://localhost:8080/health"]
      interval: 1s
volumes:
  data: {{}}
"""


@pytest.fixture(scope="module")
def docker_host(tmp_path_factory):
    started = start_docker_hosts(tmp_path_factory.mktemp("docker-hosts"), 1)
    yield started[0]
    stop_docker_hosts(started)


@pytest.fixture(scope="module")
def local_docker(tmp_path_factory):
    daemon = LocalDocker(tmp_path_factory.mktemp("local-docker"))
    yield daemon.env
    daemon.stop()


def make_app(tmp_path, host, env: dict, name: str, port: int) -> App:
    root = tmp_path / name
    root.mkdir()
    (root / "compose.yaml").write_text(COMPOSE.format(port=port))
    (root / "nself.yml").write_text(
        f"environments:\n  staging:\n    hosts: [{host.name}]\n    path: /var/lib/nself-test/{name}\n"
        "    runtime: docker\n    router: nginx\ndeploy:\n  keep_releases: 2\n  timeout: 30\n")
    (root / ".env.staging").write_text("API_TOKEN=d0cker-s3cret\n")
    (root / ".gitignore").write_text(".nself/cache/\n.nself/state/\n")
    app = App(root, [host], port, {**{k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}, **env})
    git(root, "init", "-q")
    app.nself("cloud.servers.add", host.name, "--host", host.ip, "--key", str(host.user_key), "--trust-new")
    return app


def test_docker_deploy_v1_v2_rollback(tmp_path, docker_host, local_docker):
    app = make_app(tmp_path, docker_host, local_docker, "dock", 8095)
    v1 = app.release("dock one")
    app.nself("deploy.to", "staging")
    assert app.page(docker_host) == "dock one"
    ssh(docker_host, "docker exec dock-staging-a-web sh -c 'echo kept > /data/note'")

    v2 = app.release("dock two")
    app.nself("deploy.to", "staging")
    assert app.page(docker_host) == "dock two"
    names = ssh(docker_host, "docker ps --format '{{.Names}}' | sort").stdout.split()
    assert names == ["dock-staging-b-api", "dock-staging-b-web"], names      # slot a stopped and removed
    assert ssh(docker_host, "docker ps -aq --filter label=com.docker.compose.project=dock-staging-a").stdout == ""
    assert ssh(docker_host, "docker exec dock-staging-b-web cat /data/note").stdout.strip() == "kept"
    assert ssh(docker_host, "docker volume ls -q").stdout.split() == ["dock-staging_data"]

    app.nself("deploy.rollback", "staging", "--yes")
    assert app.page(docker_host) == "dock one"
    status = json.loads(app.nself("deploy.status", "staging", "--json").stdout)
    assert [(r["release"], r["slot"], r["running"]) for r in status["rows"]] == [(v1, "a", 2)]
    check = json.loads(app.nself("deploy.check", "staging", "--json").stdout)
    assert check["healthy"] and {(s["service"], s["detail"]) for s in check["services"]} >= {
        ("web", "healthcheck"), ("api", "healthcheck"), ("web", "http")}
    history = json.loads(app.nself("deploy.history", "staging", "--json").stdout)["deploys"]
    assert [(r["from"], r["to"], r["result"]) for r in history] == [(None, v1, "ok"), (v1, v2, "ok"), (v2, v1, "ok")]


def test_docker_without_compose_plugin_says_so(tmp_path, docker_host, local_docker):
    """A host whose docker has no compose plugin: exit 4 naming what to install, nothing live."""
    app = make_app(tmp_path, docker_host, local_docker, "bare", 8096)
    app.release("bare one")
    plugins = "/usr/local/lib/docker/cli-plugins"        # hidden on this host only (its own mounts)
    ssh(docker_host, f"mount -t tmpfs tmpfs {plugins}")
    try:
        done = app.nself("deploy.to", "staging", check=False)
    finally:
        ssh(docker_host, f"umount {plugins}")
    assert done.returncode == 4, done.stderr
    assert "lacks the Docker Compose v2 plugin" in done.stderr and "rolled back" in done.stderr, done.stderr
    assert not (app.path(docker_host) / "current").exists()


def test_docker_service_flag_leaves_the_others_running(tmp_path, docker_host, local_docker):
    """router none, `--service web`: `docker compose up -d --no-deps web` recreates web only;
    api's container (which depends on web here) is the same one, on v1's image."""
    app = make_app(tmp_path, docker_host, local_docker, "quay", 8097)
    (app.root / "compose.yaml").write_text(COMPOSE.format(port=8097).replace(
        "  api:\n", "  api:\n    depends_on: [web]\n"))
    (app.root / "nself.yml").write_text((app.root / "nself.yml").read_text().replace("router: nginx",
                                                                                     "router: none"))
    v1 = app.release("quay one")
    app.nself("deploy.to", "staging")
    api_before = ssh(docker_host, "docker inspect -f '{{.Id}}' quay-staging-api").stdout.strip()
    app.release("quay two")
    app.nself("deploy.to", "staging", "--service", "web")
    assert app.page(docker_host) == "quay two"
    assert ssh(docker_host, "docker inspect -f '{{.Id}} {{.Config.Image}}' quay-staging-api").stdout.split() == [
        api_before, f"quay-api:{v1}"]
