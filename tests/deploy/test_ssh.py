"""The ssh deploy target end to end: real sshd hosts in their own network namespaces, each
running podman (runc, cgroupfs) with podman-compose and nginx; the app is a FROM-scratch
busybox image built by `nself deploy.build` (no registry: images stream to the hosts).
Everything runs through the `nself` CLI; pages are read over HTTP from outside the hosts."""
from __future__ import annotations

import json
import os
import shlex
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from nself.testing.containers import ssh, write_app

NSELF = str(Path(sys.executable).parent / "nself")


class App:
    """A git project of two services (web published on `port`, api internal) deployed to `hosts`."""

    def __init__(self, root: Path, hosts, port: int, env: dict):
        self.root, self.hosts, self.port, self.env = root, hosts, port, env

    def nself(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        done = subprocess.run([NSELF, *args], cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if check and done.returncode:
            raise AssertionError(f"nself {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def release(self, version: str, healthy: bool = True) -> str:
        write_app(self.root / "app", version, healthy=healthy)
        git(self.root, "add", "-A")
        git(self.root, "commit", "-qm", version)
        return git(self.root, "rev-parse", "--short=12", "HEAD")

    def page(self, host, path: str = "/") -> str:
        return http(f"http://{host.ip}:{self.port}{path}")

    def path(self, host) -> Path:
        """The project folder on a host, seen from outside (its /var/lib is an overlay)."""
        return host.folder / "layers" / "var_lib" / "nself-test" / self.root.name


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}).stdout.strip()


def http(url: str, attempts: int = 20) -> str:
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                return response.read().decode().strip()
        except OSError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.25)
    raise AssertionError("unreachable")


COMPOSE = """\
services:
  web:
    build: ./app
    ports: ["{port}:8080"]
    environment:
      GREETING: "hello $$HOME"
      API_TOKEN: ${{API_TOKEN}}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://localhost:8080/health"]
      interval: 2s
  api:
    build: ./app
    depends_on: [web]
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O /dev/null http://localhost:8080/health"]
"""


def make_app(tmp_path, hosts, local_podman, name: str, port: int, servers=None) -> App:
    root = tmp_path / name
    root.mkdir()
    (root / "compose.yaml").write_text(COMPOSE.format(port=port))
    names = servers or [h.name for h in hosts]
    (root / "nself.yml").write_text(
        "environments:\n  staging:\n    hosts: [" + ", ".join(names) + "]\n"
        f"    path: /var/lib/nself-test/{name}\n    runtime: podman\n    router: nginx\n"
        "deploy:\n  keep_releases: 2\n  timeout: 20\n")
    (root / ".env.staging").write_text("API_TOKEN=s3cr3t-t0ken-value\n")
    (root / ".gitignore").write_text(".nself/cache/\n.nself/state/\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
    env.update(local_podman)
    app = App(root, hosts, port, env)
    git(root, "init", "-q")
    for host in hosts:
        app.nself("cloud.servers.add", host.name, "--host", host.ip, "--key", str(host.user_key), "--trust-new")
    return app


def test_deploy_v1_v2_rollback_v2_again(tmp_path, hosts, local_podman):
    app = make_app(tmp_path, hosts, local_podman, "shop", 8081)
    v1 = app.release("version one")
    app.nself("deploy.to", "staging")
    assert [app.page(h) for h in hosts] == ["version one"] * 2

    # the secret reached the hosts only in a 0600 env file, never the compose file or the plan
    folder = app.path(hosts[0]) / "releases" / v1
    env_file = folder / "env" / "web.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600 and "s3cr3t-t0ken-value" in env_file.read_text()
    assert "s3cr3t" not in (folder / "compose.yaml").read_text()
    dry = app.nself("deploy.to", "staging", "--dry-run", "--json", "--skip-build").stdout
    assert "s3cr3t" not in dry and json.loads(dry)["plan"]

    v2 = app.release("version two")
    app.nself("deploy.to", "staging")
    assert [app.page(h) for h in hosts] == ["version two"] * 2

    app.nself("deploy.rollback", "staging", "--yes")
    assert [app.page(h) for h in hosts] == ["version one"] * 2
    status = json.loads(app.nself("deploy.status", "staging", "--json").stdout)
    assert [r["release"] for r in status["rows"]] == [v1, v1]

    app.nself("deploy.to", "staging")            # v2 again: its release folder is still there
    assert [app.page(h) for h in hosts] == ["version two"] * 2
    check = json.loads(app.nself("deploy.check", "staging", "--json").stdout)
    assert check["healthy"] and {s["service"] for s in check["services"]} == {"web", "api"}

    history = json.loads(app.nself("deploy.history", "staging", "--json").stdout)["deploys"]
    assert [(r["from"], r["to"], r["result"]) for r in history] == [
        (None, v1, "ok"), (v1, v2, "ok"), (v2, v1, "ok"), (v1, v2, "ok")]
    assert (app.path(hosts[0]) / "deploy.log").is_file() and not (app.path(hosts[1]) / "deploy.log").exists()

    # an unchanged release changes nothing (the same containers keep serving)
    before = ssh(hosts[0], "podman ps -q --no-trunc | sort").stdout
    again = json.loads(app.nself("deploy.to", "staging", "--json").stdout)
    assert again["detail"]["unchanged"] == [h.name for h in hosts]
    assert ssh(hosts[0], "podman ps -q --no-trunc | sort").stdout == before
    # one live slot: the old one's containers are gone; keep_releases 2 keeps v1 and v2
    assert len(before.split()) == 2, ssh(hosts[0], "podman ps -a --format '{{.Names}} {{.Status}}'").stdout
    assert sorted(p.name for p in (app.path(hosts[1]) / "releases").iterdir()) == sorted([v1, v2])


def test_health_never_passing_rolls_back(tmp_path, hosts, local_podman):
    app = make_app(tmp_path, hosts, local_podman, "clinic", 8082)
    v1 = app.release("clinic one")
    app.nself("deploy.to", "staging")
    app.release("clinic broken", healthy=False)
    done = app.nself("deploy.to", "staging", "--timeout", "4", check=False)
    assert done.returncode == 10, done.stderr
    assert "host1" in done.stderr and "host2" in done.stderr and "rolled back" in done.stderr
    assert [app.page(h) for h in hosts] == ["clinic one"] * 2
    status = json.loads(app.nself("deploy.status", "staging", "--json").stdout)
    assert [r["release"] for r in status["rows"]] == [v1, v1]
    label = "--filter label=com.docker.compose.project=clinic-staging"
    for host in hosts:     # the broken release's containers are gone, the live slot's still run
        left = ssh(host, f"podman ps -a --format '{{{{.Names}}}} {{{{.Status}}}}' {label}-b").stdout
        assert left == "", left
        assert ssh(host, f"podman ps -q {label}-a | wc -l").stdout.strip() == "2"


def test_lock_held_names_the_holder(tmp_path, hosts, local_podman):
    app = make_app(tmp_path, hosts[:1], local_podman, "bakery", 8083)
    app.release("bakery one")
    lock = "/var/lib/nself-test/bakery/.deploy.lock"
    ssh(hosts[0], f"mkdir -p {lock} && echo '{{\"who\": \"ana@laptop\", \"since\": \"2026-11-30T10:00:00Z\", "
                  f"\"what\": \"deploy (rolling)\", \"release\": \"abc\"}}' > {lock}/holder.json")
    done = app.nself("deploy.to", "staging", check=False)
    assert done.returncode == 1 and "ana@laptop" in done.stderr, done.stderr
    assert not (app.path(hosts[0]) / "current").exists()
    app.nself("deploy.unlock", "staging", "--yes")
    app.nself("deploy.to", "staging")
    assert app.page(hosts[0]) == "bakery one"
    assert not (app.path(hosts[0]) / ".deploy.lock").exists()          # released after the deploy


def test_unreachable_host_changes_nothing(tmp_path, hosts, local_podman):
    app = make_app(tmp_path, hosts[:1], local_podman, "harbor", 8084, servers=["host1", "ghost"])
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    servers = app.root / ".nself" / "servers.yml"
    servers.write_text(servers.read_text() + f"  ghost:\n    host: 127.0.0.1\n    port: {closed}\n")
    app.release("harbor one")
    done = app.nself("deploy.to", "staging", check=False)
    assert done.returncode == 6 and "ghost" in done.stderr, done.stderr
    assert not (app.path(hosts[0]) / "current").exists()
    assert not (app.path(hosts[0]) / ".deploy.lock").exists()


def test_unknown_host_key(tmp_path, hosts, local_podman):
    app = make_app(tmp_path, hosts[:1], local_podman, "garden", 8085)
    (app.root / ".nself" / "known_hosts").write_text("")
    app.release("garden one")
    done = app.nself("deploy.to", "staging", check=False)
    assert done.returncode == 7 and "host key" in done.stderr, done.stderr


def test_image_build_failure(tmp_path, hosts, local_podman):
    app = make_app(tmp_path, hosts[:1], local_podman, "forge", 8086)
    app.release("forge one")
    context = app.root / "app" / "Containerfile"
    context.write_text(context.read_text().replace("COPY www /www", "RUN [\"/bin/false\"]\nCOPY www /www"))
    git(app.root, "commit", "-qam", "broken build")
    done = app.nself("deploy.to", "staging", check=False)
    assert done.returncode == 4 and "build" in done.stderr, done.stderr
    assert not (app.path(hosts[0]) / "current").exists()


def test_two_environments_on_one_host_keep_their_own_containers(tmp_path, hosts, local_podman):
    """staging and production of one project on host1, in their own paths and ports: deploying
    production (twice, so it empties a slot) never touches staging's containers, and each
    environment has its own named volume, which production's two releases share."""
    app = make_app(tmp_path, hosts[:1], local_podman, "twins", 8087)
    (app.root / "compose.yaml").write_text(COMPOSE.format(port="${WEB_PORT}").replace(
        "    environment:\n      GREETING", "    volumes: [\"data:/data\"]\n    environment:\n      GREETING", 1)
        + "volumes:\n  data: {}\n")
    (app.root / "nself.yml").write_text((app.root / "nself.yml").read_text().replace(
        "deploy:", "  production:\n    hosts: [host1]\n    path: /var/lib/nself-test/twins-prod\n"
                   "    runtime: podman\n    router: nginx\ndeploy:"))
    (app.root / ".env.staging").write_text("API_TOKEN=s\nWEB_PORT=8087\n")
    (app.root / ".env.production").write_text("API_TOKEN=p\nWEB_PORT=8088\n")
    app.release("twins one")
    app.nself("deploy.to", "staging")
    app.release("twins two")
    app.nself("deploy.to", "production")
    host = hosts[0]
    ssh(host, "podman exec twins-staging-a-web sh -c 'echo staging > /data/who' && "
              "podman exec twins-production-a-web sh -c 'echo production > /data/who'")
    app.release("twins three")
    app.nself("deploy.to", "production")
    assert http(f"http://{host.ip}:8087/") == "twins one" and http(f"http://{host.ip}:8088/") == "twins three"
    names = ssh(host, "podman ps --format '{{.Names}}' | grep '^twins' | sort").stdout.split()
    assert names == ["twins-production-b-api", "twins-production-b-web", "twins-staging-a-api",
                     "twins-staging-a-web"], names
    volumes = ssh(host, "podman volume ls --format '{{.Name}}' | grep '^twins' | sort").stdout.split()
    assert volumes == ["twins-production_data", "twins-staging_data"], volumes
    assert ssh(host, "podman exec twins-production-b-web cat /data/who").stdout.strip() == "production"
    assert ssh(host, "podman exec twins-staging-a-web cat /data/who").stdout.strip() == "staging"
    status = json.loads(app.nself("deploy.status", "staging", "--json").stdout)
    assert status["rows"][0]["running"] == 2 and status["rows"][0]["slot"] == "a"

    # the same port for both is refused before anything runs, naming both environments
    (app.root / ".env.production").write_text("API_TOKEN=p\nWEB_PORT=8087\n")
    done = app.nself("deploy.to", "production", check=False)
    assert done.returncode == 3 and "production and staging share host1" in done.stderr, done.stderr


def test_ctrl_c_while_starting_reverts_the_new_slot(tmp_path, hosts, local_podman):
    app = make_app(tmp_path, hosts[:1], local_podman, "relay", 8089)
    app.release("relay one")
    app.nself("deploy.to", "staging")
    app.release("relay broken", healthy=False)
    app.nself("deploy.build", "staging")
    host, label = hosts[0], "--filter label=com.docker.compose.project=relay-staging-b"
    deploy = subprocess.Popen([NSELF, "deploy.to", "staging", "--skip-build", "--timeout", "15"], cwd=app.root,
                              env=app.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while ssh(host, f"podman ps -q {label} | wc -l").stdout.strip() != "2":    # the new slot runs
            assert time.monotonic() < deadline and deploy.poll() is None, deploy.communicate()
            time.sleep(0.5)
        os.killpg(deploy.pid, signal.SIGINT)                  # what Ctrl-C in a terminal does
        _out, err = deploy.communicate(timeout=120)
    finally:
        if deploy.poll() is None:
            os.killpg(deploy.pid, signal.SIGKILL)
    assert deploy.returncode == 130, err
    assert "rolling back host1" in err, err
    assert ssh(host, f"podman ps -aq {label} | wc -l").stdout.strip() == "0"
    assert app.page(host) == "relay one"
    assert not (app.path(host) / ".deploy.lock").exists()


# A pause point in the switch phase: nginx on host2 waits, at its first call only (the switch's
# `nginx -t`), until the test says go. /usr/local/sbin is the host's own and comes before /usr/sbin.
PAUSING_NGINX = """#!/bin/sh
if [ -e /var/lib/nself-pause ]; then
  rm -f /var/lib/nself-pause; touch /var/lib/nself-paused
  i=0; while [ ! -e /var/lib/nself-go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
fi
exec /usr/sbin/nginx "$@"
"""


def test_ctrl_c_while_switching_reverts_every_host(tmp_path, hosts, local_podman):
    """Ctrl-C once host1 went live on v2 and host2 is mid-switch: after host2's running step
    ends (it too goes live), both hosts are put back on v1, then the lock is released."""
    app = make_app(tmp_path, hosts, local_podman, "ferry", 8090)
    v1 = app.release("ferry one")
    app.nself("deploy.to", "staging")
    app.release("ferry two")
    app.nself("deploy.build", "staging")
    host1, host2 = hosts
    ssh(host2, f"printf %s {shlex.quote(PAUSING_NGINX)} > /usr/local/sbin/nginx && chmod +x /usr/local/sbin/nginx "
               "&& rm -f /var/lib/nself-paused /var/lib/nself-go && touch /var/lib/nself-pause")
    deploy = subprocess.Popen([NSELF, "deploy.to", "staging", "--skip-build"], cwd=app.root, env=app.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (app.path(host2).parent.parent / "nself-paused").exists() or app.page(host1) != "ferry two":
            assert time.monotonic() < deadline and deploy.poll() is None, deploy.communicate()
            time.sleep(0.2)
        os.killpg(deploy.pid, signal.SIGINT)                  # what Ctrl-C in a terminal does
        time.sleep(1)
        ssh(host2, "touch /var/lib/nself-go")                 # host2's switch step goes on and ends
        _out, err = deploy.communicate(timeout=120)
    finally:
        if deploy.poll() is None:
            os.killpg(deploy.pid, signal.SIGKILL)
        ssh(host2, "rm -f /usr/local/sbin/nginx /var/lib/nself-pause /var/lib/nself-paused /var/lib/nself-go")
    assert deploy.returncode == 130, err
    assert "interrupted while switching" in err and "rolling back host1, host2" in err, err
    assert [app.page(h) for h in hosts] == ["ferry one"] * 2
    label = "--filter label=com.docker.compose.project=ferry-staging"
    for host in hosts:
        assert ssh(host, f"podman ps -aq {label}-b | wc -l").stdout.strip() == "0"
        assert ssh(host, f"podman ps -q {label}-a | wc -l").stdout.strip() == "2"
        assert (app.path(host) / "current").resolve().name == v1
    assert not (app.path(host1) / ".deploy.lock").exists()


def test_service_flag_recreates_only_that_service(tmp_path, hosts, local_podman):
    """router none, `--service api`: api runs v2, web's container is the same one, serving v1
    (its image carried over into the new release's compose file)."""
    app = make_app(tmp_path, hosts[:1], local_podman, "mill", 8091)
    (app.root / "nself.yml").write_text((app.root / "nself.yml").read_text().replace("router: nginx",
                                                                                     "router: none"))
    v1 = app.release("mill one")
    app.nself("deploy.to", "staging")
    host = hosts[0]
    web_before = ssh(host, "podman inspect -f '{{.Id}}' mill-staging-web").stdout.strip()
    v2 = app.release("mill two")
    done = json.loads(app.nself("deploy.to", "staging", "--service", "api", "--json").stdout)
    assert done["result"] == "ok" and done["to"] == v2
    assert ssh(host, "podman inspect -f '{{.Id}}' mill-staging-web").stdout.strip() == web_before
    assert app.page(host) == "mill one"
    assert ssh(host, "podman exec mill-staging-api wget -q -O - http://127.0.0.1:8080/").stdout.strip() == "mill two"
    compose = (app.path(host) / "releases" / v2 / "compose.yaml").read_text()
    assert f"image: mill-web:{v1}" in compose and f"image: mill-api:{v2}" in compose, compose
    assert not (app.root / ".nself" / "state" / "images" / f"{v2}.json").read_text().count("mill-web")

    # canary and blue-green move every service together: refused plainly, nothing changed
    (app.root / "nself.yml").write_text((app.root / "nself.yml").read_text() + "  strategy: canary\n")
    refused = app.nself("deploy.to", "staging", "--service", "web", check=False)
    assert refused.returncode == 2 and "--service with strategy canary" in refused.stderr, refused.stderr
    assert app.page(host) == "mill one"
