"""`service NAME status` locally, against real podman: containers labelled as podman-compose
labels them, with a healthcheck that passes, one that fails, and a stopped container."""
from __future__ import annotations

import os
import subprocess

import pytest

from nself.testing import containers
from tests.services.test_enable import new_project


@pytest.fixture(scope="module")
def podman_image(tmp_path_factory):
    """podman with its own storage, and the tiny busybox HTTP app image (FROM scratch)."""
    folder = tmp_path_factory.mktemp("podman")
    env = {**os.environ, **containers.local_env(folder / "store")}
    context = containers.write_app(folder / "app", "v1")
    subprocess.run(["podman", "build", "--isolation", "chroot", "-t", "localhost/svc-app:v1", str(context)],
                   env=env, check=True, capture_output=True, timeout=300)
    yield env
    containers.reset_local(env)


def start(env, name, service, health_cmd, project="app"):
    subprocess.run(["podman", "run", "-d", "--name", name, "--network", "none",
                    "--label", f"com.docker.compose.project={project}",
                    "--label", f"com.docker.compose.service={service}",
                    "--health-cmd", health_cmd, "localhost/svc-app:v1"],
                   env=env, check=True, capture_output=True, timeout=120)


def test_status_reports_running_healthy_unhealthy_and_stopped(nself, tmp_path, podman_image, monkeypatch):
    for key in ("CONTAINERS_STORAGE_CONF", "CONTAINERS_CONF", "TMPDIR"):
        monkeypatch.setenv(key, podman_image[key])
    root = new_project(nself, tmp_path, "mailpit=true")
    assert nself(["service", "search", "enable"], cwd=root).code == 0
    start(podman_image, "app_mailpit_1", "mailpit", "wget -q -O /dev/null http://127.0.0.1:8080/health")
    start(podman_image, "other_mailpit_1", "mailpit", "false", project="other")   # another project's
    start(podman_image, "app_meilisearch_1", "meilisearch", "wget -q -O /dev/null http://127.0.0.1:8080/nope")

    r = nself(["service", "email", "status", "--json"], cwd=root)
    assert r.code == 0, r.err
    doc = r.json()
    assert (doc["running"], doc["healthy"], doc["enabled"]) == (True, True, True)
    assert [c["name"] for c in doc["containers"]] == ["app_mailpit_1"]

    r = nself(["service", "search", "status", "--json"], cwd=root)
    assert r.code == 4 and r.json()["running"] is True and r.json()["healthy"] is False
    assert "search is unhealthy in local" in r.err

    subprocess.run(["podman", "stop", "-t", "1", "app_mailpit_1"], env=podman_image, check=True,
                   capture_output=True, timeout=60)
    r = nself(["service", "email", "status", "--json"], cwd=root)
    assert r.code == 4 and r.json()["running"] is False and r.json()["containers"][0]["state"] == "exited"

    r = nself(["service", "mlflow", "status"], cwd=root)   # not enabled, nothing running
    assert r.code == 4 and "not running" in r.err and "service mlflow enable" in r.err


def test_monitor_status_shows_the_profile_and_each_component(nself, tmp_path, podman_image, monkeypatch):
    for key in ("CONTAINERS_STORAGE_CONF", "CONTAINERS_CONF", "TMPDIR"):
        monkeypatch.setenv(key, podman_image[key])
    (tmp_path / "m").mkdir()
    root = new_project(nself, tmp_path / "m")
    assert nself(["monitor", "enable"], cwd=root).code == 0
    start(podman_image, "app_prometheus_1", "prometheus", "wget -q -O /dev/null http://127.0.0.1:8080/health")
    r = nself(["monitor", "status", "--json"], cwd=root)
    assert r.code == 4 and "grafana" in r.err and "prometheus," not in r.err
    doc = r.json()
    assert doc["profile"] == "minimal"
    assert {c["service"]: (c["running"], c["healthy"]) for c in doc["components"]} == {
        "prometheus": (True, True), "grafana": (False, False)}
