"""Atomic puts and the release layout, over a real sshd host."""
import io
import json
from contextlib import contextmanager

import pytest

from nself.errors import NselfError
from nself.plan import StepFailed
from nself.remote import releases
from nself.remote.connection import connect, open_checked, trust
from nself.remote.executor import HostRunner
from nself.remote.files import get, put
from nself.remote.inventory import Server


@contextmanager
def opened(root, server, **kw):
    conn = connect(root, server, **kw)
    open_checked(conn, server)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def server(ssh_hosts, tmp_path):
    host, = ssh_hosts(1)
    server = Server(host.name, "127.0.0.1", host.port, "root", str(host.user_key))
    root = tmp_path / "project"
    root.mkdir()
    trust(root, server)
    return root, server


@pytest.fixture
def connection(server):
    with opened(*server) as conn:
        yield conn


@pytest.fixture
def runner(server, connection):
    return HostRunner(connection, server[1])


class Exploding(io.BytesIO):
    """A source that fails half-way through, like a dropped connection."""

    def read(self, size=-1):
        data = super().read(8)
        if self.tell() > 16:
            raise ConnectionResetError("connection dropped")
        return data


def test_put_is_atomic(connection, tmp_path):
    target = str(tmp_path / "remote" / "app.conf")
    (tmp_path / "remote").mkdir()
    put(connection, b"version 1\n", target, mode=0o600)
    assert get(connection, target) == b"version 1\n"
    assert oct((tmp_path / "remote" / "app.conf").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(ConnectionResetError):
        put(connection, Exploding(b"version 2 is a much longer file\n" * 10), target)
    assert get(connection, target) == b"version 1\n"             # the old file, intact
    assert [p.name for p in (tmp_path / "remote").iterdir()] == ["app.conf"]   # no temp left
    with pytest.raises(NselfError, match="does not exist"):
        get(connection, str(tmp_path / "remote" / "missing"))


def test_release_rotation_and_rollback(runner, tmp_path):
    base, host = str(tmp_path / "srv" / "acme"), runner.server.name
    for number in range(1, 6):
        report = releases.deploy(runner, host, base, f"2026112{number}", {"compose.yaml": f"v{number}\n".encode(),
                                                                          "conf/app.env": b"A=1\n"}, keep=3)
    names, current = releases.releases(runner, host, base)
    assert names == ["20261123", "20261124", "20261125"] and current == "20261125"
    assert report["removed"] == ["20261122"]
    assert (tmp_path / "srv/acme/current/compose.yaml").read_text() == "v5\n"
    assert (tmp_path / "srv/acme/current/conf/app.env").read_text() == "A=1\n"
    assert (tmp_path / "srv/acme/shared").is_dir()
    assert releases.rollback(runner, host, base) == {"from": "20261125", "to": "20261124"}
    assert (tmp_path / "srv/acme/current/compose.yaml").read_text() == "v4\n"
    assert releases.rollback(runner, host, base, "20261125")["to"] == "20261125"
    with pytest.raises(NselfError, match="no release"):
        releases.rollback(runner, host, base, "1999")
    with pytest.raises(NselfError, match="invalid release id"):
        releases.deploy(runner, host, base, "../evil", {})
    with pytest.raises(NselfError, match="exists"):
        releases.deploy(runner, host, base, "20261125", {})


def test_switch_steps_are_atomic_renames():
    link, switch = releases.activate_steps("web1", "/srv/app", "r1")
    assert link.argv == ("ln", "-sfn", "releases/r1", "/srv/app/.current.nself") and link.on == "web1"
    assert switch.argv == ("mv", "-Tf", "/srv/app/.current.nself", "/srv/app/current")
    plan = releases.deploy_plan("web1", "/srv/app", "r1", {"conf/app.env": b"SECRET=x\n"})
    assert [s.kind for s in plan.steps] == ["run", "run", "run", "run", "put", "run", "run", "run"]
    assert "SECRET" not in json.dumps(plan.to_json()) + "\n".join(plan.show())


def test_releases_honour_sudo(ssh_hosts, tmp_path):
    """A non-root user with sudo (a password, no terminal) deploys into a folder only root may write."""
    host, = ssh_hosts(1, isolated=True)            # the user, sudoers and /var/lib/app stay on this host
    root = tmp_path / "project"
    root.mkdir()
    admin = Server("admin", "127.0.0.1", host.port, "root", str(host.user_key))
    trust(root, admin)
    key = (host.user_key.parent / (host.user_key.name + ".pub")).read_text().strip()
    with opened(root, admin) as conn:
        conn.run("useradd -M -d /nonexistent -s /bin/sh deploy && echo 'deploy:s3cret-pw-2' | chpasswd && "
                 "echo 'deploy ALL=(ALL) ALL' > /etc/sudoers.d/deploy && chmod 440 /etc/sudoers.d/deploy && "
                 f"mkdir -p /etc/nself-test-keys /var/lib/app && echo '{key}' > /etc/nself-test-keys/deploy && "
                 "chmod 644 /etc/nself-test-keys/deploy && chmod 755 /var/lib/app", hide=True, in_stream=False)
    files = {"compose.yaml": b"services: {}\n"}
    plain = Server("app", "127.0.0.1", host.port, "deploy", str(host.user_key))
    with opened(root, plain) as conn, pytest.raises(StepFailed) as refused:
        releases.deploy(HostRunner(conn, plain), "app", "/var/lib/app", "r1", files)
    assert "Permission denied" in refused.value.message             # without sudo: root's folder is closed
    sudo = Server("app", "127.0.0.1", host.port, "deploy", str(host.user_key), sudo=True)
    with opened(root, sudo, sudo_password="s3cret-pw-2") as conn:
        runner = HostRunner(conn, sudo)
        assert releases.deploy(runner, "app", "/var/lib/app", "r1", files) == {"release": "r1", "removed": []}
        assert releases.releases(runner, "app", "/var/lib/app") == (["r1"], "r1")
    layer = host.folder / "layers" / "var_lib" / "app"
    uploaded = layer / "releases" / "r1" / "compose.yaml"
    assert uploaded.read_bytes() == b"services: {}\n" and uploaded.stat().st_uid == 0   # written by root
    assert oct(uploaded.stat().st_mode & 0o777) == "0o644"
    assert (layer / "current").resolve() == (layer / "releases" / "r1").resolve()
