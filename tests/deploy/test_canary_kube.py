"""Canary and blue-green on Kubernetes through the nself CLI, against the test Kubernetes API
(nself.testing.kube) with the controller stand-in settling rollouts, and a Prometheus over
real HTTP (nself.testing.prometheus) for the analysis."""
from __future__ import annotations

import json
import shutil

import pytest

from conftest import make_project

NS = "shop"
REPO = "127.0.0.1:5000/shop/web"
DIGEST = {v: "sha256:" + c * 64 for v, c in (("v1", "a"), ("v2", "b"), ("v3", "c"))}
COMPOSE = """\
    name: shop
    services:
      web:
        image: 127.0.0.1:5000/shop/web:latest
        ports: ["80:80"]
      worker:
        image: busybox:1.36
        command: ["sleep", "infinity"]
"""
NSELF_YML = """\
version: '1'
project: {name: shop}
environments:
  production: {namespace: shop, context: test}
kubernetes:
  generate: {ingress: %s, replicas: {default: 1, web: 4}}
deploy:
  timeout: 20
%s"""
CANARY = "nginx.ingress.kubernetes.io/canary"
WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


def write_settings(root, ingress="nginx", deploy_extra=""):
    (root / "nself.yml").write_text(NSELF_YML % (ingress, deploy_extra))


@pytest.fixture
def project(tmp_path, kube_api):
    """A web service (4 pods, public) and a worker, with releases v1..v3 recorded by digest."""
    root = make_project(tmp_path / "shop", COMPOSE)
    write_settings(root)
    images = root / ".nself" / "state" / "images"
    images.mkdir(parents=True)
    for release, digest in DIGEST.items():
        (images / f"{release}.json").write_text(json.dumps({"web": f"{REPO}@{digest}"}))
    return root


@pytest.fixture
def cli(nself, project, kube_controller):
    def run(*argv, cwd=None, ready=True):
        with kube_controller.running(NS, ready=ready):
            return nself(list(argv), cwd=cwd or project)
    return run


@pytest.fixture
def stable(cli):
    """v1 deployed the rolling way: what a canary runs beside."""
    r = cli("deploy.to", "production", "--release", "v1", "--skip-build")
    assert r.code == 0, r.err


def named(kube_api, kind, name):
    return next((o for o in kube_api.objects(kind, NS) if o["metadata"]["name"] == name), None)


def image(deployment):
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def test_smoke(stable, cli, kube_api):
    r = cli("deploy.canary", "production", "--release", "v2", "--skip-build", "--steps", "10,50,100")
    print(r.out, r.err)
    assert r.code == 0, r.err
    print([o["metadata"]["name"] for o in kube_api.objects("Deployment", NS)])
    print(named(kube_api, "Ingress", "web-canary"))
    r = cli("deploy.canary.promote", "production")
    print(r.out, r.err)
    assert r.code == 0, r.err
    print(named(kube_api, "Ingress", "web-canary")["metadata"]["annotations"], named(kube_api, "Deployment", "web-canary")["spec"]["replicas"])
    r = cli("deploy.canary.promote", "production")
    print(r.out, r.err)
    assert r.code == 0, r.err
    print([o["metadata"]["name"] for o in kube_api.objects("Deployment", NS)], image(named(kube_api, "Deployment", "web")))
