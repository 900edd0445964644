"""The ssh target's plan is built with no host, no podman and no network (pure builders)."""
from __future__ import annotations

import json

import pytest
import yaml

from nself.deploy import compose_render, ssh_plan
from nself.deploy.core import DeployOptions
from nself.deploy.release import Release
from nself.deploy.ssh import SshDriver
from nself.deploy.ssh_plan import HostState, parse_probe
from nself.deploy.targets import resolve
from nself.errors import ConfigError, Exit
from nself.project import load_project
from nself.remote import inventory
from nself.ui import Output


def project(tmp_path, router="nginx", env="staging", more="", servers=("web1", "web2"),
            port="8081"):
    (tmp_path / "compose.yaml").write_text(
        f"name: shop\nservices:\n  web:\n    image: shop/web:1\n    ports: ['{port}:8080']\n"
        "    environment: {API_TOKEN: '${API_TOKEN}', GREETING: 'a $$b'}\n"
        "    healthcheck: {test: [CMD, wget, -q, -O, /dev/null, 'http://localhost:8080/health']}\n"
        "  worker:\n    image: shop/worker:1\n")
    (tmp_path / "nself.yml").write_text(f"environments:\n  staging:\n    hosts: [web1, web2]\n    router: {router}\n"
                                        + more)
    (tmp_path / ".env.staging").write_text("API_TOKEN=t0p-s3cret-value\n")
    inventory.save(tmp_path, {n: inventory.Server(n, "127.0.0.1", 1) for n in servers})
    loaded = load_project(tmp_path, env=env)
    return SshDriver(loaded, resolve(loaded, inventory.load(tmp_path)), Output())


def test_plan_is_data_and_keeps_the_secret_out(tmp_path):
    driver = project(tmp_path)
    plan = driver.plan(DeployOptions(Release("abc123", {"web": "shop/web:abc123"})))
    text = json.dumps(plan.to_json()) + "\n".join(plan.show())
    assert "t0p-s3cret-value" not in text
    secret = [s for s in plan.steps if s.kind == "put" and s.spec["path"].endswith("env/web.env")]
    assert [s.spec["mode"] for s in secret] == [0o600, 0o600] and "t0p-s3cret-value" in secret[0].data.decode()
    lines = "\n".join(plan.show())
    for expected in ("podman save", "podman load", "podman-compose -p shop-staging-a",
                     "podman healthcheck run shop-staging-a-web",
                     "http://127.0.0.1:18081/health", "nginx -q -t", "mv -Tf"):
        assert expected in lines, expected
    assert {s.on for s in plan.steps} == {"local", "web1", "web2"}


def test_slots_alternate_and_ports_follow(tmp_path):
    driver = project(tmp_path)
    assert driver._next_slot(HostState()).name == "a"
    assert driver._next_slot(HostState(slot="a")).name == "b"
    assert driver._next_slot(HostState(slot="b")).name == "a"
    files = {f.path: f for f in compose_render.render(driver.project, {}, "/srv/shop/releases/x", "nginx")}
    compose = yaml.safe_load(files["compose.yaml"].data)
    assert "ports" not in compose["services"]["web"] and compose["services"]["web"]["environment"] == {
        "GREETING": "a $$b"}
    assert yaml.safe_load(files["slot-b.yaml"].data)["services"]["web"] == {
        "container_name": "shop-staging-b-web", "ports": ["127.0.0.1:28081:8080"]}
    none = {f.path for f in compose_render.render(project(tmp_path, "none").project, {}, "/x", "none")}
    assert "slot.yaml" in none and "slot-a.yaml" not in none


def test_probe_output_parses():
    state = parse_probe("current=r2\nprevious=r1\nslot=b\ndigest=abc\nreleases=r1 r2 \nimage=shop/web:r2\nrunning=2\n")
    assert state == HostState("r2", "r1", "b", "abc", frozenset({"shop/web:r2"}), 2, ("r1", "r2"))
    assert parse_probe("") == HostState()


PRODUCTION = "  production:\n    hosts: [web1]\n    path: /var/lib/shop-prod\n"


def names(plan) -> str:
    return "\n".join(s.argv[-1] if s.argv else "" for s in plan.steps if s.kind == "run")


def test_two_environments_on_one_host_use_their_own_names(tmp_path):
    """staging and production on web1: production's plan starts, empties and checks only
    production's compose projects and containers (the bug: `shop-a` was staging's too)."""
    (tmp_path / ".env.production").write_text("API_TOKEN=p\nWEB_PORT=9081\n")
    (tmp_path / ".env.staging").write_text("API_TOKEN=s\n")
    prod = project(tmp_path, env="production", more=PRODUCTION, port="${WEB_PORT:-8081}")
    staging = project(tmp_path, env="staging", more=PRODUCTION, port="${WEB_PORT:-8081}")
    release = Release("abc123", {"web": "shop/web:abc123"})
    mine, theirs = names(prod.plan(DeployOptions(release))), names(staging.plan(DeployOptions(release)))
    assert "podman-compose -p shop-production-a" in mine and "shop-production-a-web" in mine
    assert "podman-compose -p shop-staging-a" in theirs
    assert "shop-staging" not in mine and "shop-production" not in theirs
    assert "=shop-a " not in mine and "-p shop-a " not in mine
    # the old-style names are retired only where their release folder is this environment's
    switch_steps = ssh_plan.switch(prod.where, "abc123", prod.slots["b"], HostState("r1", slot="a"), "web1")
    stop = next(s for s in switch_steps if s.summary.startswith("stop slot a")).argv[-1]
    assert "label=com.docker.compose.project=shop-a " in stop and "/var/lib/shop-prod/releases/" in stop
    assert "label=com.docker.compose.project=shop-production-a" in stop


def test_same_ports_on_a_shared_host_are_refused_naming_both(tmp_path):
    prod = project(tmp_path, env="production", more=PRODUCTION)
    with pytest.raises(ConfigError) as caught:
        prod.plan(DeployOptions(Release("abc123", {"web": "shop/web:abc123"})))
    assert caught.value.code == Exit.CONFIG
    assert "production and staging share web1" in caught.value.message and "8081" in caught.value.message


def test_same_path_on_a_shared_host_is_refused(tmp_path):
    prod = project(tmp_path, env="production", more="  production:\n    hosts: [web2]\n")
    with pytest.raises(ConfigError, match="production and staging share web2 and the same path /srv/shop"):
        prod.plan(DeployOptions(Release("abc123", {"web": "shop/web:abc123"})))


def test_environments_on_different_hosts_may_reuse_ports(tmp_path):
    prod = project(tmp_path, env="production", more="  production:\n    hosts: [web3]\n    path: /srv/prod\n",
                   servers=("web1", "web2", "web3"))
    assert prod.plan(DeployOptions(Release("abc123", {"web": "shop/web:abc123"}))).steps


def test_dry_run_deploys_the_images_the_build_steps_will_produce(tmp_path, nself):
    """No --skip-build, nothing built yet, no host reachable (port 1): the dry run plans the
    build and the deploy of the built image by the name build.images() gives it."""
    project(tmp_path)
    (tmp_path / "compose.yaml").write_text((tmp_path / "compose.yaml").read_text().replace(
        "    image: shop/web:1\n", "    build: {context: app}\n"))
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Containerfile").write_text("FROM scratch\n")
    r = nself(["deploy.to", "staging", "--release", "v7", "--dry-run", "--json"], cwd=tmp_path)
    assert r.code == 0, r.err
    steps = json.loads(r.out)["plan"]["steps"]
    built = next(s for s in steps if s["summary"].startswith("build web as "))["summary"].removeprefix(
        "build web as ")
    assert built.endswith(":v7")
    summaries = {s["summary"] for s in steps}
    assert {f"save {built} for the hosts", f"load {built}", "upload compose.yaml"} <= summaries


def test_a_neighbour_that_does_not_load_is_not_a_reason_to_refuse(tmp_path):
    (tmp_path / ".env.production").write_text("API_TOKEN=p\nWEB_PORT=9081\n")
    prod = project(tmp_path, env="production", more="  production:\n    hosts: [web1]\n    path: /srv/p\n"
                                                   "  qa:\n    hosts: [nowhere]\n", port="${WEB_PORT:-8081}")
    assert prod.plan(DeployOptions(Release("abc123", {"web": "shop/web:abc123"}))).steps
