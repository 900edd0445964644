"""User patches that survive regeneration (issue 21 kind 10): `k8s/patches/<env>/` and
`k8s/patches/all/` are the user's; the overlays include them last."""
import shutil
import subprocess

import pytest
import yaml

from conftest import make_project

COMPOSE = """
    name: shop
    services:
      web: {image: "nginx:1.27", ports: ["80:80"]}
      worker: {image: "shop/worker:1"}
"""
PRODUCTION_PATCH = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
        - name: web
          resources: {limits: {memory: 3Gi}}
"""
ALL_PATCH = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker, annotations: {team: payments}}
"""


def rendered(overlay):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.fail("kubectl is needed (PATH=/work/main/.ci/bin:$PATH, or .ci/run installs it)")
    out = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout) if d}


def web_memory(docs):
    return docs["Deployment", "web"]["spec"]["template"]["spec"]["containers"][0]["resources"][
        "limits"]["memory"]


def test_user_patches_reach_their_overlays_and_survive_regeneration(tmp_path, nself):
    root = make_project(tmp_path / "shop", COMPOSE)
    assert nself(["k8s.generate"], cwd=root).code == 0
    before = web_memory(rendered(root / "k8s/overlays/production"))
    (root / "k8s/patches/production").mkdir(parents=True)
    (root / "k8s/patches/production/web-memory.yaml").write_text(PRODUCTION_PATCH)
    (root / "k8s/patches/all").mkdir(parents=True)
    (root / "k8s/patches/all/owner.yaml").write_text(ALL_PATCH)
    r = nself(["k8s.generate"], cwd=root)
    assert r.code == 0, r.err
    production = rendered(root / "k8s/overlays/production")
    assert before != "3Gi" and web_memory(production) == "3Gi"
    assert production["Deployment", "worker"]["metadata"]["annotations"] == {"team": "payments"}
    staging = rendered(root / "k8s/overlays/staging")
    assert web_memory(staging) != "3Gi"
    assert staging["Deployment", "worker"]["metadata"]["annotations"] == {"team": "payments"}
    r = nself(["k8s.generate", "--force"], cwd=root)   # even --force leaves the user's files
    assert r.code == 0, r.err
    assert (root / "k8s/patches/production/web-memory.yaml").read_text() == PRODUCTION_PATCH
    assert web_memory(rendered(root / "k8s/overlays/production")) == "3Gi"


def test_a_patch_for_an_object_that_does_not_exist_is_refused(tmp_path, nself):
    root = make_project(tmp_path / "shop", COMPOSE)
    (root / "k8s/patches/staging").mkdir(parents=True)
    (root / "k8s/patches/staging/x.yaml").write_text(PRODUCTION_PATCH.replace("name: web}", "name: api}"))
    r = nself(["k8s.generate"], cwd=root)
    assert r.code == 3 and "staging has no Deployment 'api'" in r.err
    (root / "k8s/patches/staging/x.yaml").write_text("- just a list\n")
    r = nself(["k8s.generate"], cwd=root)
    assert r.code == 3 and "needs kind and metadata.name" in r.err
