"""pytest fixtures for nself and for projects testing their own tasks.

    pytest_plugins = ["nself.testing.plugin"]

    def test_my_deploy(kube_api, kube_controller, monkeypatch): ...
"""
from __future__ import annotations

import pytest

from nself.testing.controller import Controller
from nself.testing.kube import KubeServer


@pytest.fixture
def kube_api(tmp_path, monkeypatch):
    """A fresh Kubernetes API server on 127.0.0.1, with KUBECONFIG pointing at it."""
    server = KubeServer()
    monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig(tmp_path / "kube" / "config")))
    yield server
    server.stop()


@pytest.fixture
def kube_controller(kube_api):
    """Plays the controllers: `kube_controller.settle(namespace)` finishes rollouts."""
    return Controller(kube_api.url)


@pytest.fixture
def prometheus():
    """A Prometheus query API on 127.0.0.1 (`.url`), fed with `.observe(namespace, service, status, seconds)`."""
    from nself.testing.prometheus import FakePrometheus

    server = FakePrometheus()
    yield server
    server.stop()


@pytest.fixture
def ssh_hosts(tmp_path):
    """Start real sshd hosts: `ssh_hosts(3)` → [Host(name, port, user_key, …), …];
    `ssh_hosts(2, isolated=True)`: hosts in their own mount namespace (for installs, reboots);
    `ssh_hosts(2, networked=True)`: also their own network namespace and address."""
    from nself.testing.sshd import start_hosts

    started = []

    def make(count: int = 1, isolated: bool = False, networked: bool = False):
        hosts = start_hosts(tmp_path / f"ssh{len(started)}", count, isolated=isolated, networked=networked)
        started.extend(hosts)
        return hosts
    yield make
    for host in started:
        host.remove()


@pytest.fixture
def podman_hosts(tmp_path):
    """Networked sshd hosts that run podman (runc, cgroupfs, storage in the host's folder),
    podman-compose and nginx: `podman_hosts(2)` → [Host, …]; containers and nginx are
    stopped afterwards. Needs root, podman, runc, nginx and podman-compose (the test extra)."""
    from nself.testing.containers import start_podman_hosts, stop_podman_hosts

    started = []

    def make(count: int = 2):
        hosts = start_podman_hosts(tmp_path / f"podman{len(started)}", count)
        started.extend(hosts)
        return hosts
    yield make
    stop_podman_hosts(started)


@pytest.fixture
def cloud_fake():
    """Start a provider's fake API: `cloud_fake("hetzner", specs)` → a FakeCloud; `.env()` gives
    the variables that point nself at it. Requests are checked against the provider's spec, and
    the test fails at teardown if any request or answer broke it (a test that provokes a
    violation on purpose asserts it and clears `fake.violations`)."""
    from nself.testing.clouds import FAKES

    started = []

    def make(name: str, specs):
        fake = FAKES[name](specs)
        started.append(fake)
        return fake
    yield make
    for fake in started:
        fake.stop()
    broken = [f"{type(fake).__name__}: {v}" for fake in started for v in fake.violations]
    if broken:
        pytest.fail("requests or answers broke the provider's API description:\n" + "\n".join(broken))
