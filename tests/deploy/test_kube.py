"""The Kubernetes deploy target through the nself CLI, against the test Kubernetes API
(nself.testing.kube) with the controller stand-in settling rollouts in the background."""
import copy
import json

import pytest

from conftest import STACK, copy_tree

NS = "acme"
DIGEST = {v: "sha256:" + c * 64 for v, c in (("v1", "a"), ("v2", "b"), ("v3", "c"))}
REPO = "127.0.0.1:5000/acme/api"
NSELF_YML = """\
version: '1'
project: {name: acme}
environments:
  production: {namespace: acme, context: test}
kubernetes:
  generate: {replicas: {default: 1, hasura: 2}}
deploy:
  keep_releases: %d
"""


@pytest.fixture
def project(tmp_path, kube_api):
    """The nself stack as a k8s-target project, with releases v1..v3 built (their api image
    recorded by digest, as deploy.build records them after a push)."""
    root = copy_tree(STACK, tmp_path / "acme")
    (root / "nself.yml").write_text(NSELF_YML % 5)
    images = root / ".nself" / "state" / "images"
    images.mkdir(parents=True)
    for release, digest in DIGEST.items():
        (images / f"{release}.json").write_text(json.dumps({"api": f"{REPO}@{digest}"}))
    return root


@pytest.fixture
def cli(nself, project, kube_controller):
    """`cli(*argv, ready=True)` → Result: nself in the project while the controller settles."""
    def run(*argv, ready=True):
        with kube_controller.running(NS, ready=ready):
            return nself(list(argv), cwd=project)
    return run


@pytest.fixture
def deploy(cli):
    """`deploy(release, *flags, ready=True)`: `nself deploy.to production --release R --skip-build`."""
    def run(release, *flags, ready=True):
        return cli("deploy.to", "production", "--release", release, "--skip-build", *flags, ready=ready)
    return run


def api_image(kube_api):
    deployment = next(d for d in kube_api.objects("Deployment", NS) if d["metadata"]["name"] == "api")
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def templates(kube_api):
    return {d["metadata"]["name"]: d["spec"]["template"] for kind in ("Deployment", "StatefulSet")
            for d in kube_api.objects(kind, NS)}


def history(nself, project):
    r = nself(["deploy.history", "production", "--json"], cwd=project)
    assert r.code == 0, r.err
    return r.json()["deploys"]


def test_deploy_v1_v2_then_rollback(deploy, cli, nself, project, kube_api):
    r = deploy("v1", "--json")
    assert r.code == 0, r.err
    assert api_image(kube_api) == f"{REPO}@{DIGEST['v1']}"
    assert r.json()["detail"]["changed"] == [] and "Deployment/api" in r.json()["detail"]["created"]
    r = deploy("v2", "--json")
    assert r.code == 0, r.err
    assert api_image(kube_api) == f"{REPO}@{DIGEST['v2']}"
    assert r.json()["detail"]["changed"] == ["Deployment/api"]          # only what the release changed
    assert kube_api.objects("Lease", NS) == []                           # the lock was released
    dry = cli("deploy.rollback", "production", "--dry-run", "--json")     # the plan; nothing changes
    assert dry.code == 0 and dry.json()["plan"]["steps"], dry.err
    assert "v1" in dry.json()["plan"]["steps"][0]["summary"] + dry.json()["plan"]["title"]
    assert api_image(kube_api) == f"{REPO}@{DIGEST['v2']}" and len(history(nself, project)) == 2
    with_rollback = cli("deploy.rollback", "production", "--json")
    assert with_rollback.code == 0, with_rollback.err
    assert with_rollback.json()["to"] == "v1" and with_rollback.json()["from"] == "v2"
    assert api_image(kube_api) == f"{REPO}@{DIGEST['v1']}"
    status = nself(["deploy.status", "production", "--json"], cwd=project).json()
    assert status["release"] == "v1"
    assert [(h["from"], h["to"], h["strategy"], h["result"]) for h in history(nself, project)] == [
        (None, "v1", "rolling", "ok"), ("v1", "v2", "rolling", "ok"), ("v2", "v1", "rollback", "ok")]
    r = cli("deploy.rollback", "production", "--to", "v2", "--json")
    assert r.code == 0 and api_image(kube_api) == f"{REPO}@{DIGEST['v2']}"


def test_a_rollout_that_never_becomes_ready_is_undone_with_exit_10(deploy, project, kube_api, nself):
    assert deploy("v1").code == 0
    before = templates(kube_api)
    r = deploy("v2", "--timeout", "2", ready=lambda obj: obj["metadata"]["name"] != "api")
    assert r.code == 10, r.err
    assert "not ready after 2s: api" in r.err and "rolled back" in r.err
    assert "put back the previous pod template of: Deployment/api" in r.err
    assert templates(kube_api) == before                     # v1's template, and nothing else touched
    assert api_image(kube_api) == f"{REPO}@{DIGEST['v1']}"
    records = history(nself, project)
    assert (records[-1]["to"], records[-1]["result"]) == ("v2", "failed")
    assert nself(["deploy.status", "production", "--json"], cwd=project).json()["release"] == "v1"
    assert kube_api.objects("Lease", NS) == []


def test_a_held_lock_refuses_the_deploy_and_names_the_holder(deploy, project, kube_api, nself):
    from nself.deploy.kubestate import LeaseLock
    from nself.k8s.cluster import Cluster

    lock = LeaseLock(Cluster(), NS, "acme", "production")
    lock.acquire({"who": "alice@laptop", "since": "2026-11-29T10:00:00Z", "what": "deploy (rolling)",
                  "release": "abc123"})
    lease = kube_api.objects("Lease", NS)[0]
    assert lease["spec"]["holderIdentity"] == "alice@laptop"
    assert lease["spec"]["acquireTime"] == "2026-11-29T10:00:00.000000Z"
    r = deploy("v1")
    assert r.code == 1
    assert "production is locked by alice@laptop since 2026-11-29T10:00:00Z" in r.err and "abc123" in r.err
    assert "deploy.unlock production" in r.err
    assert kube_api.objects("Deployment", NS) == []           # refused before anything changed
    r = nself(["deploy.unlock", "production", "--yes", "--json"], cwd=project)
    assert r.code == 0 and r.json()["holder"]["who"] == "alice@laptop"
    assert kube_api.objects("Lease", NS) == []
    lock.release()                                            # no longer its lock: nothing to do
    assert deploy("v1").code == 0


def test_preview_changes_nothing_and_shows_each_change(deploy, nself, project, kube_api):
    def store():
        return kube_api.call(lambda: copy.deepcopy(kube_api.api.store))

    plan = nself(["deploy.to", "production", "--release", "v1", "--skip-build", "--dry-run", "--json"], cwd=project)
    objects = [s for s in plan.json()["plan"]["steps"] if s["verb"] == "apply"]
    empty = nself(["deploy.preview", "production", "--release", "v1", "--json"], cwd=project)
    assert empty.code == 0, empty.err
    assert not empty.json()["server_dry_run"] and len(empty.json()["changes"]) == len(objects) > 50
    assert {c["action"] for c in empty.json()["changes"]} == {"create"}
    assert store() == {}
    assert deploy("v1").code == 0
    env = project / ".env"
    env.write_text(env.read_text().replace("Zq8pLk2vWn4sTr7yXc1m", "a-new-password-42"))
    before = store()
    r = nself(["deploy.preview", "production", "--release", "v2", "--diff", "--json"], cwd=project)
    assert r.code == 0, r.err
    assert store() == before                                  # nothing stored, no resourceVersion moved
    report = r.json()
    assert report["server_dry_run"] is True
    # the password reaches other Secrets too (DATABASE_URL is built from it): each one shows
    assert report["changes"][0] == {"object": "Deployment/api", "action": "update"}
    assert {"object": "Secret/postgres-secrets", "action": "update"} in report["changes"]
    assert {c["object"].split("/")[0] for c in report["changes"][1:]} == {"Secret"}
    diff = "\n".join(report["diff"]["Deployment/api"])
    assert f"-        image: {REPO}@{DIGEST['v1']}" in diff and f"+        image: {REPO}@{DIGEST['v2']}" in diff
    assert "POSTGRES_PASSWORD would change" in r.out
    assert "a-new-password-42" not in r.out and "Zq8pLk2vWn4sTr7yXc1m" not in r.out
    text = nself(["deploy.preview", "production", "--release", "v1"], cwd=project)
    assert "~ Secret/postgres-secrets (update)" in text.out and "1 of" not in text.out


def test_history_keeps_the_templates_of_the_last_releases(deploy, nself, project, kube_api):
    (project / "nself.yml").write_text(NSELF_YML % 2)
    for release in ("v1", "v2", "v3"):
        assert deploy(release).code == 0
    history_map = next(c for c in kube_api.objects("ConfigMap", NS) if c["metadata"]["name"] == "acme-deploy-history")
    assert sorted(history_map["binaryData"]) == ["v2.templates.json.gz", "v3.templates.json.gz"]
    lines = history_map["data"]["history.jsonl"].splitlines()
    assert [json.loads(line)["to"] for line in lines] == ["v1", "v2", "v3"]
    assert "nself.io/project" not in history_map["metadata"].get("labels", {})   # never pruned by k8s.apply
    r = nself(["deploy.rollback", "production", "--to", "v1"], cwd=project)
    assert r.code == 1 and "no saved release 'v1'" in r.err and "v1, v2, v3" in r.err
    local = [json.loads(line) for line in (project / ".nself" / "state" / "deploy.log").read_text().splitlines()]
    assert [(e["to"], e["strategy"], e["result"]) for e in local] == [
        ("v1", "rolling", "ok"), ("v2", "rolling", "ok"), ("v3", "rolling", "ok"), ("v1", "rollback", "failed")]


def test_dry_run_plan_is_pure_and_hides_secrets(nself, project, kube_api):
    before = kube_api.api.request_count
    r = nself(["deploy.to", "production", "--release", "v2", "--skip-build", "--dry-run", "--json"], cwd=project)
    assert r.code == 0, r.err
    assert kube_api.api.request_count == before               # building the plan asked the cluster nothing
    steps = r.json()["plan"]["steps"]
    assert steps[0]["summary"] == "apply Namespace/acme" and steps[0]["on"] == "cluster"
    api = next(s for s in steps if s["summary"] == "apply Deployment/api")
    assert api["body"]["spec"]["template"]["spec"]["containers"][0]["image"] == f"{REPO}@{DIGEST['v2']}"
    secret = next(s for s in steps if s["summary"].startswith("apply Secret/postgres-secrets"))
    assert "body" not in secret and secret["data"].endswith("not shown)")
    assert "Zq8pLk2vWn4sTr7yXc1m" not in r.out
    assert [s["verb"] for s in steps[-2:]] == ["wait", "patch"] and "api" in steps[-2]["names"]


def test_check_and_status_report_each_workload(deploy, nself, project, kube_api, kube_controller):
    assert deploy("v1").code == 0
    r = nself(["deploy.check", "production", "--json"], cwd=project)
    assert r.code == 0 and r.json()["healthy"] is True and len(r.json()["services"]) == 22
    kube_controller.settle(NS, ready=lambda obj: obj["metadata"]["name"] != "hasura")
    r = nself(["deploy.check", "production"], cwd=project)
    assert r.code == 1 and "not healthy: hasura" in r.err
    rows = nself(["deploy.status", "production", "--json"], cwd=project).json()["rows"]
    assert next(row for row in rows if row["service"] == "hasura")["ready"] == "0/2"
    assert nself(["deploy.logs", "production", "--follow"], cwd=project).code == 2


def test_unknown_release_images_are_refused(nself, project, kube_api):
    (project / ".nself" / "state" / "images" / "v9.json").write_text(json.dumps({"gizmo": "x@sha256:" + "d" * 64}))
    r = nself(["deploy.to", "production", "--release", "v9", "--skip-build"], cwd=project)
    assert r.code == 3 and "gizmo" in r.err
    assert kube_api.objects("Lease", NS) == [] and kube_api.objects("Deployment", NS) == []


def test_service_limits_the_plan_to_its_objects(nself, project, kube_api):
    r = nself(["deploy.to", "production", "--release", "v1", "--skip-build", "--service", "api", "--dry-run",
               "--json"], cwd=project)
    assert r.code == 0, r.err
    applied = [s["summary"] for s in r.json()["plan"]["steps"] if s["verb"] == "apply"]
    assert applied[0] == "apply Namespace/acme" and "apply Deployment/api" in applied
    assert all(s.endswith("/api") or s.startswith("apply Namespace") or "api-" in s for s in applied), applied
    assert r.json()["plan"]["steps"][-2]["names"] == ["api"]


def test_the_overriding_guide_s_health_check_runs_after_nselfs(deploy, cli, project, monkeypatch):
    """docs/overriding.md "Your own health check for deploys", as a project's tasks.py."""
    import re
    import socket
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "overriding.md").read_text()
    example = next(e for e in re.findall(r"```python\n# tasks.py\n(.*?)```", guide, re.S) if "deploy.check" in e)
    (project / "tasks.py").write_text(example)
    assert deploy("v1").code == 0
    ok = cli("deploy.check", "production")
    assert ok.code == 0, ok.err
    assert "smoke test of production: ok" in ok.out and "api" in ok.out      # nself's table, then ours
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("SMOKE_URL", f"http://127.0.0.1:{port}/health")
    failed = cli("deploy.check", "production")
    assert failed.code == 1 and f"smoke test http://127.0.0.1:{port}/health failed" in failed.err
