"""The env group through the CLI (nself/tasks/env.py, nself/project/environments.py): real files,
nself.yml kept as written, refusals leave every file unchanged."""
import os
import subprocess
import sys

import pytest

COMMENTED = """\
version: '1'
# The project.
project:
  name: acme   # shown in namespaces
environments:
  default: local
  staging:
    namespace: acme-stg   # keep this one
    pass_env: [CI_COMMIT_SHA]
  production:
    namespace: acme
    context: prod-cluster
helm:
  chart:
    name: acme
    version: 1.0.0
"""


@pytest.fixture
def project(stack):
    (stack / "nself.yml").write_text(COMMENTED)
    (stack / ".env.example").write_text("# copy me\nAPI_URL=http://localhost\n")
    return stack


def test_list(nself, project):
    (project / ".env.staging").write_text("LOG_LEVEL=info\n")
    doc = nself(["env", "list", "--json"], cwd=project).json()
    rows = {r["name"]: r for r in doc["environments"]}
    assert list(rows) == ["local", "staging", "production"]
    assert [rows[n]["namespace"] for n in rows] == ["acme-local", "acme-stg", "acme"]
    assert rows["local"]["default"] and rows["local"]["current"] and not rows["staging"]["default"]
    assert (rows["production"]["target"], rows["staging"]["target"]) == ("k8s", "none")
    assert rows["staging"]["env_file"] == ".env.staging" and rows["local"]["env_file"] is None
    text = nself(["env", "list", "--env", "staging"], cwd=project).out
    assert any(line.split()[0] == "staging" and line.rstrip().endswith("current") for line in text.splitlines())


def test_create_keeps_comments_and_order(nself, project):
    r = nself(["env", "create", "qa", "--from", "staging"], cwd=project)
    assert r.code == 0, r.err
    text = (project / "nself.yml").read_text()
    assert text == COMMENTED.replace("    context: prod-cluster\n",
                                     "    context: prod-cluster\n  qa:\n    pass_env: [CI_COMMIT_SHA]\n")
    assert (project / ".env.qa").read_text() == (project / ".env.example").read_text()
    doc = nself(["env", "list", "--json"], cwd=project).json()
    assert [r["name"] for r in doc["environments"]][-1] == "qa"
    assert nself(["config.get", "namespace", "--env", "qa"], cwd=project).out.strip() == "acme-qa"


def test_create_copies_the_source_env_file(nself, project):
    (project / ".env.staging").write_text("LOG_LEVEL=info\n")
    assert nself(["env.create", "qa", "--from", "staging", "--json"], cwd=project).json()["env_file_from"] == \
        ".env.staging"
    assert (project / ".env.qa").read_text() == "LOG_LEVEL=info\n"


@pytest.mark.parametrize("argv, message", [
    (["env", "create", "staging"], "environment 'staging' already exists"),
    (["env", "create", "prod"], "environment 'prod' already exists"),
    (["env", "create", "Bad_Name"], "is not a valid environment name"),
    (["env", "create", "qa", "--from", "nosuch"], "unknown environment 'nosuch'"),
    (["env", "switch", "nosuch"], "unknown environment 'nosuch'"),
    (["env", "diff", "staging", "nosuch"], "unknown environment 'nosuch'"),
])
def test_refusals_exit_2_and_change_nothing(nself, project, argv, message):
    before = sorted(p.name for p in project.iterdir())
    r = nself(argv, cwd=project)
    assert r.code == 2 and message in r.err and "To fix" in r.err, r.err
    assert (project / "nself.yml").read_text() == COMMENTED
    assert sorted(p.name for p in project.iterdir()) == before


def test_create_refuses_an_existing_env_file(nself, project):
    (project / ".env.qa").write_text("KEEP=1\n")
    r = nself(["env", "create", "qa"], cwd=project)
    assert r.code == 2 and ".env.qa already exists" in r.err
    assert (project / "nself.yml").read_text() == COMMENTED and (project / ".env.qa").read_text() == "KEEP=1\n"


def test_switch_sets_the_default_and_names_what_overrides_it(nself, project):
    r = nself(["env", "switch", "prod", "--json"], cwd=project)
    doc = r.json()
    assert (doc["default"], doc["effective"]) == ("production", "local")   # the fixture's .env has ENV=dev
    assert "ENV in .env" in doc["shadowed_by"]
    assert (project / "nself.yml").read_text() == COMMENTED.replace("default: local", "default: production")
    env = project / ".env"
    env.write_text("".join(line for line in env.read_text().splitlines(True) if not line.startswith("ENV=")))
    doc = nself(["env", "switch", "staging", "--json"], cwd=project).json()
    assert (doc["effective"], doc["shadowed_by"]) == ("staging", None)
    assert nself(["config.get", "environment"], cwd=project).out.strip() == "staging"


def test_diff_masks_secrets_and_shows_what_differs(nself, project):
    (project / ".env.staging").write_text("LOG_LEVEL=debug\nAPI_TOKEN=stg-0a9f8e7d6c\nSAME=1\n")
    (project / ".env.prod").write_text("LOG_LEVEL=info\nAPI_TOKEN=prd-5b4c3d2e1f\nSAME=1\n")
    r = nself(["env", "diff", "staging", "prod", "--json"], cwd=project)
    assert r.code == 0, r.err
    doc = r.json()
    assert (doc["a"], doc["b"]) == ("staging", "production")
    rows = {row["key"]: row for row in doc["variables"]}
    assert (rows["LOG_LEVEL"]["staging"], rows["LOG_LEVEL"]["production"]) == ("debug", "info")
    assert rows["API_TOKEN"]["staging"] == rows["API_TOKEN"]["production"] == "[REDACTED]"
    assert "SAME" not in rows
    settings = {row["key"]: row for row in doc["settings"]}
    assert (settings["namespace"]["staging"], settings["namespace"]["production"]) == ("acme-stg", "acme")
    assert (settings["target"]["staging"], settings["target"]["production"]) == ("none", "k8s")
    text = nself(["env", "diff", "staging", "prod"], cwd=project)
    for out in (r.out + r.err, text.out + text.err):
        assert "stg-0a9f8e7d6c" not in out and "prd-5b4c3d2e1f" not in out
    assert any(line.split() == ["LOG_LEVEL", "debug", "info"] for line in text.out.splitlines())


def test_env_tasks_under_plain_inv(project):
    (project / "tasks.py").write_text("from nself.tasks import namespace\n\nns = namespace()\n")
    inv = os.path.join(os.path.dirname(sys.executable), "inv")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
    r = subprocess.run([inv, "env.create", "qa"], cwd=project, capture_output=True, text=True, env=environ,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "  qa:\n" in (project / "nself.yml").read_text() and "# keep this one" in (project / "nself.yml").read_text()
    r = subprocess.run([inv, "env.create", "qa"], cwd=project, capture_output=True, text=True, env=environ,
                       timeout=60)
    assert r.returncode == 2 and "already exists" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("argv", [
    ["--env", "", "config", "show"],
    ["config", "show", "--env", ""],
    ["--env=", "env", "list"],
    ["--env", " ", "config", "set", "helm.chart.version", "2.0"],
    ["db", "backup", "--env", "", "--dry-run"],
])
def test_an_empty_env_is_refused_not_the_default(nself, project, argv):
    before = (project / "nself.yml").read_text()
    r = nself([*argv, "--json"], cwd=project)
    assert r.code == 2 and "--env needs an environment name" in r.json()["error"], r.out + r.err
    assert (project / "nself.yml").read_text() == before
