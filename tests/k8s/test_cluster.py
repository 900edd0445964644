"""k8s tasks against the test Kubernetes API (kmock-based), and kubectl on the same server."""
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import sys
from pathlib import Path

import pytest
import yaml
from conftest import answering

KUBECTL = shutil.which("kubectl")
NS = "acme-stg"          # the staging namespace of the stack's nself.yml


def kubectl(kube_api, *args):
    out = subprocess.run([KUBECTL, "--server", kube_api.url, "--token", "t", "--validate=false", *args]
                         if args and args[0] == "apply" else [KUBECTL, "--server", kube_api.url, *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def applied(stack, nself, kube_api, kube_controller):
    assert nself(["k8s.generate"], cwd=stack).code == 0
    r = nself(["k8s.apply", "--env", "staging", "--json"], cwd=stack)
    assert r.code == 0, r.err
    kube_controller.settle(NS)
    return r.json()


def test_apply_creates_everything_and_secrets_from_env_files(applied, kube_api, stack):
    deployments = {d["metadata"]["name"] for d in kube_api.objects("Deployment", NS)}
    assert {"hasura", "auth", "nginx", "api"} <= deployments
    assert {s["metadata"]["name"] for s in kube_api.objects("StatefulSet", NS)} >= {"postgres", "redis"}
    secret = next(s for s in kube_api.objects("Secret", NS) if s["metadata"]["name"] == "postgres-secrets")
    assert secret["stringData"]["POSTGRES_PASSWORD"] == "Zq8pLk2vWn4sTr7yXc1m"   # from .env, not a file
    assert "Zq8pLk2vWn4sTr7yXc1m" not in json.dumps(applied)
    hasura = next(d for d in kube_api.objects("Deployment", NS) if d["metadata"]["name"] == "hasura")
    assert hasura["metadata"]["labels"]["nself.io/environment"] == "staging"
    assert applied["namespace"] == NS and applied["requests"] == len(applied["applied"])


def test_kubectl_sees_what_nself_applied_and_nself_sees_kubectl(applied, kube_api, stack, nself):
    names = kubectl(kube_api, "get", "deployments", "-n", NS, "-o", "name").split()
    assert "deployment.apps/hasura" in names
    kubectl(kube_api, "scale", "deployment/hasura", "--replicas=4", "-n", NS)
    rows = nself(["k8s.status", "hasura", "--env", "staging", "--json"], cwd=stack).json()
    assert rows == [r for r in rows if r["service"] == "hasura"] and rows[0]["desired"] == 4


def test_status_uses_a_constant_number_of_list_calls(applied, kube_api, stack, nself):
    before = kube_api.api.request_count
    r = nself(["k8s.status", "--env", "staging", "--json"], cwd=stack)
    assert r.code == 0
    rows = r.json()
    assert len(rows) == 24 and all(row["ready_state"] in (True, None) for row in rows)
    assert kube_api.api.request_count - before == 5          # one list per workload kind


def test_scale_restart_history_undo_rollback(applied, kube_api, kube_controller, stack, nself):
    def run(*argv):
        r = nself([*argv, "--env", "staging"], cwd=stack)
        assert r.code == 0, r.err
        return r
    run("k8s.scale", "hasura", "3")
    assert _deployment(kube_api, "hasura")["spec"]["replicas"] == 3
    run("k8s", "scale", "hasura", "0")
    assert _deployment(kube_api, "hasura")["spec"]["replicas"] == 0
    run("k8s.rollout.restart", "hasura")
    kube_controller.settle(NS)
    history = json.loads(run("k8s.rollout.history", "hasura", "--json").out)
    assert [h["revision"] for h in history] == [1, 2]
    run("k8s.rollout.undo", "hasura")
    kube_controller.settle(NS)
    history = json.loads(run("k8s.rollout.history", "hasura", "--json").out)
    assert [h["revision"] for h in history] == [2, 3]         # revision 1 came back as 3
    template = _deployment(kube_api, "hasura")["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" not in template["metadata"].get("annotations", {})
    run("k8s.rollback", "hasura", "--to", "2")
    kube_controller.settle(NS)
    template = _deployment(kube_api, "hasura")["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" in template["metadata"]["annotations"]
    r = nself(["k8s.rollback", "hasura", "--to", "9", "--env", "staging"], cwd=stack)
    assert r.code == 9 and "no revision 9" in r.err
    run("k8s.rollout.pause", "hasura")
    assert _deployment(kube_api, "hasura")["spec"]["paused"] is True


def _deployment(kube_api, name):
    return next(d for d in kube_api.objects("Deployment", NS) if d["metadata"]["name"] == name)


def test_prune_after_removing_a_service(applied, kube_api, stack, nself):
    compose = yaml.safe_load((stack / "docker-compose.yml").read_text())
    del compose["services"]["mailpit"]
    (stack / "docker-compose.yml").write_text(yaml.safe_dump(compose))
    assert nself(["k8s.generate", "--force"], cwd=stack).code == 0
    r = nself(["k8s.apply", "--env", "staging", "--json"], cwd=stack)
    assert r.code == 0, r.err
    assert r.json()["pruned"] == []
    assert "mailpit" in {d["metadata"]["name"] for d in kube_api.objects("Deployment", NS)}  # no prune
    r = nself(["k8s.apply", "--env", "staging", "--prune", "--json"], cwd=stack)
    assert r.code == 0, r.err
    assert {"Deployment/mailpit", "Service/mailpit"} <= set(r.json()["pruned"])
    assert "mailpit" not in {d["metadata"]["name"] for d in kube_api.objects("Deployment", NS)}
    assert "hasura" in {d["metadata"]["name"] for d in kube_api.objects("Deployment", NS)}


def test_delete_asks_and_removes_the_environment(applied, kube_api, stack, nself):
    r = nself(["k8s.delete", "--env", "staging", "--dry-run", "--json"], cwd=stack)
    assert r.code == 0 and "Deployment/hasura" in r.json()["deleted"]
    assert kube_api.objects("Deployment", NS)                # dry run: still there
    assert nself(["k8s.delete", "--env", "staging", "--yes"], cwd=stack).code == 0
    assert kube_api.objects("Deployment", NS) == [] and kube_api.objects("Secret", NS) == []


def test_dry_run_changes_nothing(stack, nself, kube_api):
    r = nself(["k8s.apply", "--env", "staging", "--dry-run", "--json"], cwd=stack)
    assert r.code == 0, r.err
    steps = r.json()["plan"]["steps"]
    assert len(steps) > 50 and {s["kind"] for s in steps} == {"k8s"} and {s["verb"] for s in steps} == {"apply"}
    assert steps[0] == {"summary": f"apply Namespace {NS}", "kind": "k8s", "on": "local", "verb": "apply",
                        "resource": "Namespace", "name": NS}
    assert steps[1]["resource"] == "Secret" and steps[1]["namespace"] == NS      # Secrets before the pods
    secret = next(s for s in steps if s["name"] == "postgres-secrets")
    assert secret["data"].endswith("bytes, not shown)") and "Zq8pLk2vWn4sTr7yXc1m" not in r.out
    assert list(kube_api.api.request_log) == []                                  # not even a read
    assert kube_api.objects("Deployment") == []


def test_apply_without_a_generated_tree_converts_in_memory(stack, nself, kube_api):
    assert not (stack / "k8s").exists()
    assert nself(["k8s.apply", "--env", "production"], cwd=stack).code == 0
    scaled = {d["metadata"]["name"] for d in kube_api.objects("HorizontalPodAutoscaler", "acme")}
    # nself.yml fixes hasura at 2 pods: a count the user chose keeps the overlay's HPA away
    assert "api" in scaled and "hasura" not in scaled


def test_wait_follows_the_rollout_through_watch(stack, nself, kube_api, kube_controller):
    # The controller settles while nself applies and waits (one settle at a fixed moment
    # raced the apply on a loaded machine: objects applied after it never became ready).
    started = time.monotonic()
    with kube_controller.running("acme-stg"):
        r = nself(["k8s.apply", "--env", "staging", "--wait", "--timeout", "30", "--json"], cwd=stack)
    assert r.code == 0, r.err
    assert r.json()["ready"] and time.monotonic() - started < 25


def test_wait_times_out_with_exit_10(stack, nself, kube_api, kube_controller):
    timer = threading.Timer(0.5, kube_controller.settle, args=("acme-stg",), kwargs={"ready": False})
    timer.start()
    r = nself(["k8s.apply", "--env", "staging", "--wait", "--timeout", "3"], cwd=stack)
    timer.join()
    assert r.code == 10 and "not ready after 3s" in r.err


def test_refused_credentials_are_exit_9(stack, nself, kube_api, tmp_path, monkeypatch):
    kube_api.call(setattr, kube_api.api, "token", "the-right-one")
    r = nself(["k8s.status", "--env", "staging"], cwd=stack)
    assert r.code == 9 and "refused" in r.err and "credentials" in r.err
    monkeypatch.setenv("KUBECONFIG", str(kube_api.kubeconfig(tmp_path / "ok", token="the-right-one")))
    assert nself(["k8s.status", "--env", "staging"], cwd=stack).code == 0


def test_errors_are_exit_9(stack, nself, kube_api, tmp_path, monkeypatch):
    r = nself(["k8s.status", "nope", "--env", "staging"], cwd=stack)
    assert r.code == 9 and "no workload named 'nope'" in r.err
    r = nself(["k8s.status", "--context", "missing"], cwd=stack)
    assert r.code == 9 and "missing" in r.err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "dead"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "dead", "user": {}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "dead"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(config))
    r = nself(["k8s.apply", "--env", "staging"], cwd=stack)
    assert r.code == 9 and "unreachable" in r.err and "applied before the failure (0)" in r.err


def test_dry_run_with_prune_plans_the_deletes(applied, kube_api, stack, nself):
    compose = yaml.safe_load((stack / "docker-compose.yml").read_text())
    del compose["services"]["mailpit"]
    (stack / "docker-compose.yml").write_text(yaml.safe_dump(compose))
    assert nself(["k8s.generate", "--force"], cwd=stack).code == 0
    before = _deployment(kube_api, "mailpit")["metadata"]["resourceVersion"]
    r = nself(["k8s.apply", "--env", "staging", "--prune", "--dry-run", "--json"], cwd=stack)
    assert r.code == 0, r.err
    deletes = [s for s in r.json()["plan"]["steps"] if s["verb"] == "delete"]
    assert {"summary": "prune Deployment mailpit", "kind": "k8s", "on": "local", "verb": "delete",
            "resource": "Deployment", "name": "mailpit", "namespace": NS} in deletes
    assert {d["name"] for d in deletes} == {"mailpit", "mailpit-env"}        # its ConfigMap too
    assert _deployment(kube_api, "mailpit")["metadata"]["resourceVersion"] == before     # still there


def test_pods_events_describe(applied, kube_api, stack, nself):
    rows = nself(["k8s.pods", "hasura", "--env", "staging", "--json"], cwd=stack).json()
    assert len(rows) == 2 and rows[0]["name"].startswith("hasura-") and rows[0]["status"] == "Running"
    assert rows[0]["ready"] == "1/1"
    import requests

    requests.post(f"{kube_api.url}/api/v1/namespaces/{NS}/events", json={
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "hasura.1"},
        "involvedObject": {"kind": "Pod", "name": rows[0]["name"]}, "type": "Warning",
        "reason": "BackOff", "message": "Back-off restarting failed container"}).raise_for_status()
    found = nself(["k8s.events", "hasura", "--env", "staging", "--json"], cwd=stack).json()
    assert [(e["reason"], e["object"]) for e in found] == [("BackOff", f"Pod/{rows[0]['name']}")]
    assert nself(["k8s.events", "auth", "--env", "staging", "--json"], cwd=stack).json() == []
    doc = nself(["k8s.describe", "deployment", "hasura", "--env", "staging", "--json"], cwd=stack).json()
    assert doc["object"]["kind"] == "Deployment"
    assert nself(["k8s.describe", "gizmo", "x", "--env", "staging"], cwd=stack).code == 2
    assert nself(["k8s.describe", "pod", "nope", "--env", "staging"], cwd=stack).code == 9


def test_logs_requests(applied, kube_api, stack, nself):
    pod = nself(["k8s.pods", "hasura", "--env", "staging", "--json"], cwd=stack).json()[0]["name"]
    r = nself(["k8s.logs", "hasura", "--tail", "10", "--since", "1h", "--previous", "--env", "staging"],
              cwd=stack)
    assert r.code == 0, r.err
    paths = [p for _, p in kube_api.api.request_log if "/log" in p]
    assert paths[-1] == f"/api/v1/namespaces/{NS}/pods/{pod}/log?tailLines=10&previous=true&sinceSeconds=3600"
    assert nself(["k8s.logs", "hasura", "-f", "--env", "staging"], cwd=stack).code == 0
    assert [p for _, p in kube_api.api.request_log if "/log" in p][-1].endswith("follow=true")
    assert nself(["k8s.logs", "hasura", "--since", "soon", "--env", "staging"], cwd=stack).code == 2
    assert nself(["k8s.logs", "ghost", "--env", "staging"], cwd=stack).code == 9


def _argvs(result) -> list[list[str]]:
    return [step["argv"] for step in result.json()["plan"]["steps"]]


def test_exec_shell_port_forward_commands(applied, kube_api, stack, nself):
    r = nself(["k8s.exec", "hasura", "--dry-run", "--json", "--env", "staging", "--", "psql", "-c",
               "select 1"], cwd=stack)
    assert r.code == 0, r.err
    argv = _argvs(r)[0]
    assert argv[:3] == ["kubectl", "--namespace", NS] and argv[-4:] == ["--", "psql", "-c", "select 1"]
    assert argv[3] == "exec" and argv[4].startswith("hasura-")
    r = nself(["k8s.shell", "hasura", "--dry-run", "--json", "--env", "staging"], cwd=stack)
    assert _argvs(r)[0][3:5] == ["exec", "-it"] and _argvs(r)[0][-2:] == ["--", "sh"]
    r = nself(["k8s", "port-forward", "hasura", "--dry-run", "--json", "--env", "staging"], cwd=stack)
    assert _argvs(r) == [["kubectl", "--namespace", NS, "port-forward", "service/hasura", "8080"]]
    r = nself(["k8s", "port-forward", "postgres", "15432:5432", "--dry-run", "--json", "--env", "staging"],
              cwd=stack)
    assert _argvs(r)[0][-2:] == ["service/postgres", "15432:5432"]
    r = nself(["k8s.port-forward", "--all", "--dry-run", "--json", "--env", "staging"], cwd=stack)
    targets = {argv[4] for argv in _argvs(r)}
    assert {"service/hasura", "service/postgres", "service/redis"} <= targets
    r = nself(["k8s.exec", "hasura", "--env", "staging"], cwd=stack)
    assert r.code == 2 and "which command" in r.err


def _hasura_desired(line):
    return next(r["desired"] for r in line if r["service"] == "hasura")


def _pod_names(line):
    return {r["name"] for r in line}


# What each watch mode must show after the change the test makes (an event, a scale to 3 and
# the pods the controller then starts): a mode that printed only its first snapshot fails.
WATCHED = {
    "k8s.status": lambda first, later: _hasura_desired(first) != 3 and any(
        _hasura_desired(line) == 3 for line in later),
    "k8s.pods": lambda first, later: any(_pod_names(line) > _pod_names(first) for line in later),
    "k8s.events": lambda first, later: {"type": "Normal", "reason": "Pulled", "object": "Pod/hasura-x",
                                        "message": "pulled"} in [first, *later],
}


@pytest.mark.parametrize("task", sorted(WATCHED))
def test_watch_modes_stream_json_lines_and_exit_0_on_ctrl_c(applied, kube_api, kube_controller, stack, task):
    import os
    import signal
    import sys

    nself_bin = os.path.join(os.path.dirname(sys.executable), "nself")
    process = subprocess.Popen([nself_bin, task, "--watch", "--env", "staging", "--json"], cwd=stack,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "KUBECONFIG": os.environ["KUBECONFIG"]})
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(json.loads(line) for line in process.stdout
                                                           if line.strip()), daemon=True)
    reader.start()
    # The change must come after the first snapshot (start-up takes seconds on a loaded machine);
    # the events stream has no snapshot to wait for: an event posted early is in its first list.
    started = time.monotonic() + 60
    while task != "k8s.events" and not lines and time.monotonic() < started:
        time.sleep(0.1)
    import requests

    requests.post(f"{kube_api.url}/api/v1/namespaces/{NS}/events", json={
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
        "involvedObject": {"kind": "Pod", "name": "hasura-x"}, "type": "Normal", "reason": "Pulled",
        "message": "pulled"}).raise_for_status()
    kubectl(kube_api, "scale", "deployment/hasura", "--replicas=3", "-n", NS)
    kube_controller.settle(NS)
    deadline = time.monotonic() + 30            # the stream catches up with the change, or the test fails
    while time.monotonic() < deadline and not (len(lines) > 1 and WATCHED[task](lines[0], lines[1:])):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0, process.stderr.read()
    reader.join(10)
    assert lines and WATCHED[task](lines[0], lines[1:]), lines[-1:]


@pytest.mark.skipif(not __import__("os").environ.get("NSELF_TEST_CLUSTER"),
                    reason="not run: set NSELF_TEST_CLUSTER=1 with KUBECONFIG pointing at a real cluster")
def test_streams_on_a_real_cluster(stack, nself):
    assert nself(["k8s.apply", "--env", "staging", "--wait", "--timeout", "600"], cwd=stack).code == 0
    assert nself(["k8s.exec", "postgres", "--env", "staging", "--", "true"], cwd=stack).code == 0
    assert nself(["k8s.logs", "postgres", "--tail", "5", "--env", "staging"], cwd=stack).code == 0


@pytest.mark.parametrize("body", [b"<html>sign in</html>", b"[]", b"null"])
def test_an_api_that_is_not_kubernetes_is_exit_9(nself, stack, tmp_path, body):
    with answering(body) as url:
        config = tmp_path / "kubeconfig"
        config.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "x",
            "clusters": [{"name": "x", "cluster": {"server": url}}],
            "users": [{"name": "x", "user": {"token": "t"}}],
            "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}]}))
        r = nself(["k8s.status", "--kubeconfig", str(config)], cwd=stack)
    assert r.code == 9 and "did not answer" in r.err and "internal" not in r.err, r.err


def _kubeconfig(path, server, user):
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": server}}],
        "users": [{"name": "x", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}]}))
    return path


@pytest.mark.parametrize("plugin, said", [
    ("nself-no-such-plugin", "No such file"),
    ("false", "exec: process returned 1"),
])
def test_a_failing_credential_plugin_is_exit_9_not_an_anonymous_request(nself, stack, tmp_path, plugin, said):
    with answering(b'{"kind": "Status"}') as url:
        config = _kubeconfig(tmp_path / "kubeconfig", url, {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": plugin,
            "interactiveMode": "Never"}})
        r = nself(["k8s.status", "--kubeconfig", str(config)], cwd=stack)
    assert r.code == 9 and "credential plugin" in r.err and said in r.err, r.err
    assert "ERROR:root" not in r.err


def test_an_api_trickling_its_answer_ends_at_the_deadline(stack, tmp_path):
    """One byte a second: every socket read succeeds, so only an overall deadline ends it."""
    listener = socket.create_server(("127.0.0.1", 0))

    def trickle():
        conn, _ = listener.accept()
        conn.recv(65536)
        try:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}":
                conn.sendall(bytes([byte]))
                time.sleep(1)
        except OSError:
            pass
    threading.Thread(target=trickle, daemon=True).start()
    config = _kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{listener.getsockname()[1]}",
                         {"token": "t"})
    started = time.monotonic()
    r = subprocess.run([str(Path(sys.executable).with_name("nself")), "k8s.status", "--kubeconfig",
                        str(config)], cwd=stack, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "NSELF_KUBE_DEADLINE": "3"})
    took = time.monotonic() - started
    listener.close()
    assert r.returncode == 9 and "within 3 s" in r.stderr and "NSELF_KUBE_DEADLINE" in r.stderr, r.stderr
    assert took < 15, took
