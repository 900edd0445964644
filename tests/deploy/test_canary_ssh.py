"""Canary and blue-green on the ssh target, end to end: the `nself` CLI (and `inv` once) in a git
project deploying to two networked sshd hosts that run podman and nginx (the hosts and the app
of tests/deploy/test_ssh.py). Traffic is measured from outside the hosts: the app answers
with its version, so every response says which slot served it.

The first tests are pure: the nginx configs and log reading the canary verbs send."""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from nself.deploy import nginx
from nself.deploy.canary import CanaryState
from nself.deploy.ssh_canary import _log_header
from nself.plan import Plan, shell
from nself.testing.containers import ssh
from tests.deploy.test_ssh import make_app
from tests.deploy.test_ssh_plan import project as pure_project

INV = str(Path(sys.executable).parent / "inv")


# -- pure: what is sent to the hosts ---------------------------------------------------------------
def test_split_configs_weight_both_slots_exactly(tmp_path):
    driver = pure_project(tmp_path)
    a, b = driver.slots.values()
    ten = nginx.split(driver.project, "/srv/shop", b, 10)
    assert "upstream web_8081 { server 127.0.0.1:18081 weight=90; server 127.0.0.1:28081 weight=10; }" in ten
    assert "log_format nself_json escape=json" in ten and "access_log /srv/shop/router/access.log nself_json;" in ten
    assert "proxy_next_upstream error timeout http_502 http_503;" in ten
    # 0 % is only the stable slot, 100 % only the canary: no server with weight 0 (nginx refuses it)
    assert "upstream web_8081 { server 127.0.0.1:28081; }" in nginx.split(driver.project, "/srv/shop", a, 0)
    assert "upstream web_8081 { server 127.0.0.1:18081; }" in nginx.split(driver.project, "/srv/shop", a, 100)
    # a slot's own config is unchanged by the split: one server, no access log
    own = nginx.config(driver.project, "/srv/shop", {a: 100})
    assert "upstream web_8081 { server 127.0.0.1:18081; }" in own and "access_log off;" in own


def test_split_steps_check_everywhere_then_swap(tmp_path):
    driver = pure_project(tmp_path)
    check = nginx.check_split(driver.project, "/srv/shop", 25, "web1")
    assert [s.kind for s in check] == ["put", "put", "run"]
    assert [s.spec["path"] for s in check[:2]] == ["/srv/shop/router/canary-a.conf.new",
                                                   "/srv/shop/router/canary-b.conf.new"]
    assert "nginx -q -t" in check[2].display() and "reload" not in check[2].display()
    swap = nginx.apply_split("/srv/shop", 25, "web1").display()
    assert swap.index("mv -Tf .nginx.conf.new nginx.conf") < swap.index("-s reload")
    assert swap.index("-s reload") < swap.index("shutting down")     # returns once old workers stopped accepting
    log = nginx.read_log(driver.project, "/srv/shop", 4096, "web1").display()
    assert "off=4096" in log and "-e 127.0.0.1:28081" in log and "-e 127.0.0.1:18081" in log


def test_no_split_without_nginx_or_published_ports(tmp_path):
    from nself.deploy.core import DeployOptions, NotSupported
    from nself.deploy.release import Release

    options = DeployOptions(Release("abc"))
    for name in ("none", "closed"):
        (tmp_path / name).mkdir()
    with pytest.raises(NotSupported, match="router: none"):       # refused before any host is reached
        pure_project(tmp_path / "none", router="none").canary_start(options)
    driver = pure_project(tmp_path / "closed")
    (driver.project.root / "compose.yaml").write_text("name: shop\nservices:\n  worker:\n    image: shop/w:1\n")
    from nself.deploy.ssh import SshDriver
    from nself.project import load_project
    closed = SshDriver(load_project(driver.project.root, env="staging"), driver.target, driver.out)
    with pytest.raises(NotSupported, match="publishes no TCP port"):
        closed.canary_start(options)


def test_log_header_and_lines():
    head, lines = _log_header('slot=b\nsize=120\nfrom=0\n{"time":1,"upstream":"127.0.0.1:28081"}\n')
    assert head == {"slot": "b", "size": "120", "from": "0"}
    assert lines == ['{"time":1,"upstream":"127.0.0.1:28081"}']


# -- real hosts ----------------------------------------------------------------------------------
class Client:
    """One kept-alive HTTP/1.1 connection to a host's published port."""

    def __init__(self, host, port: int):
        self.address, self.port, self.connection, self.used = host.ip, port, None, 0

    def get(self, path: str = "/") -> tuple[int, str]:
        if self.connection is None:
            self.connection, self.used = http.client.HTTPConnection(self.address, self.port, timeout=3), 0
        try:
            self.connection.request("GET", path)
            response = self.connection.getresponse()
            body = response.read().decode().strip()
        except BaseException:
            self.close()
            raise
        self.used += 1
        return response.status, body

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.connection = None


CLOSED_BY_SERVER = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def fetch(client: Client, counts: Counter) -> str | None:
    """One request, counted. A request whose *reused* connection the server closed before
    answering (an old nginx worker closing its idle kept-alive connections after a reload) is
    sent once more on a new connection and counted as `retried`; everything else that is not
    a 200 — another status, a timeout, a refused or reset fresh connection, a retry that fails
    too — is `failed`. Returns the body of a 200."""
    for attempt in (1, 2):
        reused = client.connection is not None and client.used > 0
        try:
            status, body = client.get()
        except CLOSED_BY_SERVER as exc:
            if attempt == 1 and reused:
                counts["retried"] += 1
                continue
            counts["failed"] += 1
            counts[f"error {type(exc).__name__}"] += 1
            return None
        except OSError as exc:
            counts["failed"] += 1
            counts[f"error {type(exc).__name__}"] += 1
            return None
        if status != 200:
            counts["failed"] += 1
            counts[f"status {status}"] += 1
            return None
        counts["ok"] += 1
        return body
    return None


def measure(app, count: int) -> Counter:
    """`count` requests spread over every host; the bodies (versions) counted."""
    clients, versions, counts = [Client(h, app.port) for h in app.hosts], Counter(), Counter()
    for index in range(count):
        versions[fetch(clients[index % len(clients)], counts)] += 1
    for client in clients:
        client.close()
    assert counts["failed"] == 0, counts
    return versions


class Load(threading.Thread):
    """Requests to every host in turn, each over its own kept-alive connection, until stopped;
    `counts` as `fetch` defines them, `versions` the bodies of the 200s."""

    def __init__(self, app):
        super().__init__(daemon=True)
        self.app, self.counts, self.versions, self.halt = app, Counter(), Counter(), threading.Event()

    def run(self) -> None:
        clients = [Client(h, self.app.port) for h in self.app.hosts]
        while not self.halt.is_set():
            for client in clients:
                self.versions[fetch(client, self.counts)] += 1
        for client in clients:
            client.close()

    def stop(self) -> Counter:
        self.halt.set()
        self.join(30)
        return self.counts


def state_of(app) -> dict:
    return json.loads(app.nself("deploy.canary.status", "staging", "--json").stdout)


def slot_containers(host, project: str, slot: str) -> int:
    label = f"--filter label=com.docker.compose.project={project}-staging-{slot}"
    return int(ssh(host, f"podman ps -q {label} | wc -l").stdout.strip())


def in_process(app):
    """The environment's SshDriver, as the tasks build it."""
    from nself.deploy.drivers import driver_for
    from nself.project import load_project
    from nself.remote import inventory
    from nself.ui import Output

    return driver_for(load_project(app.root, env="staging"), Output(), inventory.load(app.root))


def client_ports(driver) -> dict[str, str]:
    """Per host, the client port of the driver's connection there (as the host sees it)."""
    plans = {h: Plan("where from", [shell("the client port", 'set -- $SSH_CONNECTION; echo "$2"', on=h)])
             for h in driver.hosts}
    return {r.name: r.stdout.strip() for r in driver._run(plans, len(plans))}


def nginx_workers(host, router: str) -> str:
    return ssh(host, f"pgrep -P $(cat {router}/nginx.pid) | sort").stdout.strip()


def live_slot(app, host) -> str:
    return (app.path(host) / "slot").read_text()


def test_canary_split_refusals_rollback_and_promote(tmp_path, hosts, local_podman):
    """10 % over 2000 requests is 10 % ± 3 %; a deploy.to or a second canary meanwhile is
    refused naming it (the deploy.to is audited as failed); rollback is 0 % at the first
    request after it; `inv deploy.canary` starts it again; promote is 100 % and leaves the host as a deploy would."""
    app = make_app(tmp_path, hosts, local_podman, "market", 8091)
    (app.root / "tasks.py").write_text("from nself.tasks import namespace\n\nns = namespace()\n")
    v1 = app.release("market one")
    app.nself("deploy.to", "staging")
    stable = live_slot(app, hosts[0])
    v2 = app.release("market two")
    app.nself("deploy.canary", "staging", "--percent", "10")
    state = state_of(app)
    assert (state["release"], state["stable"], state["weight"], state["phase"]) == (v2, v1, 10, "paused")
    split = measure(app, 2000)
    assert set(split) == {"market one", "market two"}
    assert 0.07 <= split["market two"] / 2000 <= 0.13, split
    # the analysis' view: exactly the canary's requests, each counted once across reads of the log
    driver, canary = in_process(app), CanaryState.from_dict(state)
    assert len(driver.canary_requests(canary, 0)) == split["market two"]
    assert all(size > 0 for size in driver._log_offsets.values())
    more = measure(app, 100)["market two"]
    assert len(driver.canary_requests(canary, 0)) == split["market two"] + more

    refused = app.nself("deploy.to", "staging", check=False)
    assert refused.returncode == 1, refused.stderr
    assert f"a deploy is refused while the canary of release {v2} is in progress" in refused.stderr
    again = app.nself("deploy.canary", "staging", "--skip-build", check=False)
    assert again.returncode == 1, again.stderr
    assert f"a new canary is refused while the canary of release {v2} is in progress" in again.stderr

    app.nself("deploy.canary.rollback", "staging")
    assert measure(app, 200) == Counter({"market one": 200})
    assert all(slot_containers(h, "market", "b" if stable == "a" else "a") == 0 for h in hosts)
    assert state_of(app)["phase"] == "aborted"

    done = subprocess.run([INV, "deploy.canary", "staging", "--percent", "10", "--skip-build", "--release", v2],
                          cwd=app.root, env=app.env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert state_of(app)["weight"] == 10 and 0.07 <= measure(app, 2000)["market two"] / 2000 <= 0.13

    app.nself("deploy.canary.promote", "staging")
    assert measure(app, 200) == Counter({"market two": 200})
    assert state_of(app)["phase"] == "promoted"
    for host in hosts:        # as after a deploy: links, the live slot, the old slot gone
        folder = app.path(host)
        assert os.readlink(folder / "current").endswith(v2) and os.readlink(folder / "previous").endswith(v1)
        assert live_slot(app, host) != stable and slot_containers(host, "market", stable) == 0
    history = json.loads(app.nself("deploy.history", "staging", "--json").stdout)["deploys"]
    assert [(r["strategy"], r["to"], r["result"]) for r in history] == [
        ("rolling", v1, "ok"), ("rolling", v2, "failed"), ("canary", v2, "aborted"), ("canary", v2, "ok")]
    assert json.loads(app.nself("deploy.status", "staging", "--json").stdout)["release"] == v2


def test_blue_green_twenty_switches_under_load(tmp_path, hosts, local_podman):
    """One deploy.blue-green, then 20 traffic switches while a load loop runs: the commands
    deploy.blue-green.switch (the first) and .rollback (the last), and between them the
    router's switch that `switch` runs (`canary_weight` 0 and 100) 18 times over one driver
    (and its one connection per host): 0 failed requests (as `fetch` counts them), every
    switch complete when it returns, the new colour's containers removed by the rollback, each
    command in the audit log."""
    app = make_app(tmp_path, hosts, local_podman, "pier", 8092)
    app.release("pier one")
    app.nself("deploy.to", "staging")
    stable = live_slot(app, hosts[0])
    app.release("pier two")
    app.nself("deploy.blue-green", "staging")
    load = Load(app)
    load.start()
    try:
        app.nself("deploy.blue-green.switch", "staging")
        assert measure(app, 20) == Counter({"pier two": 20})
        driver = in_process(app)
        before = client_ports(driver)
        for weight in [0, 100] * 9:
            driver.canary_weight(None, weight)
            assert measure(app, 20) == Counter({"pier two" if weight else "pier one": 20})
        assert client_ports(driver) == before            # one connection per host for all 18 switches
        app.nself("deploy.blue-green.rollback", "staging")
        assert measure(app, 20) == Counter({"pier one": 20})
    finally:
        counts = load.stop()
    assert counts["failed"] == 0 and counts["ok"] > 500, counts
    assert load.versions["pier two"] > 0 and load.versions["pier one"] > 0, load.versions
    assert all(slot_containers(h, "pier", "b" if stable == "a" else "a") == 0 for h in hosts)
    history = json.loads(app.nself("deploy.history", "staging", "--json").stdout)["deploys"]
    assert [(r["strategy"], r["result"]) for r in history] == [("rolling", "ok"), ("blue-green", "ok"),
                                                                ("rollback", "ok")]


def test_failing_canary_is_aborted_by_auto_analysis(tmp_path, hosts, local_podman):
    """A release answering 500 to one request in five: its analysis fails, `--auto` aborts,
    the stable release has all traffic again and the abort is in the audit log."""
    app = make_app(tmp_path, hosts, local_podman, "quarry", 8093)
    with (app.root / "nself.yml").open("a") as handle:
        handle.write("  canary:\n    analysis:\n      http: {success_rate: 0.95, min_requests: 30, window: 40, "
                     "interval: 1}\n")
    app.release("quarry one")
    app.nself("deploy.to", "staging")
    from nself.testing.containers import write_app
    write_app(app.root / "app", "quarry three", fail_every=5)
    from tests.deploy.test_ssh import git
    git(app.root, "add", "-A")
    git(app.root, "commit", "-qm", "failing")
    v3 = git(app.root, "rev-parse", "--short=12", "HEAD")
    load = Load(app)
    load.start()
    try:
        done = app.nself("deploy.canary", "staging", "--steps", "50,100", "--analysis", "http", "--auto",
                         check=False)
    finally:
        load.stop()
    assert done.returncode == 1 and "aborted" in done.stderr, done.stdout + done.stderr
    assert load.counts["status 500"] > 0                   # the canary did fail requests while it ran
    assert measure(app, 100) == Counter({"quarry one": 100})
    state = state_of(app)
    verdict = [a for a in state["analyses"] if a.get("analysis") == "http"][-1]
    assert state["phase"] == "aborted" and verdict["result"] == "failed" and verdict["success_rate"] < 0.95
    last = json.loads(app.nself("deploy.history", "staging", "--json").stdout)["deploys"][-1]
    assert (last["to"], last["strategy"], last["result"]) == (v3, "canary", "aborted")
    assert any(a.get("result") == "failed" for a in last["analyses"])


def test_sigkill_mid_walk_then_status_and_rollback(tmp_path, hosts, local_podman):
    """The walking command killed with SIGKILL during its pause: status still shows the step it
    reached, and rollback works (it takes over the lock the dead process left)."""
    app = make_app(tmp_path, hosts, local_podman, "orchard", 8094)
    app.release("orchard one")
    app.nself("deploy.to", "staging")
    v2 = app.release("orchard two")
    app.nself("deploy.build", "staging", "--release", v2)
    walker = subprocess.Popen([str(Path(sys.executable).parent / "nself"), "deploy.canary", "staging",
                               "--release", v2, "--skip-build", "--steps", "10,50,100", "--pause", "5m", "--auto"],
                              cwd=app.root, env=app.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            state = state_of(app)
            if state.get("weight") == 10:
                break
            time.sleep(1)
        else:
            raise AssertionError("the canary never reached 10%")
    finally:
        walker.send_signal(signal.SIGKILL)
        walker.wait(30)
    state = state_of(app)
    assert (state["release"], state["weight"], state["step"], state["phase"]) == (v2, 10, 1, "progressing")
    assert (app.path(hosts[0]) / ".deploy.lock").is_dir()            # the dead process's lock is still there
    assert "orchard two" in measure(app, 200)
    done = app.nself("deploy.canary.rollback", "staging")
    assert "taking it over" in done.stderr
    assert measure(app, 200) == Counter({"orchard one": 200})
    assert state_of(app)["phase"] == "aborted" and not (app.path(hosts[0]) / ".deploy.lock").exists()


def test_split_failing_nginx_check_reloads_nothing(tmp_path, hosts, local_podman):
    """A split config that fails `nginx -t` on one host (its access log path is a folder there)
    is swapped in nowhere: both hosts keep the split they had, the canary stays where it was."""
    app = make_app(tmp_path, hosts, local_podman, "meadow", 8095)
    app.release("meadow one")
    app.nself("deploy.to", "staging")
    app.release("meadow two")
    app.nself("deploy.canary", "staging", "--steps", "10,50")
    router = "/var/lib/nself-test/meadow/router"
    workers = {h.name: nginx_workers(h, router) for h in hosts}
    ssh(hosts[1], f"rm -f {router}/access.log && mkdir {router}/access.log")
    done = app.nself("deploy.canary.promote", "staging", check=False)
    assert done.returncode == 1 and "host2" in done.stderr and "nothing was reloaded" in done.stderr, done.stderr
    assert "access.log" in done.stderr                                  # nginx's own complaint
    assert 0.07 <= measure(app, 2000)["meadow two"] / 2000 <= 0.13       # still 10 % on both hosts
    assert state_of(app)["weight"] == 10
    for host in hosts:
        assert os.readlink(app.path(host) / "router" / "nginx.conf").startswith("canary-")
    assert {h.name: nginx_workers(h, router) for h in hosts} == workers    # a reload would start new workers
    ssh(hosts[1], f"rmdir {router}/access.log")
    app.nself("deploy.canary.rollback", "staging")
    assert measure(app, 200) == Counter({"meadow one": 200})
