"""deploy.build with a registry: a real podman build, a push to a real OCI registry (Debian's
docker-registry on loopback), and the release's image recorded by the digest the registry holds."""
from __future__ import annotations

import json

import pytest
import requests

from nself.testing import containers
from tests.conftest import make_project

MANIFESTS = ", ".join(["application/vnd.oci.image.manifest.v1+json",
                       "application/vnd.docker.distribution.manifest.v2+json"])


@pytest.fixture
def podman_env(tmp_path, monkeypatch):
    env = containers.local_env(tmp_path / "podman")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
    containers.reset_local(env)


def test_build_pushes_and_records_the_registry_digest(tmp_path, nself, oci_registry, podman_env):
    root = make_project(tmp_path / "shop", "services:\n  web:\n    build: ./web\n    ports: ['8080:8080']\n", {
        "nself.yml": f"environments:\n  staging:\n    hosts: [web1]\ndeploy:\n  registry: {oci_registry}\n",
        ".nself/servers.yml": "servers:\n  web1: {host: 127.0.0.1, port: 9}\n"})
    containers.write_app(root / "web", "v1")
    result = nself(["deploy.build", "staging", "--release", "r1", "--json"], cwd=root)
    assert result.code == 0, result.err
    ref = result.json()["images"]["web"]
    repository, _, digest = ref.partition("@")
    assert repository == f"{oci_registry}/shop/web" and digest.startswith("sha256:")
    answer = requests.head(f"http://{oci_registry}/v2/shop/web/manifests/r1", headers={"Accept": MANIFESTS},
                           timeout=10)
    assert answer.status_code == 200 and answer.headers["Docker-Content-Digest"] == digest
    recorded = json.loads((root / ".nself" / "state" / "images" / "r1.json").read_text())
    assert recorded == {"web": ref}                     # what deploy.to --skip-build and promote reuse
