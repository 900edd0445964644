"""The Kubernetes target `via: helm`. No cluster exists here for helm to install into, so:
the exact command lines (the dry-run plan); runs through a helm stand-in (a script that
records its argv and stdin and answers as helm does, e.g. helm's timeout message) while the
lock and the history go to the test Kubernetes API; and `deploy.preview`, which renders with
the real `helm template` and dry-runs the result on the test API."""
import copy
import json
import sys

import pytest

from conftest import STACK, copy_tree

NS = "acme"
DIGEST = {"v1": "sha256:" + "a" * 64, "v2": "sha256:" + "b" * 64}
REPO = "127.0.0.1:5000/acme/api"
PASSWORD = "Zq8pLk2vWn4sTr7yXc1m"          # POSTGRES_PASSWORD in the stack's .env
STANDIN = f"""#!{sys.executable}
import json, os, sys
stdin = sys.stdin.read() if "-" in sys.argv else ""
with open(os.environ["HELM_STANDIN_LOG"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "stdin": stdin}}) + "\\n")
if sys.argv[1] == "upgrade" and os.environ.get("HELM_STANDIN_TIMEOUT"):
    sys.stderr.write("Error: UPGRADE FAILED: timed out waiting for the condition\\n")
    sys.exit(1)
"""


@pytest.fixture
def project(tmp_path, kube_api, nself):
    root = copy_tree(STACK, tmp_path / "acme")
    (root / "nself.yml").write_text("version: '1'\nproject: {name: acme}\nenvironments:\n"
                                    "  production: {namespace: acme, context: test, via: helm}\n")
    assert nself(["helm.init"], cwd=root).code == 0
    images = root / ".nself" / "state" / "images"
    images.mkdir(parents=True)
    for release, digest in DIGEST.items():
        (images / f"{release}.json").write_text(json.dumps({"api": f"{REPO}@{digest}"}))
    return root


def upgrade_argv(root, release):
    chart = root / "charts" / "acme"
    return ["upgrade", "--install", "acme", str(chart), "--namespace", "acme", "--create-namespace",
            "--values", f"{chart}/values.yaml", "--values", f"{chart}/values-production.yaml", "--values", "-",
            "--set", f"services.api.image.repository={REPO}", "--set", "services.api.image.tag=",
            "--set", f"services.api.image.digest={DIGEST[release]}", "--wait", "--timeout", "300s",
            "--kube-context", "test"]


def test_the_plan_is_the_exact_helm_command_line(nself, project, kube_api):
    before = kube_api.api.request_count
    r = nself(["deploy.to", "production", "--release", "v1", "--skip-build", "--dry-run", "--json"], cwd=project)
    assert r.code == 0, r.err
    [step] = r.json()["plan"]["steps"]
    assert step["argv"] == ["helm", *upgrade_argv(project, "v1")]
    assert step["data"].endswith("not shown)") and PASSWORD not in r.out
    assert kube_api.api.request_count == before


@pytest.fixture
def standin(tmp_path, monkeypatch):
    """The helm stand-in as NSELF_HELM; returns a reader of the calls it received."""
    script, log = tmp_path / "helm", tmp_path / "helm-calls.jsonl"
    script.write_text(STANDIN)
    script.chmod(0o755)
    monkeypatch.setenv("HELM_STANDIN_LOG", str(log))

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    calls.env = {"NSELF_HELM": str(script)}
    return calls


def test_deploy_runs_helm_with_secrets_on_stdin_then_undoes_a_timeout(nself, project, kube_api, standin,
                                                                        monkeypatch):
    def deploy(release):
        return nself(["deploy.to", "production", "--release", release, "--skip-build"], cwd=project, env=standin.env)

    assert deploy("v1").code == 0
    [call] = standin()
    assert call["argv"] == upgrade_argv(project, "v1")
    assert f"POSTGRES_PASSWORD: {PASSWORD}" in call["stdin"] and PASSWORD not in json.dumps(call["argv"])
    assert kube_api.objects("Lease", NS) == []
    monkeypatch.setenv("HELM_STANDIN_TIMEOUT", "1")
    r = deploy("v2")
    assert r.code == 10 and "helm timed out" in r.err and "rolled back to the revision of release v1" in r.err
    assert [c["argv"] for c in standin()[1:]] == [
        upgrade_argv(project, "v2"), ["rollback", "acme", "--namespace", "acme", "--wait", "--kube-context", "test"]]
    monkeypatch.delenv("HELM_STANDIN_TIMEOUT")
    assert deploy("v2").code == 0
    r = nself(["deploy.rollback", "production", "--json"], cwd=project, env=standin.env)
    assert r.code == 0, r.err
    assert r.json()["to"] == "v1" and standin()[-1]["argv"] == upgrade_argv(project, "v1")
    history = nself(["deploy.history", "production", "--json"], cwd=project).json()["deploys"]
    assert [(h["to"], h["result"]) for h in history] == [("v1", "ok"), ("v2", "failed"), ("v2", "ok"), ("v1", "ok")]


def test_preview_renders_with_helm_template_and_changes_nothing(nself, project, kube_api):
    import requests

    requests.post(f"{kube_api.url}/api/v1/namespaces", json={"metadata": {"name": NS}}, timeout=10).raise_for_status()
    before = kube_api.call(lambda: copy.deepcopy(kube_api.api.store))
    r = nself(["deploy.preview", "production", "--release", "v2", "--json"], cwd=project)
    assert r.code == 0, r.err
    report = r.json()
    assert report["server_dry_run"] is True
    created = {c["object"] for c in report["changes"] if c["action"] == "create"}
    assert {"Deployment/api", "StatefulSet/postgres", "Service/hasura"} <= created
    assert not any(name.startswith("Secret/") for name in created)       # values never leave via preview
    assert kube_api.call(lambda: copy.deepcopy(kube_api.api.store)) == before
    assert PASSWORD not in r.out
