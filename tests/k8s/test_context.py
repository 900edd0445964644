"""k8s.context: kubeconfig contexts edited safely, and kubectl agreeing with nself."""
import shutil
import stat
import subprocess

import pytest
import yaml

KUBECTL = shutil.which("kubectl")


@pytest.fixture
def kubeconfig(tmp_path, monkeypatch):
    path = tmp_path / "kube" / "config"
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


def kubectl(*args):
    return subprocess.run([KUBECTL, *args], capture_output=True, text=True, timeout=30)


def test_add_list_use_delete(nself, kubeconfig, tmp_path):
    r = nself(["k8s.context.add", "--name", "staging", "--server", "https://127.0.0.1:6443",
               "--token-env", "STG_TOKEN", "--namespace", "acme-stg"], cwd=tmp_path,
              env={"STG_TOKEN": "tok-0123456789", "KUBECONFIG": str(kubeconfig)})
    assert r.code == 0, r.err
    assert "tok-0123456789" not in r.out + r.err
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    nself(["k8s.context.add", "--name", "prod", "--server", "https://127.0.0.2:6443"], cwd=tmp_path,
          env={"KUBECONFIG": str(kubeconfig)})
    r = nself(["k8s", "context", "list", "--json"], cwd=tmp_path, env={"KUBECONFIG": str(kubeconfig)})
    assert [(c["name"], c["current"]) for c in r.json()] == [("staging", True), ("prod", False)]
    # kubectl reads what nself wrote, and nself sees what kubectl changes
    assert kubectl("config", "current-context").stdout.strip() == "staging"
    assert kubectl("config", "use-context", "prod").returncode == 0
    r = nself(["k8s.context", "--json"], cwd=tmp_path, env={"KUBECONFIG": str(kubeconfig)})
    assert r.json()["name"] == "prod"
    assert nself(["k8s.context.use", "staging"], cwd=tmp_path, env={"KUBECONFIG": str(kubeconfig)}).code == 0
    assert kubectl("config", "current-context").stdout.strip() == "staging"
    r = nself(["k8s.context.delete", "staging", "--yes"], cwd=tmp_path, env={"KUBECONFIG": str(kubeconfig)})
    assert r.code == 0
    config = yaml.safe_load(kubeconfig.read_text())
    assert [c["name"] for c in config["contexts"]] == ["prod"]
    assert [c["name"] for c in config["clusters"]] == ["prod"] and config["current-context"] == ""
    backup = yaml.safe_load(kubeconfig.with_name("config.nself-backup").read_text())
    assert "staging" in [c["name"] for c in backup["contexts"]]    # the previous version is kept


def test_errors(nself, kubeconfig, tmp_path):
    env = {"KUBECONFIG": str(kubeconfig)}
    r = nself(["k8s.context.list"], cwd=tmp_path, env=env)
    assert r.code == 9 and "no kubeconfig" in r.err
    nself(["k8s.context.add", "--name", "a", "--server", "https://127.0.0.1:6443"], cwd=tmp_path, env=env)
    before = kubeconfig.read_bytes()
    r = nself(["k8s.context.use", "missing"], cwd=tmp_path, env=env)
    assert r.code == 9 and "no context named 'missing'" in r.err and "contexts: a" in r.err
    r = nself(["k8s.context.add", "--name", "a", "--server", "https://x:1"], cwd=tmp_path, env=env)
    assert r.code == 1 and "--force" in r.err
    r = nself(["k8s.context.add", "--name", "b", "--server", "not-a-url"], cwd=tmp_path, env=env)
    assert r.code == 2
    r = nself(["k8s.context.add", "--name", "c", "--server", "https://x:1", "--token-env", "NOPE"],
              cwd=tmp_path, env=env)
    assert r.code == 2 and "$NOPE" in r.err
    assert kubeconfig.read_bytes() == before                      # nothing half-changed
    kubeconfig.write_text("clusters: [\n")
    r = nself(["k8s.context.list"], cwd=tmp_path, env=env)
    assert r.code == 3 and "not valid YAML" in r.err


def test_delete_needs_confirmation_without_a_terminal(nself, kubeconfig, tmp_path, monkeypatch):
    import os
    import sys

    env = {"KUBECONFIG": str(kubeconfig)}
    nself(["k8s.context.add", "--name", "a", "--server", "https://127.0.0.1:6443"], cwd=tmp_path, env=env)
    monkeypatch.setattr(sys, "stdin", open(os.devnull))
    r = nself(["k8s.context.delete", "a"], cwd=tmp_path, env=env)
    assert r.code == 2 and "--yes" in r.err
