"""k3s install → join → kubeconfig over real sshd hosts in their own mount namespaces, with a
recording installer served on 127.0.0.1 (the real k3s cannot be downloaded here)."""
from pathlib import Path

import pytest
import yaml

from tests.conftest import serve_folder

RECORDING_INSTALLER = r"""#!/bin/sh
# Stands in for get.k3s.io: records what it was asked, and lays out what k3s would.
set -e
mkdir -p /var/lib/rancher/k3s/server /etc/rancher/k3s /usr/local/bin
role=${INSTALL_K3S_EXEC%% *}
{ echo "role=$role"; echo "exec=$INSTALL_K3S_EXEC"; echo "version=${INSTALL_K3S_VERSION:-stable}";
  echo "url=${K3S_URL:-}"; echo "token=$( [ -n "$K3S_TOKEN_FILE" ] && cat "$K3S_TOKEN_FILE" )"; } \
  >> /var/lib/rancher/k3s/installs.log
printf '#!/bin/sh\necho "k3s version %s (recorded)"\n' "${INSTALL_K3S_VERSION:-v1.31.4+k3s1}" > /usr/local/bin/k3s
chmod +x /usr/local/bin/k3s
if [ "$role" = server ]; then
  echo "K10abcdef0123456789::server:5ecret5ecret5ecret" > /var/lib/rancher/k3s/server/node-token
  printf '%s\n' 'apiVersion: v1' 'kind: Config' \
    'clusters: [{name: default, cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: Q0E=}}]' \
    'users: [{name: default, user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}}]' \
    'contexts: [{name: default, context: {cluster: default, user: default}}]' \
    'current-context: default' > /etc/rancher/k3s/k3s.yaml
  printf '#!/bin/sh\nrm -f /usr/local/bin/k3s*\necho removed server\n' > /usr/local/bin/k3s-uninstall.sh
  chmod +x /usr/local/bin/k3s-uninstall.sh
else
  printf '#!/bin/sh\nrm -f /usr/local/bin/k3s*\necho removed agent\n' > /usr/local/bin/k3s-agent-uninstall.sh
  chmod +x /usr/local/bin/k3s-agent-uninstall.sh
fi
"""


@pytest.fixture
def installer(tmp_path):
    folder = tmp_path / "installer"
    folder.mkdir()
    (folder / "install.sh").write_text(RECORDING_INSTALLER)

    with serve_folder(folder) as url:
        yield f"{url}/install.sh"


@pytest.fixture
def cluster_hosts(tmp_path, ssh_hosts, nself, installer):
    project = tmp_path / "app"
    project.mkdir()
    (project / "compose.yaml").write_text("services: {web: {image: 'nginx:1.27'}}\n")
    hosts = ssh_hosts(2, isolated=True)
    for name, host in zip(("leader", "worker"), hosts):
        r = nself(["cloud.servers.add", name, "--host", "127.0.0.1", "--port", str(host.port), "--key",
                   str(host.user_key), "--trust-new"], cwd=project)
        assert r.code == 0, r.err
    env = {"NSELF_K8S_K3S_INSTALLER": installer, "KUBECONFIG": str(tmp_path / "kube" / "config")}
    return project, dict(zip(("leader", "worker"), hosts)), env


def _log(host) -> str:
    return (host.folder / "layers" / "var_lib" / "rancher" / "k3s" / "installs.log").read_text()


def test_install_join_kubeconfig_uninstall(cluster_hosts, nself):
    project, hosts, env = cluster_hosts
    r = nself(["k8s.k3s.install", "--host", "leader", "--server"], cwd=project, env=env)
    assert r.code == 0, r.err
    assert "role=server" in _log(hosts["leader"]) and "exec=server --tls-san 127.0.0.1" in _log(hosts["leader"])
    r = nself(["k8s.k3s.install", "--host", "leader"], cwd=project, env=env)
    assert r.code == 0 and "already installed" in r.out and _log(hosts["leader"]).count("role=") == 1
    r = nself(["k8s.k3s.join", "leader", "--host", "worker"], cwd=project, env=env)
    assert r.code == 0, r.err
    log = _log(hosts["worker"])
    assert "role=agent" in log and "url=https://127.0.0.1:6443" in log
    assert "token=K10abcdef0123456789::server:5ecret5ecret5ecret" in log       # the server's node-token
    assert "5ecret5ecret5ecret" not in r.out + r.err
    token_file = hosts["worker"].folder / "layers" / "etc" / "rancher" / "nself-join-token"
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    r = nself(["k8s.k3s.kubeconfig", "--host", "leader"], cwd=project, env=env)
    assert r.code == 0, r.err
    config = yaml.safe_load(Path(env["KUBECONFIG"]).read_text())
    assert config["current-context"] == "k3s-leader"
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert "S0VZ" not in r.out                                      # the client key stays out of output
    r = nself(["k8s.k3s.uninstall", "--host", "worker", "--yes"], cwd=project, env=env)
    assert r.code == 0 and r.out.strip().endswith("removed agent")
    assert not Path("/usr/local/bin/k3s").exists()                   # nothing landed on this machine
    assert not Path("/etc/rancher/nself-join-token").exists()


def test_plans_show_the_exact_remote_steps(cluster_hosts, nself):
    project, _, env = cluster_hosts
    installer = env["NSELF_K8S_K3S_INSTALLER"]
    r = nself(["k8s.k3s.install", "--host", "leader", "--version", "v1.31.4+k3s1", "--dry-run", "--json"],
              cwd=project, env=env)
    probe, setup = r.json()["plan"]["steps"]
    assert probe["on"] == "leader" and probe["argv"][:2] == ["sh", "-c"]
    assert setup["argv"] == ["env", "INSTALL_K3S_EXEC=server --tls-san 127.0.0.1", "INSTALL_K3S_VERSION=v1.31.4+k3s1",
                             "sh", "-c", 'curl -sfL "$1" | sh -s -', "sh", installer]
    r = nself(["k8s.k3s.join", "leader", "--host", "worker", "--dry-run", "--json"], cwd=project, env=env)
    steps = r.json()["plan"]["steps"]
    assert [(s["on"], s["kind"]) for s in steps] == [("leader", "run"), ("worker", "run"), ("worker", "run"),
                                                     ("worker", "put"), ("worker", "run")]
    assert steps[0]["argv"] == ["cat", "/var/lib/rancher/k3s/server/node-token"]
    assert steps[3]["path"] == "/etc/rancher/nself-join-token" and steps[3]["mode"] == 0o600
    assert "K3S_URL=https://127.0.0.1:6443" in steps[4]["argv"]
    assert "K3S_TOKEN_FILE=/etc/rancher/nself-join-token" in steps[4]["argv"]
    r = nself(["k8s.k3s.uninstall", "--host", "worker", "--dry-run"], cwd=project, env=env)
    assert r.code == 0 and "[worker] run the k3s uninstall script" in r.out
    assert nself(["k8s.k3s.install", "--host", "nope"], cwd=project, env=env).code == 2
