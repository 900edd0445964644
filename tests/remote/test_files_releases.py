"""Atomic puts and the release layout, over a real sshd host."""
import io

import pytest

from nself.errors import NselfError
from nself.remote import releases
from nself.remote.connection import connect, open_checked, trust
from nself.remote.files import get, put
from nself.remote.inventory import Server


@pytest.fixture
def connection(ssh_hosts, tmp_path):
    host, = ssh_hosts(1)
    server = Server(host.name, "127.0.0.1", host.port, "root", str(host.user_key))
    root = tmp_path / "project"
    root.mkdir()
    trust(root, server)
    conn = connect(root, server)
    open_checked(conn, server)
    yield conn
    conn.close()


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


def test_release_rotation_and_rollback(connection, tmp_path):
    base = str(tmp_path / "srv" / "acme")
    for number in range(1, 6):
        report = releases.deploy(connection, base, f"2026112{number}", {"compose.yaml": f"v{number}\n".encode(),
                                                                         "conf/app.env": b"A=1\n"}, keep=3)
    names, current = releases.releases(connection, base)
    assert names == ["20261123", "20261124", "20261125"] and current == "20261125"
    assert report["removed"] == ["20261122"]
    assert (tmp_path / "srv/acme/current/compose.yaml").read_text() == "v5\n"
    assert (tmp_path / "srv/acme/shared").is_dir()
    assert releases.rollback(connection, base) == {"from": "20261125", "to": "20261124"}
    assert (tmp_path / "srv/acme/current/compose.yaml").read_text() == "v4\n"
    assert releases.rollback(connection, base, "20261125")["to"] == "20261125"
    with pytest.raises(NselfError, match="no release"):
        releases.rollback(connection, base, "1999")
    with pytest.raises(NselfError, match="invalid release id"):
        releases.deploy(connection, base, "../evil", {})


def test_switch_commands_are_atomic_renames():
    assert releases.activate_command("/srv/app", "r1") == \
        "ln -sfn releases/r1 /srv/app/.current.nself && mv -Tf /srv/app/.current.nself /srv/app/current"
