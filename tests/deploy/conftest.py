"""The podman hosts the ssh deploy tests share (test_ssh.py, test_canary_ssh.py): two networked
sshd hosts running podman and nginx, and this machine's podman on its own storage, started once
per test session (a host pair costs ~20 s to start and to remove; the image layers built on
this machine are cached for every later build).

Tests keep apart by their own project name, folder and ports; after each test `_reset_hosts`
waits until nothing is still being started on the hosts, then removes every container, volume,
router nginx and project folder it left, so the next one starts from hosts as new (ports free,
no load, no earlier deploy's state) without new hosts."""
from __future__ import annotations

import pytest

from nself.testing.containers import local_env, reset_local, reset_podman_host, start_podman_hosts, stop_podman_hosts


@pytest.fixture(scope="session")
def hosts(tmp_path_factory):
    started = start_podman_hosts(tmp_path_factory.mktemp("podman-hosts"), 2)
    yield started
    stop_podman_hosts(started)


@pytest.fixture(scope="session")
def local_podman(tmp_path_factory):
    """This machine's podman, on its own storage (builds and `podman save`)."""
    env = local_env(tmp_path_factory.mktemp("local-podman"))
    yield env
    reset_local(env)


@pytest.fixture(autouse=True)
def _reset_hosts(request):
    """After a test that used the hosts: nothing left on them (`reset_podman_host`)."""
    yield
    if "hosts" in request.fixturenames:
        for host in request.getfixturevalue("hosts"):
            reset_podman_host(host)
