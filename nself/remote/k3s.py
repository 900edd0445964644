"""k3s over SSH as plans, following the official installer's conventions: its script piped to
`sh -s -` with `INSTALL_K3S_EXEC`, `INSTALL_K3S_VERSION`, `K3S_URL`, and the join token from the
server's node-token file (handed to the agent as a 0600 file, `K3S_TOKEN_FILE`, never on a
command line). Builders are pure; `--dry-run` prints the exact steps, and the tasks run the same
steps through `nself.remote.executor` (with sudo when the inventory says so)."""
from __future__ import annotations

from nself.plan import Plan, Step, put, run, shell

NODE_TOKEN = "/var/lib/rancher/k3s/server/node-token"
KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
TOKEN_FILE = "/etc/rancher/nself-join-token"
INSTALLED = "command -v k3s >/dev/null 2>&1 && k3s --version | head -n1 || true"
UNINSTALL = ("if [ -x /usr/local/bin/k3s-agent-uninstall.sh ]; then /usr/local/bin/k3s-agent-uninstall.sh; "
             "elif [ -x /usr/local/bin/k3s-uninstall.sh ]; then /usr/local/bin/k3s-uninstall.sh; "
             "else echo 'k3s is not installed'; fi")
# The installer's variables go through `env` so that sudo covers the whole pipe, and the URL is
# an argument of the script, never spliced into it.
_PIPE = 'curl -sfL "$1" | sh -s -'


def probe(host: str) -> Step:
    """Prints k3s's version when it is installed, nothing otherwise (a read: it changes nothing)."""
    return shell("check whether k3s is installed", INSTALLED, on=host)


def install_step(host: str, installer: str, role: str, *, version: str | None = None,
                 server_url: str | None = None, tls_san: str | None = None,
                 token_file: str | None = None) -> Step:
    exec_args = role + (f" --tls-san {tls_san}" if tls_san and role == "server" else "")
    env = [f"INSTALL_K3S_EXEC={exec_args}"]
    if version:
        env.append(f"INSTALL_K3S_VERSION={version}")
    if server_url:
        env.append(f"K3S_URL={server_url}")
    if token_file:
        env.append(f"K3S_TOKEN_FILE={token_file}")
    what = f"k3s {version or '(stable)'} as {'an agent' if role == 'agent' else 'a server'}"
    return run(f"install {what}", "env", *env, "sh", "-c", _PIPE, "sh", installer, on=host)


def install_plan(host: str, address: str, installer: str, role: str, version: str | None = None) -> Plan:
    """[probe, install]: the install runs only when the probe finds no k3s."""
    return Plan(f"install k3s on {host}", [probe(host), install_step(host, installer, role, version=version,
                                                                    tls_san=address)])


def join_plan(leader: str, leader_address: str, agent: str, installer: str, version: str | None = None,
              token: str | None = None) -> Plan:
    """[read the token on the leader, probe the agent, its token file, install as an agent]. The
    token is read when the plan runs; give it to fill the token file."""
    url = f"https://{leader_address}:6443"
    return Plan(f"join {agent} to {leader}", [
        run("read the join token", "cat", NODE_TOKEN, on=leader),
        probe(agent),
        run("make the token's folder", "mkdir", "-p", TOKEN_FILE.rsplit("/", 1)[0], on=agent),
        put("write the join token", TOKEN_FILE, token, on=agent, mode=0o600),
        install_step(agent, installer, "agent", version=version, server_url=url, token_file=TOKEN_FILE)])


def kubeconfig_plan(host: str, context: str, kubeconfig: str) -> Plan:
    """[read k3s.yaml on the host, merge it into the local kubeconfig as `context`]."""
    return Plan(f"fetch the kubeconfig of {host}", [
        run("read the cluster's kubeconfig", "cat", KUBECONFIG, on=host),
        put(f"merge it as context {context} (the old file kept as .nself-backup)", kubeconfig, None, mode=0o600)])


def upgrade_plan(host: str, address: str, installer: str, role: str, version: str) -> Plan:
    return Plan(f"upgrade k3s on {host}", [install_step(host, installer, role, version=version, tls_san=address)])


def uninstall_plan(host: str) -> Plan:
    return Plan(f"uninstall k3s from {host}", [shell("run the k3s uninstall script", UNINSTALL, on=host)])


def kubeconfig_for(text: str, host: str, context: str) -> dict:
    """k3s.yaml with the server address (it says 127.0.0.1) pointed at the host, renamed to `context`."""
    from nself.k8s import kubeconfig

    return kubeconfig.entries(text, context, host=host)
