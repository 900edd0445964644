"""`service NAME status --env ENV` on a Kubernetes environment: deploy.check's rows from the
test Kubernetes API after `k8s.apply`."""
from __future__ import annotations

from tests.services.test_enable import new_project

NS = "app-staging"


def test_status_on_a_kubernetes_environment_reads_the_workloads(nself, tmp_path, kube_api, kube_controller):
    root = new_project(nself, tmp_path, "mailpit=true")
    assert nself(["config", "set", "environments.staging.context", "test"], cwd=root).code == 0
    with kube_controller.running(NS):
        r = nself(["k8s.apply", "--env", "staging"], cwd=root)
        assert r.code == 0, r.err
    kube_controller.settle(NS)   # every workload's rollout finished, before asking
    r = nself(["service", "email", "status", "--env", "staging", "--json"], cwd=root)
    assert r.code == 0, r.out
    doc = r.json()
    assert (doc["running"], doc["healthy"]) == (True, True)
    assert [c["name"] for c in doc["containers"]] == ["Deployment"]

    with kube_controller.running(NS, ready=False):
        nself(["k8s.scale", "mailpit", "2", "--env", "staging"], cwd=root)
        r = nself(["service", "email", "status", "--env", "staging", "--json"], cwd=root)
    assert r.code == 4 and r.json()["running"] is False
