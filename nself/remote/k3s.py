"""k3s over SSH, following the official installer's conventions: `curl -sfL <installer> | sh -s -`
with `INSTALL_K3S_EXEC`, `INSTALL_K3S_VERSION`, `K3S_URL`, and the join token from the server's
node-token file (handed to the agent as a 0600 file, `K3S_TOKEN_FILE`, never on a command line).
Every remote command is built here as a string, so `--dry-run` prints exactly what would run."""
from __future__ import annotations

import shlex


NODE_TOKEN = "/var/lib/rancher/k3s/server/node-token"
KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
TOKEN_FILE = "/etc/rancher/nself-join-token"
INSTALLED = "command -v k3s >/dev/null 2>&1 && k3s --version | head -n1 || true"
UNINSTALL = ("if [ -x /usr/local/bin/k3s-agent-uninstall.sh ]; then /usr/local/bin/k3s-agent-uninstall.sh; "
             "elif [ -x /usr/local/bin/k3s-uninstall.sh ]; then /usr/local/bin/k3s-uninstall.sh; "
             "else echo 'k3s is not installed'; fi")


def install_command(installer: str, role: str, *, version: str | None = None, server_url: str | None = None,
                    tls_san: str | None = None, token_file: str | None = None) -> str:
    exec_args = role + (f" --tls-san {tls_san}" if tls_san and role == "server" else "")
    env = [f"INSTALL_K3S_EXEC={shlex.quote(exec_args)}"]
    if version:
        env.append(f"INSTALL_K3S_VERSION={shlex.quote(version)}")
    if server_url:
        env.append(f"K3S_URL={shlex.quote(server_url)}")
    if token_file:
        env.append(f"K3S_TOKEN_FILE={shlex.quote(token_file)}")
    return f"curl -sfL {shlex.quote(installer)} | {' '.join(env)} sh -s -"


def kubeconfig_for(text: str, host: str, context: str) -> dict:
    """k3s.yaml with the server address (it says 127.0.0.1) pointed at the host, renamed to `context`."""
    from nself.k8s import kubeconfig

    return kubeconfig.entries(text, context, host=host)
