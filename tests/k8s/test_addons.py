"""k8s.ingress.* and k8s.mesh.*: install plans run by the real helm (3 and 4) up to the cluster,
status/list/inject against the test Kubernetes API."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nself.k8s.cluster import Cluster
from tests.conftest import make_project

NS = "shop"
CLOSED = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: gone, context: {cluster: c, user: u}}]
current-context: gone
"""


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "shop", "services:\n  web:\n    image: nginx:1.27\n",
                        {"nself.yml": f"environments:\n  production:\n    context: test\n    namespace: {NS}\n"})


def _deployment(name: str, namespace: str, template: dict | None = None) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels, **(template or {})},
                                  "spec": {"containers": [{"name": name, "image": "example/app:1"}]}}}}


def _create(*objects: dict) -> None:
    cluster = Cluster()
    for obj in objects:
        if obj["kind"] == "Namespace":
            cluster.apply(obj, None)
        else:
            cluster.apply(obj, obj["metadata"].get("namespace"))


def _namespaces(*names: str) -> list[dict]:
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in names]


def test_install_plans_pin_official_charts(project, nself):
    shown = nself(["--env", "production", "k8s", "ingress", "install", "nginx", "--dry-run", "--json"], cwd=project)
    assert shown.code == 0, shown.err
    [step] = shown.json()["plan"]["steps"]
    assert step["argv"] == ["helm", "upgrade", "--install", "ingress-nginx", "ingress-nginx", "--namespace",
                            "ingress-nginx", "--create-namespace", "--wait", "--timeout", "300s", "--kube-context",
                            "test", "--repo", "https://kubernetes.github.io/ingress-nginx", "--version", "4.14.1"]
    gateway = nself(["k8s.ingress.install", "istio-gateway", "--dry-run", "--json"], cwd=project).json()["plan"]
    assert [s["argv"][3:5] + s["argv"][-2:] for s in gateway["steps"]] == [
        ["istio-base", "base", "--version", "1.24.3"], ["istiod", "istiod", "--version", "1.24.3"],
        ["istio-ingress", "gateway", "--version", "1.24.3"]]
    contour = nself(["k8s.ingress.install", "contour", "--dry-run"], cwd=project)
    assert "oci://registry-1.docker.io/bitnamicharts/contour --namespace projectcontour" in contour.out
    assert "--repo" not in contour.out


def test_linkerd_needs_its_identity_files(project, nself, tmp_path):
    missing = nself(["k8s.mesh.install", "linkerd", "--dry-run", "--json"], cwd=project)
    assert missing.code == 2 and "--identity-dir" in missing.json()["error"]
    folder = tmp_path / "identity"
    folder.mkdir()
    (folder / "ca.crt").write_text("x")
    partial = nself(["k8s.mesh.install", "linkerd", "--identity-dir", str(folder), "--dry-run"], cwd=project)
    assert partial.code == 2 and "issuer.crt, issuer.key" in partial.err
    (folder / "issuer.crt").write_text("x")
    (folder / "issuer.key").write_text("secret key bytes")
    plan = nself(["k8s.mesh.install", "linkerd", "--identity-dir", str(folder), "--dry-run", "--json"],
                 cwd=project).json()["plan"]
    crds, control = plan["steps"]
    assert crds["argv"][3:5] == ["linkerd-crds", "linkerd-crds"]
    assert f"identity.issuer.tls.keyPEM={folder / 'issuer.key'}" in control["argv"]
    assert "secret key bytes" not in str(plan)


@pytest.mark.parametrize("helm", ["helm", "helm4"])
@pytest.mark.parametrize("args", [["k8s.ingress.install", n] for n in ("nginx", "traefik", "kong", "istio-gateway")]
                         + [["k8s.mesh.install", "istio"]])
def test_real_helm_accepts_every_command_line(project, nself, tmp_path, monkeypatch, helm, args):
    """helm parses the whole command line before it looks for the cluster (an unknown flag would
    fail first): every planned command gets as far as the (closed) cluster, on Helm 3 and 4."""
    binary = shutil.which(helm)
    assert binary, f"{helm} is needed (`.ci/run` installs it)"
    config = tmp_path / "closed"
    config.write_text(CLOSED)
    monkeypatch.setenv("NSELF_HELM", binary)
    result = nself([*args, "--kubeconfig", str(config), "--context", "gone", "--json"], cwd=project)
    assert result.code == 9, result.out
    assert "unreachable" in result.json()["error"].lower() and "unknown flag" not in result.out


def test_unknown_controller_or_mesh_is_exit_2_with_did_you_mean(project, nself):
    bad = nself(["k8s.ingress.install", "traefic", "--json"], cwd=project)
    assert bad.code == 2 and bad.json()["hint"].startswith("did you mean traefik?")
    assert nself(["k8s.mesh.install", "consul"], cwd=project).code == 2


def test_ingress_status_and_list_read_the_cluster(project, nself, kube_api, kube_controller):
    _create(*_namespaces("ingress-nginx", NS, "other"),
            _deployment("ingress-nginx-controller", "ingress-nginx"),
            {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
             "metadata": {"name": "nginx", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
             "spec": {"controller": "k8s.io/ingress-nginx"}},
            {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": NS},
             "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["shop.example.com"], "secretName": "tls"}],
                      "rules": [{"host": "shop.example.com", "http": {"paths": [
                          {"path": "/", "pathType": "Prefix",
                           "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                          {"path": "/api", "pathType": "Prefix",
                           "backend": {"service": {"name": "api", "port": {"name": "http"}}}}]}}]}},
            {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
             "metadata": {"name": "admin", "namespace": "other"},
             "spec": {"rules": [{"host": "admin.example.com", "http": {"paths": [
                 {"path": "/", "pathType": "Prefix",
                  "backend": {"service": {"name": "admin", "port": {"number": 8080}}}}]}}]}})
    kube_controller.settle("ingress-nginx", ready=False)
    status = nself(["--env", "production", "k8s.ingress.status", "--json"], cwd=project)
    assert status.code == 0, status.err
    rows = {r["controller"]: r for r in status.json()["controllers"]}
    assert rows["nginx"]["state"] == "not ready" and rows["nginx"]["ingress_class"] == "nginx"
    assert rows["nginx"]["default"]
    assert rows["traefik"]["state"] == "not installed" and rows["traefik"]["ingress_class"] is None
    kube_controller.settle("ingress-nginx")
    rows = {r["controller"]: r for r in nself(["--env", "production", "k8s.ingress.status", "--json"],
                                              cwd=project).json()["controllers"]}
    assert rows["nginx"]["state"] == "ready" and rows["nginx"]["workloads"][0]["ready"] == 1
    listed = nself(["--env", "production", "k8s.ingress.list", "--json"], cwd=project).json()["rules"]
    assert [(r["ingress"], r["path"], r["service"], r["tls"], r["class"]) for r in listed] == [
        ("web", "/", "web:80", True, "nginx"), ("web", "/api", "api:http", True, "nginx")]
    everywhere = nself(["--env", "production", "k8s.ingress.list", "--all-namespaces", "--json"], cwd=project)
    assert {r["namespace"] for r in everywhere.json()["rules"]} == {NS, "other"}
    text = nself(["--env", "production", "k8s", "ingress", "list"], cwd=project)
    assert "shop.example.com" in text.out and "api:http" in text.out


def test_mesh_status_and_inject_set_the_documented_switch(project, nself, kube_api, kube_controller):
    _create(*_namespaces("istio-system", NS), _deployment("istiod", "istio-system"), _deployment("web", NS),
            _deployment("api", NS, {"annotations": {"linkerd.io/inject": "enabled"}}))
    kube_controller.settle("istio-system")
    status = nself(["--env", "production", "k8s.mesh.status", "--json"], cwd=project).json()
    assert {m["mesh"]: m["state"] for m in status["meshes"]} == {"istio": "ready", "linkerd": "not installed"}
    assert status["injected"] == [{"workload": "api", "kind": "Deployment", "mesh": "linkerd"}]
    shown = nself(["--env", "production", "k8s.mesh.inject", "web", "--dry-run", "--json"], cwd=project)
    assert shown.json()["plan"]["steps"][0]["body"] == {
        "spec": {"template": {"metadata": {"labels": {"sidecar.istio.io/inject": "true"}}}}}
    assert "sidecar.istio.io/inject" not in str(kube_api.objects("Deployment", NS))     # dry run: unchanged
    done = nself(["--env", "production", "k8s", "mesh", "inject", "web", "--json"], cwd=project)
    assert done.code == 0, done.err
    assert done.json()["mesh"] == "istio"
    web = next(d for d in kube_api.objects("Deployment", NS) if d["metadata"]["name"] == "web")
    assert web["spec"]["template"]["metadata"]["labels"] == {"app": "web", "sidecar.istio.io/inject": "true"}
    linkerd = nself(["--env", "production", "k8s.mesh.inject", "web", "--mesh", "linkerd"], cwd=project)
    assert linkerd.code == 0
    web = next(d for d in kube_api.objects("Deployment", NS) if d["metadata"]["name"] == "web")
    assert web["spec"]["template"]["metadata"]["annotations"] == {"linkerd.io/inject": "enabled"}
    missing = nself(["--env", "production", "k8s.mesh.inject", "nope", "--json"], cwd=project)
    assert missing.code == 9 and "nope" in missing.json()["error"]


def test_inject_without_an_installed_mesh_asks_which(project, nself, kube_api):
    _create(*_namespaces(NS), _deployment("web", NS))
    result = nself(["--env", "production", "k8s.mesh.inject", "web", "--json"], cwd=project)
    assert result.code == 2 and "no service mesh is installed" in result.json()["error"]
    assert Path(project).is_dir()
