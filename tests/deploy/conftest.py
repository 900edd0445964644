"""The podman hosts the ssh deploy tests share (test_ssh.py, test_canary_ssh.py): two networked
sshd hosts running podman and nginx, and this machine's podman on its own storage, started once
per test session (a host pair costs ~20 s to start and to remove; the image layers built on
this machine are cached for every later build).

Tests keep apart by their own project name, folder and ports; after each test `_reset_hosts`
removes every container and stops every router nginx it left, so the next one starts from
hosts that run nothing (ports free, no load) without new hosts."""
from __future__ import annotations

import pytest

from nself.testing.containers import local_env, reset_local, ssh, start_podman_hosts, stop_podman_hosts

# Every container, and every nginx a test's router started (their pid files are under the
# project folders the tests use, /var/lib/nself-test/<name>/router/nginx.pid).
RESET = ("podman rm -af -t 0 >/dev/null 2>&1; "
         "for pid in /var/lib/nself-test/*/router/nginx.pid; do [ -s \"$pid\" ] && kill $(cat \"$pid\") 2>/dev/null; "
         "done; true")


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
    """After a test that used the hosts: nothing left running on them."""
    yield
    if "hosts" in request.fixturenames:
        for host in request.getfixturevalue("hosts"):
            ssh(host, RESET, check=False)
