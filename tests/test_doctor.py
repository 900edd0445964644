"""`nself doctor` through the CLI, each check made to fail for real: a PATH without helm, a
server missing from known_hosts, a broken nself.yml, an unreachable cluster, missing
credentials and key files — against a real sshd host and the test Kubernetes API."""
from __future__ import annotations

import os
import time

import pytest

from nself.remote import inventory
from nself.remote.connection import trust
from nself.remote.inventory import Server
from tests.conftest import make_project

COMPOSE = "services:\n  web:\n    image: nginx:1.27\n"
K8S = "environments:\n  production:\n    context: test\n  staging:\n    hosts: [host1]\n"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty HOME (no ~/.ssh, no credentials file), so only the project decides."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("HCLOUD_TOKEN", raising=False)
    monkeypatch.delenv("NSELF_HETZNER_TOKEN", raising=False)
    return path


@pytest.fixture
def project(tmp_path, home, ssh_hosts, kube_api):
    """A project with a Kubernetes environment (the test API) and one real sshd host, trusted."""
    host = ssh_hosts(1)[0]
    root = make_project(tmp_path / "app", COMPOSE, {"nself.yml": K8S})
    server = Server("host1", host.address, host.port, "root", str(host.user_key), provider="hetzner")
    inventory.save(root, {"host1": server})
    trust(root, server, {"host1": server})
    return root


def _checks(result) -> dict:
    return {c["name"]: c for c in result.json()["checks"]}


def test_a_machine_with_everything_passes(project, nself, monkeypatch):
    monkeypatch.setenv("HCLOUD_TOKEN", "tok-Very-Secret-123")
    result = nself(["doctor", "--json"], cwd=project)
    assert result.code == 0, result.out
    checks = _checks(result)
    assert all(c["ok"] for c in checks.values()), checks
    assert {"python", "nself.yml", "helm", "kubectl", "ssh keys", "known_hosts host1", "credentials hetzner",
            "cluster production"} <= set(checks)
    assert checks["helm"]["required"] and checks["cluster production"]["detail"].startswith("test answers")
    assert "tok-Very-Secret-123" not in result.out + result.err
    text = nself(["doctor"], cwd=project)
    assert text.code == 0 and "credentials hetzner" in text.out and "tok-Very" not in text.out


def test_a_path_without_helm_fails_where_kubernetes_is_used(project, nself, monkeypatch, tmp_path):
    monkeypatch.setenv("HCLOUD_TOKEN", "x")
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "kubectl").symlink_to(__import__("shutil").which("kubectl"))
    monkeypatch.setenv("PATH", str(bare))
    monkeypatch.delenv("NSELF_HELM", raising=False)
    result = nself(["doctor", "--json"], cwd=project)
    assert result.code == 1
    helm = _checks(result)["helm"]
    assert not helm["ok"] and helm["required"] and "helm.sh" in helm["fix"]
    # the same machine, a project without Kubernetes: helm is optional, the doctor passes
    (project / "nself.yml").write_text("environments:\n  staging:\n    hosts: [host1]\n")
    relaxed = nself(["doctor", "--json"], cwd=project)
    assert relaxed.code == 0 and not _checks(relaxed)["helm"]["required"]


def test_a_server_missing_from_known_hosts_fails_with_the_trust_command(project, nself, monkeypatch):
    monkeypatch.setenv("HCLOUD_TOKEN", "x")
    (project / ".nself" / "known_hosts").unlink()
    result = nself(["doctor", "--json"], cwd=project)
    assert result.code == 1
    check = _checks(result)["known_hosts host1"]
    assert not check["ok"] and "--trust-new" in check["fix"] and "cloud.servers.add host1" in check["fix"]


def test_missing_credentials_and_key_files_fail(project, nself):
    servers = inventory.load(project)
    servers["host2"] = Server("host2", "127.0.0.1", 1, key=str(project / "no-such-key"))
    inventory.save(project, servers)
    result = nself(["doctor", "--json"], cwd=project)
    assert result.code == 1
    checks = _checks(result)
    assert not checks["credentials hetzner"]["ok"] and "HCLOUD_TOKEN" in checks["credentials hetzner"]["fix"]
    assert not checks["ssh keys"]["ok"] and "no-such-key" in checks["ssh keys"]["detail"]
    assert not checks["known_hosts host2"]["ok"]


def test_a_broken_nself_yml_fails_and_the_other_checks_still_run(project, nself):
    (project / "nself.yml").write_text(K8S + "projekt:\n  name: app\n")      # parses, but is not valid
    result = nself(["doctor", "--json"], cwd=project)
    assert result.code == 1
    checks = _checks(result)
    assert not checks["nself.yml"]["ok"] and "projekt" in checks["nself.yml"]["detail"]
    assert checks["python"]["ok"] and "helm" in checks


def test_an_unreachable_cluster_fails_within_its_deadline(project, nself, monkeypatch, tmp_path):
    import socket

    monkeypatch.setenv("HCLOUD_TOKEN", "x")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "closed.kubeconfig"
    config.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: test, context: {{cluster: c, user: u}}}}]
current-context: test
""")
    monkeypatch.setenv("KUBECONFIG", str(config))
    started = time.monotonic()
    result = nself(["doctor", "--json"], cwd=project)
    assert time.monotonic() - started < 30
    assert result.code == 1
    check = _checks(result)["cluster production"]
    assert not check["ok"] and check["required"] and str(port) in check["detail"]
    assert os.environ["KUBECONFIG"] == str(config)
