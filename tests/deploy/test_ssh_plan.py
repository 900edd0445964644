"""The ssh target's plan is built with no host, no podman and no network (pure builders)."""
from __future__ import annotations

import dataclasses
import json
import subprocess

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


VOLUMES = ("volumes:\n  data: {}\n  shared: {external: true}\n  chosen: {name: shop-chosen, driver: local}\n")


def volume_project(tmp_path):
    project(tmp_path)               # writes the files and the inventory
    (tmp_path / "compose.yaml").write_text((tmp_path / "compose.yaml").read_text().replace(
        "  worker:\n", "    volumes: [data:/data, shared:/s, chosen:/c]\n  worker:\n") + VOLUMES)
    loaded = load_project(tmp_path, env="staging")
    return SshDriver(loaded, resolve(loaded, inventory.load(tmp_path)), Output())


def compose_of(driver, legacy=frozenset()) -> dict:
    files = compose_render.render(driver.project, {}, "/srv/shop/releases/x", "nginx", legacy)
    return yaml.safe_load(next(f for f in files if f.path == "compose.yaml").data)


def test_volumes_are_the_environments_own_unless_external_or_named(tmp_path):
    driver = volume_project(tmp_path)
    assert compose_of(driver)["volumes"] == {"chosen": {"name": "shop-chosen", "driver": "local"},
                                             "data": {"name": "shop-staging_data"},
                                             "shared": {"external": True, "name": "shared"}}
    # an environment whose live release used the old shared name keeps it
    assert compose_of(driver, frozenset({"data"}))["volumes"]["data"] == {"name": "shop_data"}
    assert driver.where.volumes == ("data",)


def run_probe(driver, base, live=False) -> HostState:
    """The probe script run by a real shell on a folder laid out like a host's."""
    where = dataclasses.replace(driver.where, base=str(base))
    script = ssh_plan.probe_script(where, "r1", [], driver.slots, live)
    return parse_probe(subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30,
                                      check=True).stdout)


# compose.yaml's volumes as nself wrote them before the environment was in volume names
OLD_COMPOSE = "name: shop\nservices:\n  web:\n    image: shop/web:r1\nvolumes:\n  data:\n    name: shop_data\n"


def test_the_probe_finds_volumes_named_the_old_shared_way(tmp_path):
    driver = volume_project(tmp_path)
    base = tmp_path / "host"
    (base / "releases" / "r1").mkdir(parents=True)
    (base / "current").symlink_to("releases/r1")
    (base / "releases" / "r1" / "compose.yaml").write_text(OLD_COMPOSE)
    state = run_probe(driver, base)
    assert state.current == "r1" and state.legacy_volumes == {"data"} and state.live_images == ()
    assert run_probe(driver, base, live=True).live_images == (("web", "shop/web:r1"),)
    # a live release already on its own names: nothing legacy
    (base / "releases" / "r1" / "compose.yaml").write_bytes(
        next(f.data for f in compose_render.render(driver.project, {"web": "shop/web:r1", "worker": "w:1"}, "/x",
                                                   "nginx") if f.path == "compose.yaml"))
    state = run_probe(driver, base, live=True)
    assert state.legacy_volumes == frozenset() and state.live_images == (("web", "shop/web:r1"),
                                                                         ("worker", "w:1"))


def test_docker_compose_missing_is_said_plainly(tmp_path):
    """The compose command on a host whose docker lacks the compose plugin: exit 127 and
    what to install (run by a real shell with a docker that knows no `compose`)."""
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho \"docker: 'compose' is not a docker command.\" >&2; exit 1\n")
    fake.chmod(0o755)
    command = ssh_plan.Runtime("docker").compose(compose_render.Slot("a", "shop-staging-a"), "up", "-d")
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30,
                          env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert done.returncode == 127 and "runtime docker: this host lacks the Docker Compose v2 plugin" in done.stderr


def test_docker_removes_containers_with_docker_stop_then_rm(tmp_path):
    """`docker rm` has no stop timeout (podman's has): docker stops first, then removes."""
    docker, podman = ssh_plan.Runtime("docker").remove_project("p-a"), ssh_plan.Runtime("podman").remove_project("p-a")
    assert "docker stop -t 10 $ids; docker rm -f $ids" in docker and " -t 10 $ids; docker rm" in docker
    assert "docker rm -f -t" not in docker and "podman rm -f -t 10 $ids" in podman


def test_service_flag_starts_only_those_without_a_router(tmp_path):
    (tmp_path / "n").mkdir()
    (tmp_path / "x").mkdir()
    none, nginx = project(tmp_path / "n", "none"), project(tmp_path / "x")
    one = ssh_plan.start(none.where, "r2", none.slots[""], "", "web1", ("web",))
    assert one[-1].argv[-1].endswith("podman-compose -p shop-staging -f compose.yaml -f slot.yaml up -d --no-deps web")
    slot = ssh_plan.start(nginx.where, "r2", nginx.slots["b"], "a", "web1", ("web",))
    assert slot[-1].argv[-1].endswith("up -d")         # a slot of its own starts whole
    options = DeployOptions(Release("r2", {"web": "shop/web:r2"}), services=("web",))
    plan = none.plan(options)      # the dry run: worker's image is the live one, read when it runs
    assert [s.summary for s in plan.steps if "image of worker" in s.summary] == []
    assert "--no-deps web" in "\n".join(plan.show())
    assert "image: <the live release's image of worker>" in next(
        s.data.decode() for s in plan.steps if s.summary == "upload compose.yaml")
