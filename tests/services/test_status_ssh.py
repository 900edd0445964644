"""`service NAME status --env ENV` on an SSH environment: through deploy.check over the
executor, on a real sshd host (here: one where nothing is deployed yet)."""
from __future__ import annotations

from tests.services.test_enable import new_project


def test_status_on_an_ssh_environment_asks_the_hosts(nself, tmp_path, ssh_hosts):
    host, = ssh_hosts(1)
    root = new_project(nself, tmp_path, "mailpit=true")
    assert nself(["config", "set", "environments.staging.hosts", "[host1]"], cwd=root).code == 0
    assert nself(["config", "set", "environments.staging.path", "/var/lib/nself-test/svc"], cwd=root).code == 0
    r = nself(["cloud.servers.add", "host1", "--host", "127.0.0.1", "--port", str(host.port),
               "--key", str(host.user_key), "--trust-new"], cwd=root)
    assert r.code == 0, r.err
    r = nself(["service", "email", "status", "--env", "staging", "--json"], cwd=root)
    assert r.code == 4, r.err
    doc = r.json()
    assert doc["environment"] == "staging" and doc["running"] is False
    assert doc["containers"] == [{"name": "host1", "state": "nothing deployed", "running": False, "healthy": False}]

    host.remove()   # a host that does not answer is a network error, not "not running"
    r = nself(["service", "email", "status", "--env", "staging"], cwd=root)
    assert r.code == 6, r.err
