"""sync.db with a Kubernetes environment: pg_dump/pg_restore through `kubectl exec` into the
service's pod. The test Kubernetes API runs no pods and serves no exec (kubectl's exec POST
gets 405): the plan is checked word for word, and a real run is shown to stop before anything
changes with the cluster's own answer, never a faked exec."""
from __future__ import annotations

import json
import subprocess

import pytest

from nself.sync import history
from tests.conftest import make_project
from tests.sync import pg
from tests.sync.conftest import COMPOSE, PASSWORDS

SETTINGS = "environments:\n  review: {namespace: app-review, context: test}\n"


@pytest.fixture(scope="module")
def local():
    """The source: a real PostgreSQL cluster on this machine (`local`), with a little data."""
    import shutil

    cluster = pg.start_local(PASSWORDS["local"])
    try:
        pg.fill(cluster, 5, 5)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.folder, ignore_errors=True)


@pytest.fixture
def project(tmp_path, kube_api, local):
    return make_project(tmp_path / "app", COMPOSE, {
        "nself.yml": SETTINGS, ".env": "POSTGRES_DB=app\nPOSTGRES_USER=postgres\n",
        ".env.dev": f"POSTGRES_PORT={local.port}\nPOSTGRES_PASSWORD={PASSWORDS['local']}\n",
        ".env.review": "POSTGRES_PASSWORD=x\n"})


def _kubectl(*argv: str, data: dict | None = None) -> str:
    done = subprocess.run(["kubectl", "--context", "test", *argv], input=json.dumps(data) if data else None,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_plan_execs_into_the_services_pod_and_keeps_the_snapshot_here(project, nself):
    result = nself(["sync.db", "local", "review", "--dry-run", "--json"], cwd=project)
    assert result.code == 0, result.err
    steps = result.json()["plan"]["steps"]
    lines = [" ".join(s.get("argv", [])) for s in steps]
    find = ("kubectl --context test -n app-review get pods -l "
            "app.kubernetes.io/name=postgres,app.kubernetes.io/instance=app --field-selector=status.phase=Running")
    snapshot = next(line for line in lines if "pg_dump -w -U postgres -Fc -d app" in line)
    assert "kubectl --context test -n app-review exec -i" in snapshot and find in snapshot
    assert f"{project}/.nself/state/review/snapshots/db/" in snapshot
    stream = next(line for line in lines if "pg_restore" in line and "PGPASSFILE" in line)
    assert "-- pg_restore -w -U postgres" in stream or "-- psql -w -U postgres" in stream
    assert all(s["on"] == "local" for s in steps)


def test_a_real_run_stops_with_the_clusters_answer_and_changes_nothing(project, nself):
    no_pod = nself(["sync.db", "local", "review"], cwd=project)
    assert no_pod.code == 9 and "no-running-pod-of-postgres" in no_pod.err and "pods/exec" in no_pod.err
    # the namespace exists: the first run took its lock there (the deploy Lease)
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "postgres-0", "namespace": "app-review",
                        "labels": {"app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": "app"}},
           "spec": {"containers": [{"name": "postgres", "image": "postgres:15"}]}, "status": {"phase": "Running"}}
    _kubectl("-n", "app-review", "create", "--validate=false", "-f", "-", data=pod)
    assert "pod/postgres-0" in _kubectl("-n", "app-review", "get", "pods", "--field-selector=status.phase=Running",
                                        "-o", "name")
    refused = nself(["sync.db", "local", "review"], cwd=project)
    # the test API serves no pods/exec: kubectl's own words, exit 9, nothing changed
    assert refused.code == 9 and "postgres's pod (review)" in refused.err and "not supported" in refused.err
    assert not (project / ".nself" / "state" / "review" / "snapshots").exists() or \
        not any((project / ".nself" / "state" / "review" / "snapshots").rglob("*.dump"))
    assert [r["result"] for r in history.records(project, "review")] == ["failed", "failed"]


def test_scheduling_into_a_kubernetes_environment_is_said_not_built(project, nself):
    settings = project / "nself.yml"
    settings.write_text(SETTINGS + "sync:\n  auto:\n    db: {source: local, target: review}\n")
    for argv in (["sync.auto", "--schedule", "0 2 * * *"], ["sync.auto", "--unschedule"]):
        refused = nself(argv, cwd=project)
        assert refused.code == 2 and "CronJob" in refused.err and "not built" in refused.err, refused.err
