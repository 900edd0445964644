"""Kinds 1-3 of issue 21: storage lifecycle, data directories at a claim's root, one claim per
host folder. Objects are compared as data, in every environment."""
from pathlib import Path

import pytest

from conftest import copy_tree, make_project
from nself.k8s.convert import convert
from nself.k8s.settings import load_overlay
from nself.project import load_project

CASES = Path(__file__).resolve().parent.parent / "data" / "cases"
ENVS = ("local", "staging", "production")


def manifests(root, env="production"):
    project = load_project(root, env=env, process_env={})
    return convert(project, load_overlay(project, env))


def objects(m, kind):
    return {o["metadata"]["name"]: o for o in m.all() if o["kind"] == kind}


def claims_of(workload):
    return [v["persistentVolumeClaim"]["claimName"]
            for v in workload["spec"]["template"]["spec"].get("volumes", [])
            if "persistentVolumeClaim" in v]


def mounts(workload):
    return workload["spec"]["template"]["spec"]["containers"][0].get("volumeMounts", [])


@pytest.mark.parametrize("env", ENVS)
def test_a_deployment_on_a_readwriteonce_claim_is_one_pod_recreated(tmp_path, env):
    m = manifests(copy_tree(CASES / "rwo-pvc-replicas", tmp_path / "p"), env)
    deployments = objects(m, "Deployment")
    assert {n for n, d in deployments.items() if claims_of(d)} == {"nginx", "app"}
    for name in ("nginx", "app"):
        assert deployments[name]["spec"]["replicas"] == 1
        assert deployments[name]["spec"]["strategy"] == {"type": "Recreate"}
    scaled = {o["spec"]["scaleTargetRef"]["name"] for o in objects(m, "HorizontalPodAutoscaler").values()}
    assert scaled.isdisjoint({"nginx", "app"})
    assert set(objects(m, "PodDisruptionBudget")).isdisjoint({"nginx", "app"})


def test_a_stateless_deployment_still_scales_in_production(tmp_path):
    root = make_project(tmp_path / "p", "services:\n  web: {image: 'nginx:1.27', ports: ['80:80']}\n")
    m = manifests(root)
    assert objects(m, "Deployment")["web"]["spec"]["replicas"] == 2
    assert "strategy" not in objects(m, "Deployment")["web"]["spec"]
    assert objects(m, "HorizontalPodAutoscaler")["web"]["spec"]["minReplicas"] == 2


def test_an_explicit_replica_count_wins_over_the_environment(tmp_path):
    root = make_project(tmp_path / "p", "services:\n  web: {image: 'nginx:1.27', ports: ['80:80']}\n",
                        {"nself.yml": "kubernetes:\n  generate:\n    replicas:\n      web: 1\n"})
    m = manifests(root)
    assert objects(m, "Deployment")["web"]["spec"]["replicas"] == 1
    assert objects(m, "HorizontalPodAutoscaler") == {}
    assert objects(m, "PodDisruptionBudget") == {}


def test_asking_several_pods_on_a_readwriteonce_claim_gives_one_and_says_why(tmp_path):
    root = make_project(tmp_path / "p", """
        services:
          app: {image: 'app:1', deploy: {replicas: 3}, volumes: ['up:/srv']}
        volumes: {up: {}}
    """)
    m = manifests(root)
    assert objects(m, "Deployment")["app"]["spec"]["replicas"] == 1
    assert [w.code for w in m.warnings if w.service == "app"] == ["single-attach"]


def test_readwritemany_is_the_users_choice_and_scales(tmp_path):
    root = make_project(tmp_path / "p", """
        services:
          app: {image: 'app:1', ports: ['8000:8000'], volumes: ['up:/srv'],
                x-nself: {access_mode: ReadWriteMany}}
        volumes: {up: {}}
    """)
    m = manifests(root)
    assert objects(m, "PersistentVolumeClaim")["up"]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert objects(m, "Deployment")["app"]["spec"]["replicas"] == 2
    assert "app" in objects(m, "HorizontalPodAutoscaler")


@pytest.mark.parametrize("image, target, sub", [
    ("postgres:16", "/var/lib/postgresql/data", "data"),
    ("ghcr.io/immich-app/postgres:14-vectorchord0.4.3", "/var/lib/postgresql/data", "data"),
    ("mysql:8.0", "/var/lib/mysql", "data"),
    ("mariadb:11", "/var/lib/mysql", "data"),
    ("postgres:18", "/var/lib/postgresql", None),      # 18 keeps its data one level down itself
    ("redis:7", "/data", None),
])
@pytest.mark.parametrize("source", ["named", "./folder"])
def test_data_directories_live_below_the_claim_root(tmp_path, image, target, sub, source):
    volume = f"{'data' if source == 'named' else source}:{target}"
    root = make_project(tmp_path / "p", f"""
        services:
          db: {{image: '{image}', volumes: ['{volume}']}}
        volumes: {{data: {{}}}}
    """)
    m = manifests(root)
    db = objects(m, "StatefulSet")["db"]   # a datastore on a folder is as safe as on a volume
    mount = next(x for x in mounts(db) if x["mountPath"] == target)
    assert mount.get("subPath") == sub
    assert [c["metadata"]["name"] for c in db["spec"]["volumeClaimTemplates"]] == [mount["name"]]


def test_two_services_binding_one_folder_share_one_claim_on_one_node(tmp_path):
    root = make_project(tmp_path / "p", """
        services:
          web: {image: 'app:1', ports: ['8000:8000'], volumes: ['./media:/app/media']}
          worker: {image: 'app:1', volumes: ['./media/:/app/media']}
    """)
    m = manifests(root)
    assert list(objects(m, "PersistentVolumeClaim")) == ["web-media"]
    deployments = objects(m, "Deployment")
    assert claims_of(deployments["web"]) == claims_of(deployments["worker"]) == ["web-media"]
    near = deployments["worker"]["spec"]["template"]["spec"]["affinity"]["podAffinity"]
    assert near["requiredDuringSchedulingIgnoredDuringExecution"] == [{
        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "web",
                                          "app.kubernetes.io/instance": "p"}},
        "topologyKey": "kubernetes.io/hostname"}]
    assert ("worker", "shared-volume") in {(w.service, w.code) for w in m.warnings}


def test_different_mounts_never_produce_claims_with_one_name(tmp_path):
    root = make_project(tmp_path / "p", """
        services:
          mm:
            image: 'mm:9'
            volumes: ['./app/plugins:/p', './app/client/plugins:/cp', 'mm-plugins:/v']
        volumes: {mm-plugins: {}, mm_plugins: {}}
    """)
    m = manifests(root)
    names = [o["metadata"]["name"] for o in m.all() if o["kind"] == "PersistentVolumeClaim"]
    assert len(names) == len(set(names)) == 3
    assert sorted(claims_of(objects(m, "Deployment")["mm"])) == sorted(names)
