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


def canary_ingress(kube_api):
    found = named(kube_api, "Ingress", "web-canary")
    return None if found is None else found["metadata"]["annotations"]


def replicas(kube_api, name):
    return named(kube_api, "Deployment", name)["spec"]["replicas"]


def selector(kube_api, name):
    return named(kube_api, "Service", name)["spec"]["selector"]["app.kubernetes.io/name"]


def history(nself, project):
    r = nself(["deploy.history", "production", "--json"], cwd=project)
    assert r.code == 0, r.err
    return r.json()["deploys"]


def twins_gone(kube_api, track="canary"):
    return not any(o["metadata"]["name"].endswith(f"-{track}") or o["metadata"]["name"].endswith("-preview")
                   for kind in ("Deployment", "Service", "Ingress") for o in kube_api.objects(kind, NS))


def test_canary_ingress_weights_and_replicas_step_by_step_then_promote(stable, cli, nself, project, kube_api):
    r = cli("deploy.canary", "production", "--release", "v2", "--skip-build", "--steps", "10,50,100", "--json")
    assert r.code == 0, r.err
    assert (r.json()["phase"], r.json()["weight"]) == ("paused", 10)
    assert named(kube_api, "Ingress", "web")["metadata"].get("annotations", {}).get(CANARY) is None
    assert canary_ingress(kube_api) == {CANARY: "true", WEIGHT: "10"}
    backend = named(kube_api, "Ingress", "web-canary")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["name"] == "web-canary"
    assert (selector(kube_api, "web"), selector(kube_api, "web-canary")) == ("web", "web-canary")
    canary = named(kube_api, "Deployment", "web-canary")
    assert image(canary) == f"{REPO}@{DIGEST['v2']}" and image(named(kube_api, "Deployment", "web")) == \
        f"{REPO}@{DIGEST['v1']}"
    assert canary["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "web-canary"
    assert (replicas(kube_api, "web"), replicas(kube_api, "web-canary")) == (4, 1)     # 10% of 4: at least 1

    r = cli("deploy.canary.promote", "production", "--json")
    assert r.code == 0 and r.json()["weight"] == 50, r.err
    assert canary_ingress(kube_api)[WEIGHT] == "50" and replicas(kube_api, "web-canary") == 2

    r = cli("deploy.canary.promote", "production", "--json")
    assert r.code == 0 and r.json()["phase"] == "promoted", r.err
    web = named(kube_api, "Deployment", "web")
    assert image(web) == f"{REPO}@{DIGEST['v2']}" and web["spec"]["replicas"] == 4
    assert web["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "web"
    assert twins_gone(kube_api) and selector(kube_api, "web") == "web"
    assert [(h["to"], h["strategy"], h["result"]) for h in history(nself, project)] == [
        ("v1", "rolling", "ok"), ("v2", "canary", "ok")]
    assert nself(["deploy.status", "production", "--json"], cwd=project).json()["release"] == "v2"
    r = cli("deploy.rollback", "production", "--json")                       # the usual rollback works after
    assert r.code == 0 and r.json()["to"] == "v1", r.err
    assert image(named(kube_api, "Deployment", "web")) == f"{REPO}@{DIGEST['v1']}"


def test_abort_puts_all_traffic_back_and_removes_the_canary(stable, cli, nself, project, kube_api):
    assert cli("deploy.canary", "production", "--release", "v2", "--skip-build", "--percent", "25").code == 0
    assert canary_ingress(kube_api)[WEIGHT] == "25"
    before = named(kube_api, "Deployment", "web")["spec"]["template"]
    r = cli("deploy.canary.rollback", "production", "--json")
    assert r.code == 0 and (r.json()["phase"], r.json()["weight"]) == ("aborted", 0), r.err
    assert twins_gone(kube_api)
    assert named(kube_api, "Deployment", "web")["spec"]["template"] == before
    records = history(nself, project)
    assert (records[-1]["to"], records[-1]["strategy"], records[-1]["result"]) == ("v2", "canary", "aborted")
    r = cli("deploy.canary.promote", "production")
    assert r.code == 1 and "no canary is running in production" in r.err
    state = next(c for c in kube_api.objects("ConfigMap", NS) if c["metadata"]["name"] == "shop-canary")
    assert state["metadata"]["annotations"]["nself.io/canary-phase"] == "aborted"


def test_state_lives_in_the_cluster_so_another_checkout_continues(stable, cli, nself, project, kube_api, tmp_path):
    assert cli("deploy.canary", "production", "--release", "v2", "--skip-build", "--steps", "10,50,100").code == 0
    other = tmp_path / "laptop"                       # the same source elsewhere: no .nself/state at all
    shutil.copytree(project, other, ignore=shutil.ignore_patterns(".nself"))
    status = cli("deploy.canary.status", "production", "--json", cwd=other)
    assert status.code == 0 and (status.json()["release"], status.json()["weight"], status.json()["step"]) == \
        ("v2", 10, 2)
    r = cli("deploy.to", "production", "--release", "v3", "--skip-build", cwd=other)
    assert r.code == 1 and "refused while the canary of release v2 is in progress (10%, paused" in r.err
    assert "deploy.canary.promote production" in r.err and image(named(kube_api, "Deployment", "web")) == \
        f"{REPO}@{DIGEST['v1']}"
    r = cli("deploy.canary", "production", "--release", "v3", "--skip-build", cwd=other)
    assert r.code == 1 and "a new canary is refused while the canary of release v2 is in progress" in r.err
    r = cli("deploy.canary.promote", "production", "--full", "--json", cwd=other)
    assert r.code == 0 and r.json()["phase"] == "promoted", r.err
    assert image(named(kube_api, "Deployment", "web")) == f"{REPO}@{DIGEST['v2']}" and twins_gone(kube_api)


def test_a_killed_canary_command_leaves_state_that_status_and_rollback_continue(stable, project, kube_api,
                                                                                kube_controller, nself, cli):
    import os
    import signal
    import subprocess
    import sys
    import time

    nself_bin = os.path.join(os.path.dirname(sys.executable), "nself")
    with kube_controller.running(NS):
        child = subprocess.Popen([nself_bin, "deploy.canary", "production", "--release", "v2", "--skip-build",
                                  "--steps", "10,50,100", "--pause", "1h", "--auto"], cwd=project,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while canary_ingress(kube_api) is None or canary_ingress(kube_api)[WEIGHT] != "10":
                assert child.poll() is None and time.monotonic() < deadline, child.stderr.read().decode()
                time.sleep(0.2)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
    status = nself(["deploy.canary.status", "production", "--json"], cwd=project).json()
    assert (status["release"], status["weight"], status["phase"]) == ("v2", 10, "progressing")
    r = cli("deploy.canary.rollback", "production")       # the dead command's lock is still there
    assert r.code == 1 and "production is locked by" in r.err and "deploy.unlock production" in r.err
    assert nself(["deploy.unlock", "production", "--yes"], cwd=project).code == 0
    r = cli("deploy.canary.rollback", "production")
    assert r.code == 0, r.err
    assert twins_gone(kube_api) and image(named(kube_api, "Deployment", "web")) == f"{REPO}@{DIGEST['v1']}"


def add_route(kube_api, name="web"):
    """An HTTPRoute attached to the cluster's Gateway, sending /shop to the Service web."""
    from nself.k8s.cluster import Cluster

    Cluster().apply({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                     "metadata": {"name": name},
                     "spec": {"parentRefs": [{"name": "public", "namespace": "gateway"}],
                              "hostnames": ["shop.example.com"],
                              "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                         "backendRefs": [{"name": "web", "port": 80}]}]}}, NS)


def route_refs(kube_api, name="web"):
    return [(r["name"], r.get("weight")) for r in named(kube_api, "HTTPRoute", name)["spec"]["rules"][0]["backendRefs"]]


def test_gateway_api_httproute_weights(stable, cli, project, kube_api):
    write_settings(project, ingress="gateway")
    r = cli("deploy.canary", "production", "--release", "v2", "--skip-build", "--steps", "10,50,100")
    assert r.code == 3 and "no HTTPRoute in shop sends traffic to web" in r.err
    assert twins_gone(kube_api)
    add_route(kube_api)
    r = cli("deploy.canary", "production", "--release", "v2", "--skip-build", "--steps", "10,50,100")
    assert r.code == 0, r.err
    assert route_refs(kube_api) == [("web", 90), ("web-canary", 10)]
    assert canary_ingress(kube_api) is None and replicas(kube_api, "web-canary") == 1
    assert named(kube_api, "HTTPRoute", "web")["spec"]["parentRefs"] == [{"name": "public", "namespace": "gateway"}]
    assert cli("deploy.canary.promote", "production").code == 0
    assert route_refs(kube_api) == [("web", 50), ("web-canary", 50)] and replicas(kube_api, "web-canary") == 2
    assert cli("deploy.canary.rollback", "production").code == 0
    assert route_refs(kube_api) == [("web", 100)] and twins_gone(kube_api)


def test_blue_green_preview_switch_rollback_and_finish(stable, cli, nself, project, kube_api):
    r = cli("deploy.blue-green", "production", "--release", "v2", "--skip-build", "--json")
    assert r.code == 0 and r.json()["phase"] == "paused", r.err
    green = named(kube_api, "Deployment", "web-green")
    assert image(green) == f"{REPO}@{DIGEST['v2']}" and green["spec"]["replicas"] == 4
    assert selector(kube_api, "web-preview") == "web-green" and selector(kube_api, "web") == "web"
    assert canary_ingress(kube_api) is None
    r = cli("deploy.blue-green.switch", "production")
    assert r.code == 0, r.err
    assert selector(kube_api, "web") == "web-green"
    assert image(named(kube_api, "Deployment", "web")) == f"{REPO}@{DIGEST['v1']}"     # blue kept for rollback
    r = cli("deploy.blue-green.rollback", "production")
    assert r.code == 0, r.err
    assert selector(kube_api, "web") == "web" and twins_gone(kube_api, "green")
    assert [(h["to"], h["strategy"], h["result"]) for h in history(nself, project)][-2:] == [
        ("v2", "blue-green", "ok"), ("v1", "rollback", "ok")]

    assert cli("deploy.blue-green", "production", "--release", "v3", "--skip-build").code == 0
    assert cli("deploy.blue-green.switch", "production").code == 0
    r = cli("deploy.blue-green.finish", "production")                         # kept 30 minutes by default
    assert r.code == 0 and "stays up" in r.out and named(kube_api, "Deployment", "web-green") is not None
    r = cli("deploy.blue-green.finish", "production", "--now")
    assert r.code == 0, r.err
    assert image(named(kube_api, "Deployment", "web")) == f"{REPO}@{DIGEST['v3']}"
    assert selector(kube_api, "web") == "web" and twins_gone(kube_api, "green")


ANALYSIS = """\
  canary:
    analysis:
      http: {prometheus: "%s", min_requests: 20, success_rate: 0.95, p95: 0.5, window: 10, interval: 0.5}
"""


@pytest.fixture
def traffic(prometheus):
    """`traffic(error_rate)`: a thread recording canary requests in Prometheus while the block runs."""
    import contextlib
    import threading

    @contextlib.contextmanager
    def run(error_every=0, seconds=0.02):
        stop = threading.Event()

        def loop():
            count = 0
            while not stop.wait(0.1):
                for _ in range(10):
                    count += 1
                    failed = error_every and count % error_every == 0
                    prometheus.observe(NS, "web-canary", 500 if failed else 200, seconds)
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)
    return run


def test_prometheus_analysis_passes_and_promotes(stable, cli, project, kube_api, prometheus, traffic):
    write_settings(project, deploy_extra=ANALYSIS % prometheus.url)
    with traffic():
        r = cli("deploy.canary", "production", "--release", "v2", "--skip-build", "--steps", "10,100", "--pause", "1s",
                "--analysis", "http", "--auto", "--json")
    assert r.code == 0, r.err
    assert r.json()["phase"] == "promoted"
    verdict = next(a for a in r.json()["analyses"] if a.get("analysis") == "http")
    assert verdict["result"] == "passed" and verdict["requests"] >= 20 and verdict["p95"] == pytest.approx(0.02, 0.3)
    assert any('service="web-canary"' in q and 'namespace="shop"' in q and "status" in q for q in prometheus.queries)
    assert any(q.startswith("histogram_quantile(0.95") for q in prometheus.queries)
    assert image(named(kube_api, "Deployment", "web")) == f"{REPO}@{DIGEST['v2']}"


def test_prometheus_analysis_fails_and_auto_aborts(stable, cli, project, kube_api, prometheus, traffic):
    write_settings(project, deploy_extra=ANALYSIS % prometheus.url)
    with traffic(error_every=5):                         # 20% of the canary's requests answer 500
        r = cli("deploy.canary", "production", "--release", "v2", "--skip-build", "--steps", "10,100", "--pause", "1s",
                "--analysis", "http", "--auto")
    assert r.code == 1 and "aborted" in r.err and "success rate" in r.err, r.err
    assert twins_gone(kube_api) and image(named(kube_api, "Deployment", "web")) == f"{REPO}@{DIGEST['v1']}"
    history_map = next(c for c in kube_api.objects("ConfigMap", NS) if c["metadata"]["name"] == "shop-deploy-history")
    last = json.loads(history_map["data"]["history.jsonl"].splitlines()[-1])
    assert (last["to"], last["result"]) == ("v2", "aborted")
    assert last["analyses"][0]["result"] == "failed" and "success rate" in last["analyses"][0]["reason"]


@pytest.mark.parametrize("setting, words", [
    ("http: {min_requests: 20}", "deploy.canary.analysis.http.prometheus is not set"),
    ('http: {prometheus: "http://127.0.0.1:9", min_requests: 20}', "could not reach Prometheus at http://127.0.0.1:9"),
])
def test_analysis_without_a_reachable_prometheus_aborts_rather_than_promotes(stable, cli, project, kube_api,
                                                                              setting, words):
    write_settings(project, deploy_extra=f"  canary:\n    analysis:\n      {setting}\n")
    r = cli("deploy.canary", "production", "--release", "v2", "--skip-build", "--steps", "10,100", "--pause", "1s",
            "--analysis", "http", "--auto")
    assert r.code == 1 and words in r.err and "aborted" in r.err, r.err
    assert twins_gone(kube_api) and image(named(kube_api, "Deployment", "web")) == f"{REPO}@{DIGEST['v1']}"


def test_bad_input_changes_nothing(cli, project, kube_api):
    for percent in ("0", "101"):
        r = cli("deploy.canary", "production", "--release", "v2", "--skip-build", "--percent", percent)
        assert r.code == 2 and "not a whole number from 1 to 100" in r.err
    r = cli("deploy.canary.promote", "production")
    assert r.code == 1 and "no canary is running in production" in r.err
    r = cli("deploy.canary", "production", "--release", "v2", "--skip-build")
    assert r.code == 1 and "web is not deployed yet" in r.err
    assert kube_api.objects("Deployment", NS) == [] and kube_api.objects("Lease", NS) == []
    r = cli("deploy.blue-green.switch", "production")
    assert r.code == 1 and "no blue-green deploy in production to switch" in r.err


def test_inv_deploy_canary_in_a_project_made_by_nself_new(nself, kube_api, kube_controller, tmp_path, monkeypatch):
    """The product's headline, as a user types it: plain `inv` on the generated tasks.py."""
    import os
    import subprocess
    import sys

    bin_dir = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")     # the pre-deploy hook runs nself
    assert nself(["new", "demo", "--no-input", "--output", str(tmp_path)]).code == 0
    root = tmp_path / "demo"
    settings = root / "nself.yml"
    text = settings.read_text()
    settings.write_text(text.replace("    namespace: demo\n", "    namespace: demo\n    context: test\n"))
    images = root / ".nself" / "state" / "images"
    images.mkdir(parents=True, exist_ok=True)
    for release, digest in DIGEST.items():
        (images / f"{release}.json").write_text(json.dumps({"nginx": f"127.0.0.1:5000/demo/nginx@{digest}"}))
    with kube_controller.running("demo"):
        assert nself(["deploy.to", "production", "--release", "v1", "--skip-build"], cwd=root).code == 0
        done = subprocess.run([os.path.join(bin_dir, "inv"), "deploy.canary", "production", "--release", "v2",
                               "--skip-build", "--percent", "20"], cwd=root, capture_output=True, text=True,
                              timeout=120)
    assert done.returncode == 0, done.stderr
    assert "canary v2 (stable v1) at 20%, paused" in done.stdout
    ingress = next(o for o in kube_api.objects("Ingress", "demo") if o["metadata"]["name"] == "nginx-canary")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "20"


def test_prune_leaves_a_running_canarys_objects_and_state_alone(stable, cli, kube_api):
    assert cli("deploy.canary", "production", "--release", "v2", "--skip-build", "--percent", "25").code == 0
    r = cli("k8s.apply", "--env", "production", "--prune", "--dry-run", "--json")
    assert r.code == 0, r.err
    deletes = {s["name"] for s in r.json()["plan"]["steps"] if s.get("verb") == "delete"}
    assert not {n for n in deletes if "canary" in n}, deletes
    assert canary_ingress(kube_api)[WEIGHT] == "25"
