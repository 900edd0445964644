"""Every plan nself builds, built on a machine with nothing: no helm, no kubectl, no ssh on PATH,
no NSELF_HELM, no kubeconfig, no network. Builders are pure, so this must work, and the exact
argv and steps are what a dry run shows and what execution runs."""
import json

import pytest

from nself.errors import Exit
from nself.helm import binary
from nself.k8s import operations as ops
from nself.k8s.resources import BY_KIND
from nself.providers import plans
from nself.providers.base import Cluster, ClusterRequest, ProvisionRequest, Size
from nself.remote import k3s, operations, releases
from nself.remote.executor import command_plans
from nself.remote.inventory import Server


def never():
    raise AssertionError("a builder called what only a runner may call")


@pytest.fixture(autouse=True)
def bare_machine(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("NSELF_HELM", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("HETZNER", "DIGITALOCEAN"):
        monkeypatch.delenv(f"NSELF_{name}_API_URL", raising=False)


def test_helm_family():
    step = binary.install("acme", "charts/acme", "acme", ["charts/acme/values.yaml"], [], "secretValues: {}",
                          atomic=True, upgrade=True, context="prod")
    assert step.argv == ("helm", "upgrade", "--install", "acme", "charts/acme", "--namespace", "acme",
                         "--create-namespace", "--values", "charts/acme/values.yaml", "--values", "-", "--wait",
                         "--atomic", "--kube-context", "prod")
    assert step.data == "secretValues: {}" and step.to_dict()["data"] == "(16 bytes, not shown)"
    assert binary.lint("c", [], True, None).argv == ("helm", "lint", "c", "--strict")
    assert binary.template("r", "c", "ns", [], ["a=1"], None, "out").argv == (
        "helm", "template", "r", "c", "--namespace", "ns", "--set", "a=1", "--output-dir", "out")
    assert binary.repo("list").argv == ("helm", "repo", "list", "--output", "json")


def test_k3s():
    plan = k3s.install_plan("web1", "203.0.113.10", "https://get.k3s.io", "server", "v1.31.4+k3s1")
    assert [s.on for s in plan.steps] == ["web1", "web1"]
    assert plan.steps[1].argv == ("env", "INSTALL_K3S_EXEC=server --tls-san 203.0.113.10",
                                  "INSTALL_K3S_VERSION=v1.31.4+k3s1", "sh", "-c", 'curl -sfL "$1" | sh -s -', "sh",
                                  "https://get.k3s.io")
    join = k3s.join_plan("web1", "203.0.113.10", "web2", "https://get.k3s.io")
    assert [(s.on, s.kind) for s in join.steps] == [("web1", "run"), ("web2", "run"), ("web2", "run"),
                                                    ("web2", "put"), ("web2", "run")]
    assert join.steps[4].argv[1:4] == ("INSTALL_K3S_EXEC=agent", "K3S_URL=https://203.0.113.10:6443",
                                       "K3S_TOKEN_FILE=/etc/rancher/nself-join-token")
    assert k3s.kubeconfig_plan("web1", "k3s-web1", "/k/config").steps[0].argv == ("cat", "/etc/rancher/k3s/k3s.yaml")
    assert k3s.upgrade_plan("web2", "a", "i", "agent", "v2").steps[0].argv[1:3] == ("INSTALL_K3S_EXEC=agent",
                                                                                  "INSTALL_K3S_VERSION=v2")
    assert k3s.uninstall_plan("web2").steps[0].argv == ("sh", "-c", k3s.UNINSTALL)


def test_releases():
    plan = releases.deploy_plan("web1", "/srv/app", "r7", {"compose.yaml": b"x", "conf/app.env": b"A=1\n"})
    assert [s.display() for s in plan.steps] == [
        "mkdir -p /srv/app/releases /srv/app/shared",
        "rm -rf /srv/app/releases/.r7.partial",
        "mkdir -p /srv/app/releases/.r7.partial",
        "put 1 bytes → /srv/app/releases/.r7.partial/compose.yaml",
        "mkdir -p /srv/app/releases/.r7.partial/conf",
        "put 4 bytes → /srv/app/releases/.r7.partial/conf/app.env",
        "sh -c 'test ! -e \"$2\" && mv \"$1\" \"$2\"' sh /srv/app/releases/.r7.partial /srv/app/releases/r7",
        "ln -sfn releases/r7 /srv/app/.current.nself",
        "mv -Tf /srv/app/.current.nself /srv/app/current"]
    assert {s.on for s in plan.steps} == {"web1"}


def test_reboot_exec_and_provider_steps():
    server = Server("web1", "203.0.113.10", sudo=True)
    assert operations.reboot_plan(server).steps[0].argv == ("sh", "-c", operations.REBOOT)
    api = plans.reboot_step("hetzner", "web1", "42", "fsn1", never)
    assert api.to_dict() == {"summary": "reboot web1 through the hetzner API", "kind": "http", "on": "local",
                             "method": "POST", "url": "https://api.hetzner.cloud/v1",
                             "body": {"id": "42", "action": "reboot"}}
    assert operations.reboot_plan(server, api).steps == [api]
    exec_plans = command_plans([server, Server("web2", "h")], "uptime")
    assert {n: p.steps[0].argv for n, p in exec_plans.items()} == {"web1": ("sh", "-c", "uptime"),
                                                                   "web2": ("sh", "-c", "uptime")}


def test_provision_and_managed_kubernetes():
    size = Size("cx32", 4, 8, 80, 6.8, "EUR")
    request = ProvisionRequest("web1", "fsn1", "cx32", "ubuntu-24.04", "ssh-ed25519 AAAA", "#cloud-config\n")
    step, = plans.provision_plan("hetzner", request, size, "aa:bb", never).steps
    assert step.to_dict() == {
        "summary": "create web1: hetzner cx32 (4 vCPU, 8 GB, 6.80 EUR/month) in fsn1", "kind": "http", "on": "local",
        "method": "POST", "url": "https://api.hetzner.cloud/v1",
        "body": {"name": "web1", "region": "fsn1", "size": "cx32", "vcpu": 4, "ram_gb": 8, "image": "ubuntu-24.04",
                 "ssh_key": "aa:bb"},
        "data": "(14 bytes, not shown)"}                       # the cloud-init user data
    assert step.error_code == Exit.PROVIDER
    gone, = plans.destroy_plan("digitalocean", "web1", "7", "203.0.113.10", None, never).steps
    assert (gone.spec["method"], gone.spec["url"]) == ("DELETE", "https://api.digitalocean.com/v2")
    made, = plans.cluster_create_plan("digitalocean", ClusterRequest("k", "fra1", "1.31", "s-2vcpu-4gb", 3),
                                      Size("s-2vcpu-4gb", 2, 4, 80, 24.0), never).steps
    assert made.spec["body"] == {"name": "k", "region": "fra1", "version": "1.31", "size": "s-2vcpu-4gb", "nodes": 3}
    deleted, = plans.cluster_delete_plan("digitalocean", Cluster("c1", "k", "running", "fra1"), never).steps
    assert deleted.spec == {"method": "DELETE", "url": "https://api.digitalocean.com/v2", "body": {"id": "c1"}}


def test_k8s_apply():
    objects = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "acme"}},
               {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "acme"}}]
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "acme"},
              "stringData": {"PASSWORD": "hunter2-secret"}}
    plan = ops.apply_plan("acme", objects, [secret], never,
                          [(BY_KIND[("apps/v1", "Deployment")], "web"), (BY_KIND[("v1", "Service")], "old")])
    assert [s.display() for s in plan.steps] == ["apply Namespace/acme", "apply acme/Secret/db",
                                                 "apply acme/Deployment/web", "delete acme/Service/old"]
    assert plan.steps[1].to_dict()["data"].endswith("bytes, not shown)")
    assert "hunter2" not in json.dumps(plan.to_json()) + "\n".join(plan.show())


def test_cli_dry_runs_need_no_tools(stack, nself):
    assert nself(["helm.init"], cwd=stack).code == 0
    r = nself(["helm.install", "--dry-run", "--atomic", "--json"], cwd=stack)
    assert r.code == 0, r.err
    step, = r.json()["plan"]["steps"]
    assert step["argv"][:2] == ["helm", "install"] and step["argv"][-2:] == ["--wait", "--atomic"]
    r = nself(["helm.push", "--registry", "oci://127.0.0.1:1/charts", "--dry-run", "--json"], cwd=stack)
    assert r.code == 0, r.err
    package, push = r.json()["plan"]["steps"]
    assert push["argv"] == ["helm", "push", package["argv"][4] + "/acme-1.0.0.tgz", "oci://127.0.0.1:1/charts"]
    assert not (stack / "dist").exists()                            # a dry run writes nothing
    r = nself(["k8s.apply", "--dry-run"], cwd=stack)
    assert r.code == 0, r.err
    assert r.out.startswith("Plan: apply ") and "apply acme-local/Secret/postgres-secrets" in r.out
    assert nself(["helm.install", "--atomic"], cwd=stack).code == 127      # running it does need helm
