"""Servers over real sshd hosts on 127.0.0.1: inventory, strict host keys, parallel exec."""
import json

import pytest
import yaml


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "app"
    root.mkdir()
    (root / "compose.yaml").write_text("services: {web: {image: 'nginx:1.27'}}\n")
    return root


def add(nself, project, host, name=None, *extra):
    return nself(["cloud.servers.add", name or host.name, "--host", "127.0.0.1", "--port", str(host.port),
                  "--key", str(host.user_key), *extra], cwd=project)


def test_add_records_the_server_and_its_host_key(nself, project, ssh_hosts):
    host, = ssh_hosts(1)
    r = add(nself, project, host)
    assert r.code == 7 and "not known" in r.err and "--trust-new" in r.err
    assert not (project / ".nself/servers.yml").exists()          # nothing half-written
    r = add(nself, project, host, None, "--trust-new", "--roles", "web,db")
    assert r.code == 0, r.err
    assert "SHA256:" in r.out
    inventory = yaml.safe_load((project / ".nself/servers.yml").read_text())
    assert inventory["servers"]["host1"]["roles"] == ["web", "db"]
    known = (project / ".nself/known_hosts").read_text()
    assert f"[127.0.0.1]:{host.port} ssh-ed25519 " in known
    rows = nself(["cloud.servers.list", "--json"], cwd=project).json()
    assert [(r["name"], r["port"]) for r in rows] == [("host1", host.port)]
    assert add(nself, project, host, None, "--trust-new").code == 1           # exists: --force
    assert nself(["cloud.servers.remove", "host1"], cwd=project).code == 0
    assert nself(["cloud.servers.list", "--json"], cwd=project).json() == []


def test_parallel_exec_with_one_failing_host(nself, project, ssh_hosts):
    hosts = ssh_hosts(8)
    for host in hosts:
        assert add(nself, project, host, None, "--trust-new").code == 0
    failing = hosts[3]
    command = f'[ "${{SSH_CONNECTION##* }}" != {failing.port} ] && echo ok'
    r = nself(["cloud.servers.exec", "--parallel", "4", "--json", "--", "sh", "-c", command], cwd=project)
    assert r.code == 1
    results = {row["host"]: row for row in json.loads(r.out)}
    assert results[failing.name]["exit_code"] == 1
    assert all(row["exit_code"] == 0 and row["stdout"] == "ok\n"
               for name, row in results.items() if name != failing.name)
    assert "1 of 8 host(s) failed" in r.err and f"{failing.name}: exit 1" in r.err
    r = nself(["cloud.servers.exec", "--hosts", "host1,host2", "--", "echo", "hi"], cwd=project)
    assert r.code == 0 and "host1 | hi" in r.out and "host2 | hi" in r.out and "host3" not in r.out


def test_roles_select_hosts(nself, project, ssh_hosts):
    web, db = ssh_hosts(2)
    add(nself, project, web, "web1", "--trust-new", "--roles", "web")
    add(nself, project, db, "db1", "--trust-new", "--roles", "db")
    r = nself(["cloud.servers.exec", "--roles", "db", "--json", "--", "true"], cwd=project)
    assert [row["host"] for row in json.loads(r.out)] == ["db1"]
    r = nself(["cloud.servers.exec", "--roles", "db", "--dry-run", "--json", "--", "touch", "/x"],
              cwd=project)
    assert r.json() == {"plan": [{"title": "run on db1", "steps": [{
        "summary": "run the command", "kind": "run", "on": "db1", "argv": ["sh", "-c", "touch /x"],
        "may_fail": True}]}]}
    assert nself(["cloud.servers.exec", "--roles", "cache", "--", "true"], cwd=project).code == 2
    assert nself(["cloud.servers.exec", "--hosts", "nope", "--", "true"], cwd=project).code == 2


def test_changed_host_key_is_refused(nself, project, ssh_hosts):
    host, = ssh_hosts(1)
    add(nself, project, host, None, "--trust-new")
    host.new_host_key()
    r = nself(["cloud.servers.exec", "--", "true"], cwd=project)
    assert r.code == 7 and "CHANGED" in r.err
    r = add(nself, project, host, None, "--trust-new", "--force")
    assert r.code == 7 and "CHANGED" in r.err                 # --trust-new does not paper over it


def test_a_host_whose_key_was_removed_is_refused_and_runs_nothing(nself, project, ssh_hosts, tmp_path):
    host, = ssh_hosts(1)
    assert add(nself, project, host, None, "--trust-new").code == 0
    marker = tmp_path / "ran"
    assert nself(["cloud.servers.exec", "--", "touch", str(marker)], cwd=project).code == 0
    assert marker.exists()                                    # the known key lets the command run
    marker.unlink()
    (project / ".nself/known_hosts").write_text("")           # the key is no longer known
    r = nself(["cloud.servers.exec", "--", "touch", str(marker)], cwd=project)
    assert r.code == 7 and f"host1: the host key of 127.0.0.1:{host.port} is unknown" in r.err
    assert not marker.exists()                                # strict: nothing ran on the host


def test_unreachable_host_is_exit_6(nself, project, ssh_hosts):
    host, = ssh_hosts(1)
    add(nself, project, host, None, "--trust-new")
    host.stop()
    r = nself(["cloud.servers.exec", "--", "true"], cwd=project)
    assert r.code == 6 and "unreachable" in r.err and "To fix" in r.err
    r = nself(["cloud.servers.add", "x", "--host", "127.0.0.1", "--port", str(host.port), "--trust-new"],
              cwd=project)
    assert r.code == 6


def test_a_server_that_is_not_ssh_is_exit_6_without_a_traceback(project):
    """An HTTP server on the SSH port: paramiko's transport thread logs a traceback of its own."""
    import os
    import socket
    import subprocess
    import sys
    import threading
    from pathlib import Path

    listener = socket.create_server(("127.0.0.1", 0))

    def answer_http():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            conn.close()
    threading.Thread(target=answer_http, daemon=True).start()
    nself_bin = Path(sys.executable).with_name("nself")
    try:
        r = subprocess.run([str(nself_bin), "cloud.servers.add", "web", "--host", "127.0.0.1", "--port",
                            str(listener.getsockname()[1]), "--trust-new"], cwd=project, timeout=60,
                           capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    finally:
        listener.close()
    assert r.returncode == 6 and "no SSH server answered" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "Exception (client)" not in r.stderr, r.stderr


def test_status_and_ssh_command(nself, project, ssh_hosts):
    host, = ssh_hosts(1)
    add(nself, project, host, None, "--trust-new")
    rows = nself(["cloud.servers.status", "--json"], cwd=project).json()
    assert rows[0]["reachable"] and rows[0]["uptime"].endswith("m") and rows[0]["disk"].endswith("%")
    assert rows[0]["runtime"]
    r = nself(["cloud.servers.ssh", "host1", "--dry-run", "--json"], cwd=project)
    argv = r.json()["plan"]["steps"][0]["argv"]
    assert argv[:3] == ["ssh", "-p", str(host.port)] and "StrictHostKeyChecking=yes" in argv
    assert argv[-1] == "root@127.0.0.1"


def test_reboot_is_a_plan_in_dry_run(nself, project, ssh_hosts):
    host, = ssh_hosts(1)
    add(nself, project, host, None, "--trust-new")
    r = nself(["cloud.servers.reboot", "host1", "--dry-run", "--json"], cwd=project)
    assert r.code == 0, r.err
    step, = r.json()["plan"]["steps"]
    assert step["on"] == "host1" and step["argv"] == ["sh", "-c", "nohup sh -c 'sleep 1; reboot' >/dev/null 2>&1 &"]


def test_bad_inventory_is_a_configuration_error(nself, project):
    (project / ".nself").mkdir()
    (project / ".nself/servers.yml").write_text("servers:\n  web: {hots: 1.2.3.4}\n")
    r = nself(["cloud.servers.list"], cwd=project)
    assert r.code == 3 and "unknown key(s) hots" in r.err


def test_sudo_with_a_password_and_no_terminal(nself, project, ssh_hosts):
    host, = ssh_hosts(1, isolated=True)          # the new user and sudoers stay on this host
    add(nself, project, host, "admin", "--trust-new")
    key = (host.user_key.parent / (host.user_key.name + ".pub")).read_text().strip()
    setup = ("useradd -M -d /nonexistent -s /bin/sh deploy && echo 'deploy:s3cret-pw-1' | chpasswd && "
             "echo 'deploy ALL=(ALL) ALL' > /etc/sudoers.d/deploy && chmod 440 /etc/sudoers.d/deploy && "
             f"mkdir -p /etc/nself-test-keys && echo '{key}' > /etc/nself-test-keys/deploy && "
             "chmod 644 /etc/nself-test-keys/deploy")
    assert nself(["cloud.servers.exec", "--hosts", "admin", "--", "sh", "-c", setup], cwd=project).code == 0
    r = nself(["cloud.servers.add", "app", "--host", "127.0.0.1", "--port", str(host.port), "--user", "deploy",
               "--key", str(host.user_key), "--sudo"], cwd=project)
    assert r.code == 0, r.err                                   # the host key is known already
    r = nself(["cloud.servers.exec", "--hosts", "app", "--json", "--", "whoami"], cwd=project,
              env={"NSELF_SUDO_PASSWORD": "s3cret-pw-1"})
    assert r.code == 0, r.err
    assert json.loads(r.out)[0]["stdout"].strip().endswith("root")
    assert "s3cret-pw-1" not in r.out + r.err
    r = nself(["cloud.servers.exec", "--hosts", "app", "--", "whoami"], cwd=project)   # no password
    assert r.code != 0
    assert not __import__("pathlib").Path("/etc/sudoers.d/deploy").exists()


def test_hosts_with_their_own_addresses(nself, project, ssh_hosts):
    hosts = ssh_hosts(2, networked=True)
    for host in hosts:
        assert host.address.startswith("10.213.")
        r = nself(["cloud.servers.add", host.name, "--host", host.address, "--key", str(host.user_key),
                   "--trust-new"], cwd=project)
        assert r.code == 0, r.err
    r = nself(["cloud.servers.exec", "--json", "--", "sh", "-c", "ip -4 -o addr show | grep -c 10.213"],
              cwd=project)
    assert r.code == 0, r.err
    assert [row["stdout"].strip() for row in json.loads(r.out)] == ["1", "1"]
    known = (project / ".nself/known_hosts").read_text()
    assert f"{hosts[0].address} ssh-ed25519" in known          # port 22: the plain host form


def test_reboot_waits_until_the_host_is_back(nself, project, ssh_hosts):
    host, = ssh_hosts(1, isolated=True)
    add(nself, project, host, None, "--trust-new")
    r = nself(["cloud.servers.exec", "--json", "--", "sh", "-c", "command -v reboot"], cwd=project)
    assert json.loads(r.out)[0]["stdout"].strip() == "/usr/local/sbin/reboot"   # the host's own, never ours
    r = nself(["cloud.servers.reboot", "host1", "--yes", "--timeout", "60", "--json"], cwd=project)
    assert r.code == 0, r.err
    assert r.json()["back_after"] > 1
    assert nself(["cloud.servers.exec", "--", "true"], cwd=project).code == 0


def test_jump_host(nself, project, ssh_hosts):
    bastion, = ssh_hosts(1)
    inner, = ssh_hosts(1, networked=True)
    add(nself, project, bastion, "bastion", "--trust-new")
    r = nself(["cloud.servers.add", "inner", "--host", inner.address, "--key", str(inner.user_key),
               "--jump", "bastion", "--trust-new"], cwd=project)
    assert r.code == 0, r.err
    r = nself(["cloud.servers.exec", "--hosts", "inner", "--json", "--", "sh", "-c", "echo $SSH_CONNECTION"],
              cwd=project)
    assert r.code == 0, r.err
    assert json.loads(r.out)[0]["stdout"].split()[0].startswith("10.213.")
    inventory = yaml.safe_load((project / ".nself/servers.yml").read_text())
    assert inventory["servers"]["inner"]["jump"] == "bastion"
    bastion.stop()                                     # without the bastion, the inner host is out of reach
    r = nself(["cloud.servers.exec", "--hosts", "inner", "--", "true"], cwd=project)
    assert r.code == 6 and "bastion" in r.err


def test_logs_commands():
    from nself.remote.operations import logs_command

    assert logs_command(None, False, 50) == "journalctl --no-pager -n 50"
    assert logs_command("web", True) == "$( (command -v podman || command -v docker) ) logs --tail 200 -f web"
    assert logs_command("a;b", False).endswith("logs --tail 200 'a;b'")
