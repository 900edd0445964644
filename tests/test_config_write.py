"""config set/reset/list/edit/diff/export/import through the CLI (nself/project/configure.py,
nself/project/edit.py): nself.yml kept as written, validated before it is written, atomic,
secrets masked."""
import json
import os
import stat

import pytest
import yaml

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
providers:
  default: hetzner
  api_token: tok-9c8b7a6f5e
helm:
  chart:
    name: acme
    version: 1.0.0
"""


@pytest.fixture
def project(stack):
    (stack / "nself.yml").write_text(COMMENTED)
    (stack / "nself.yml").chmod(0o640)
    return stack


def nself_yml(project) -> str:
    return (project / "nself.yml").read_text()


def test_set_keeps_comments_and_types_values_by_the_schema(nself, project):
    r = nself(["config", "set", "helm.chart.version", "2.0", "--json"], cwd=project)
    assert r.code == 0, r.err
    assert r.json() == {"key": "helm.chart.version", "old": "1.0.0", "new": "2.0",
                        "file": str(project / "nself.yml")}
    assert nself_yml(project) == COMMENTED.replace("version: 1.0.0", "version: '2.0'")   # text, not 2.0 the float
    assert nself(["config", "set", "environments.staging.replicas", "3"], cwd=project).code == 0
    assert "    replicas: 3\n" in nself_yml(project)
    assert nself(["config.get", "settings.environments.staging.replicas"], cwd=project).out.strip() == "3"
    assert stat.S_IMODE((project / "nself.yml").stat().st_mode) == 0o640   # the file's mode is kept


def test_writes_replace_the_file_by_rename(nself, project):
    """A reader sees the old file or the new one, never half of it: the new text is written beside
    it and renamed over it (a new inode), and no temporary file is left."""
    before = (project / "nself.yml").stat().st_ino
    assert nself(["config", "set", "helm.chart.version", "2.0"], cwd=project).code == 0
    assert (project / "nself.yml").stat().st_ino != before
    assert [p.name for p in project.iterdir() if p.name.startswith(".nself.yml")] == []


def test_set_creates_the_sections_on_the_way(nself, project):
    assert nself(["config", "set", "deploy.keep_releases", "7"], cwd=project).code == 0
    assert nself_yml(project).endswith("deploy:\n  keep_releases: 7\n")


@pytest.mark.parametrize("argv, code, message", [
    (["config", "set", "helm.chart.vresion", "1"], 2, "did you mean 'helm.chart.version'"),
    (["config", "set", "projcet.name", "x"], 2, "did you mean 'project'"),
    (["config", "set", "helm..version", "1"], 2, "is not a key"),
    (["config", "set", "environments.staging.replicas", "many"], 3, "environments.staging.replicas: expected integer"),
    (["config", "set", "project.name", "Not A Name"], 3, "project.name"),
    (["config", "reset", "helm.chart.description"], 2, "'helm.chart.description' is not set"),
    (["config", "reset", "helm.chrat"], 2, "did you mean 'helm.chart'"),
])
def test_refused_changes_leave_the_file_as_it_was(nself, project, argv, code, message):
    r = nself(argv, cwd=project)
    assert r.code == code and message in r.err and "To fix" in r.err, r.err
    assert nself_yml(project) == COMMENTED
    assert sorted(p.name for p in project.iterdir() if p.name.startswith(".nself.yml")) == []


def test_reset_removes_the_key_and_empty_parents(nself, project):
    assert nself(["config", "reset", "helm.chart.version"], cwd=project).code == 0
    assert nself_yml(project) == COMMENTED.replace("    version: 1.0.0\n", "")
    assert nself(["config", "reset", "helm.chart.name"], cwd=project).code == 0
    assert "helm" not in yaml.safe_load(nself_yml(project))


def test_list_masks_secrets(nself, project):
    r = nself(["config", "list", "--json"], cwd=project)
    keys = {row["key"]: row["value"] for row in r.json()["keys"]}
    assert keys["helm.chart.version"] == "1.0.0" and keys["environments.staging.pass_env"] == ["CI_COMMIT_SHA"]
    assert keys["providers.api_token"] == "[REDACTED]"
    text = nself(["config", "list"], cwd=project).out
    assert "tok-9c8b7a6f5e" not in r.out + text and "environments.staging.namespace" in text


def editor(project, script: str) -> dict:
    path = project.parent / "fake-editor"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return {"EDITOR": str(path)}


def test_edit_writes_back_a_valid_edit(nself, project):
    env = editor(project, 'sed -i "s/acme-stg/acme-staging/" "$1"\n')
    r = nself(["config", "edit", "--json"], cwd=project, env=env)
    assert r.code == 0 and r.json()["changed"] is True, r.err
    assert nself_yml(project) == COMMENTED.replace("acme-stg", "acme-staging")
    assert not (project / ".nself.yml.edit.yml").exists()


def test_edit_refuses_an_invalid_edit_and_keeps_the_draft(nself, project):
    env = editor(project, 'sed -i "s/^project:/projcet:/" "$1"\n')
    r = nself(["config", "edit"], cwd=project, env=env)
    assert r.code == 3 and "did you mean 'project'" in r.err and "nself.yml was not changed" in r.err
    assert nself_yml(project) == COMMENTED
    draft = project / ".nself.yml.edit.yml"
    assert "projcet:" in draft.read_text() and str(draft) in r.err


def test_edit_can_fix_a_file_that_does_not_validate(nself, project):
    (project / "nself.yml").write_text(COMMENTED.replace("project:", "projcet:"))
    assert nself(["config", "list"], cwd=project).code == 3
    r = nself(["config", "edit"], cwd=project, env=editor(project, 'sed -i "s/^projcet:/project:/" "$1"\n'))
    assert r.code == 0 and nself_yml(project) == COMMENTED, r.err


def test_edit_without_change_or_editor(nself, project):
    r = nself(["config", "edit", "--json"], cwd=project, env=editor(project, "exit 0\n"))
    assert r.json() == {"file": str(project / "nself.yml"), "changed": False, "reason": "no change"}
    os.environ.pop("VISUAL", None)
    r = nself(["config", "edit"], cwd=project, env={"EDITOR": ""})
    assert r.code == 2 and "$EDITOR" in r.err


def test_diff_compares_env_with_another(nself, project):
    (project / ".env.staging").write_text("LOG_LEVEL=debug\n")
    (project / ".env.prod").write_text("LOG_LEVEL=info\n")
    via_config = nself(["config", "diff", "production", "--env", "staging", "--json"], cwd=project).json()
    via_env = nself(["env", "diff", "staging", "production", "--json"], cwd=project).json()
    assert via_config == via_env and via_config["variables"]


def test_export_masks_secrets_unless_asked(nself, project):
    (project / ".env.secrets").write_text("EXPORT_PASSWORD=pw-1a2b3c4d5e\n")
    doc = yaml.safe_load(nself(["config", "export"], cwd=project).out)
    assert doc["environment"] == "local" and doc["settings"]["helm"]["chart"]["version"] == "1.0.0"
    assert doc["variables"]["EXPORT_PASSWORD"] == "[REDACTED]" and doc["settings"]["providers"]["api_token"] == \
        "[REDACTED]"
    full = json.loads(nself(["config", "export", "--format", "json", "--include-secrets"], cwd=project).out)
    assert full["variables"]["EXPORT_PASSWORD"] == "pw-1a2b3c4d5e"
    assert full["settings"]["providers"]["api_token"] == "tok-9c8b7a6f5e"
    assert json.loads(nself(["config", "export", "--json"], cwd=project).out)["variables"]["EXPORT_PASSWORD"] == \
        "[REDACTED]"
    env_text = nself(["config", "export", "--format", "env"], cwd=project).out
    assert "# EXPORT_PASSWORD=[REDACTED]" in env_text and "PROJECT_NAME=acme\n" in env_text
    assert "pw-1a2b3c4d5e" not in env_text
    r = nself(["config", "export", "--format", "toml"], cwd=project)
    assert r.code == 2 and "yaml, json or env" in r.err


def test_import_merges_keeps_comments_and_validates(nself, project, tmp_path):
    incoming = tmp_path / "in.yml"
    incoming.write_text("helm:\n  chart:\n    version: 3.1.0\nenvironments:\n  qa:\n    namespace: acme-qa\n")
    r = nself(["config", "import", str(incoming), "--json"], cwd=project)
    assert r.code == 0 and r.json()["changed"] == ["helm.chart.version", "environments.qa"], r.err
    text = nself_yml(project)
    assert "version: 3.1.0" in text and "# keep this one" in text and "  qa:\n    namespace: acme-qa\n" in text
    bad = tmp_path / "bad.yml"
    bad.write_text("helm:\n  chart:\n    versoin: 3\n")
    before = nself_yml(project)
    r = nself(["config", "import", str(bad)], cwd=project)
    assert r.code == 3 and "did you mean 'version'" in r.err and nself_yml(project) == before
    r = nself(["config", "import", str(tmp_path / "missing.yml")], cwd=project)
    assert r.code == 2 and "no such file" in r.err


def test_an_export_imports_back_only_with_its_secrets(nself, project, tmp_path):
    masked = tmp_path / "masked.yml"
    masked.write_text(nself(["config", "export"], cwd=project).out)
    r = nself(["config", "import", str(masked)], cwd=project)
    assert r.code == 3 and "[REDACTED]" in r.err and nself_yml(project) == COMMENTED
    full = tmp_path / "full.yml"
    full.write_text(nself(["config", "export", "--include-secrets"], cwd=project).out)
    r = nself(["config", "import", str(full), "--json"], cwd=project)
    assert (r.code, r.json()["changed"]) == (0, []) and nself_yml(project) == COMMENTED


def test_config_set_under_plain_inv(project):
    import subprocess
    import sys

    (project / "tasks.py").write_text("from nself.tasks import namespace\n\nns = namespace()\n")
    inv = os.path.join(os.path.dirname(sys.executable), "inv")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
    r = subprocess.run([inv, "config.set", "helm.chart.version", "2.0"], cwd=project, capture_output=True,
                       text=True, env=environ, timeout=60)
    assert r.returncode == 0 and nself_yml(project) == COMMENTED.replace("version: 1.0.0", "version: '2.0'"), \
        r.stderr
    r = subprocess.run([inv, "config.set", "helm.chart.vresion", "2"], cwd=project, capture_output=True,
                       text=True, env=environ, timeout=60)
    assert r.returncode == 2 and "did you mean 'helm.chart.version'" in r.stderr and "Traceback" not in r.stderr


# -- every write validates as the loader does (Invoke's and the collections' defaults too) ----
@pytest.mark.parametrize("argv", [
    ["config", "set", "run.echo", "notabool"],
    ["config", "set", "run.echo", "5"],
    ["config", "set", "tasks.dedupe", "maybe"],
    ["config", "set", "k8s.k3s_installer", "[1,2]"],
    ["config", "set", "run", "5"],
])
def test_a_write_the_loader_would_refuse_is_refused_and_changes_nothing(nself, project, argv):
    """`run.echo notabool` passed the settings schema (Invoke's keys are free-form) and was
    written; then every command, this one included, refused the file. The write path runs the
    Program's check of values against Invoke's and the collections' defaults as well."""
    r = nself(argv, cwd=project)
    assert r.code == 3 and "expected" in r.err, r.err
    assert nself_yml(project) == COMMENTED
    assert nself(["config", "list"], cwd=project).code == 0


def test_import_and_edit_refuse_what_the_loader_would(nself, project, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("run: {echo: nope}\n")
    r = nself(["config", "import", str(bad)], cwd=project)
    assert r.code == 3 and "run.echo: expected a boolean" in r.err and nself_yml(project) == COMMENTED, r.err
    r = nself(["config", "edit"], cwd=project, env=editor(project, 'printf "tasks: {dedupe: maybe}\\n" >> "$1"\n'))
    assert r.code == 3 and "tasks.dedupe" in r.err and nself_yml(project) == COMMENTED, r.err


@pytest.mark.parametrize("broken, argv", [
    ("run:\n  echo: notabool\n", ["config", "set", "run.echo", "true"]),
    ("run:\n  echo: notabool\n", ["config", "reset", "run.echo"]),
    ("run: 5\n", ["config", "reset", "run"]),
    ("k8s:\n  k3s_installer: [1, 2]\n", ["config", "set", "k8s.k3s_installer", "https://get.k3s.io"]),
    ("deploy:\n  keep_releases: many\n", ["config", "set", "deploy.keep_releases", "2"]),
])
def test_set_and_reset_repair_a_file_that_fails_to_load(nself, project, broken, argv):
    (project / "nself.yml").write_text(COMMENTED + broken)
    assert nself(["config", "list"], cwd=project).code == 3
    r = nself(argv, cwd=project)
    assert r.code == 0, r.err
    assert nself(["config", "list"], cwd=project).code == 0


def test_a_repair_that_does_not_repair_changes_nothing(nself, project):
    (project / "nself.yml").write_text(COMMENTED + "run:\n  echo: notabool\n")
    r = nself(["config", "set", "helm.chart.version", "2.0"], cwd=project)
    assert r.code == 3 and "run.echo" in r.err
    assert nself_yml(project) == COMMENTED + "run:\n  echo: notabool\n"
    r = nself(["config", "edit"], cwd=project, env=editor(project, 'sed -i "s/^run:/runn:/" "$1"\n'))
    assert r.code == 3 and nself_yml(project) == COMMENTED + "run:\n  echo: notabool\n"
    r = nself(["config", "edit"], cwd=project, env=editor(project, 'sed -i "s/notabool/true/" "$1"\n'))
    assert r.code == 0 and nself_yml(project) == COMMENTED + "run:\n  echo: true\n", r.err


def test_get_masks_secrets_by_the_rule_of_list_and_export(nself, project):
    (project / "nself.yml").write_text(COMMENTED + "sudo:\n  password: sudo-pw-77aa\nx-api-token: xt-55bb\n")
    for argv, shown in [(["sudo.password"], "[REDACTED]"), (["settings.x-api-token"], "[REDACTED]"),
                        (["settings.providers.api_token"], "[REDACTED]"), (["sudo.prompt"], "[sudo] password: ")]:
        r = nself(["config", "get", *argv, "--json"], cwd=project)
        assert r.code == 0 and r.json()["value"] == shown, r.out + r.err
        text = nself(["config", "get", *argv], cwd=project)
        assert text.out == shown + "\n", text.out
    whole = nself(["config", "get", "sudo", "--json"], cwd=project).json()["value"]
    assert whole["password"] == "[REDACTED]" and whole["prompt"] == "[sudo] password: "
    shown = "".join(nself(["config", "get", k], cwd=project).out for k in ("sudo", "settings", "settings.providers"))
    assert not {"sudo-pw-77aa", "xt-55bb", "tok-9c8b7a6f5e"} & set(shown.split()) and "sudo-pw-77aa" not in shown


def test_dry_run_prints_the_plan_of_each_write_and_writes_nothing(nself, project, tmp_path):
    incoming = tmp_path / "in.yml"
    incoming.write_text("helm:\n  chart:\n    version: 3.1.0\n")
    runs = [
        (["config", "set", "helm.chart.version", "2.0"], "helm.chart.version: '1.0.0' → '2.0'"),
        (["config", "reset", "helm.chart.version"], "helm.chart.version: '1.0.0' → (unset)"),
        (["config", "import", str(incoming)], "helm.chart.version: '1.0.0' → '3.1.0'"),
        (["config", "set", "providers.api_token", "tok-new-31337"], "providers.api_token: '[REDACTED]' → '[REDACTED]'"),
        (["env", "switch", "staging"], "environments.default: 'local' → 'staging'"),
        (["env", "create", "qa", "--from", "staging"], "environments.qa.pass_env: (unset) → ['CI_COMMIT_SHA']"),
    ]
    (project / ".env.staging").write_text("STAGE=1\n")
    for argv, change in runs:
        for flags in ([], ["--json"]):
            r = nself(["--dry-run", *argv, *flags], cwd=project)
            assert r.code == 0, r.err
            assert nself_yml(project) == COMMENTED and not (project / ".env.qa").exists(), argv
            assert "tok-new-31337" not in r.out + r.err and "tok-9c8b7a6f5e" not in r.out
            if flags:
                steps = r.json()["plan"]["steps"]
                assert steps[0]["kind"] == "put" and steps[0]["path"] == str(project / "nself.yml")
                assert change in steps[0]["summary"], steps
            else:
                assert r.out.startswith("Plan: change nself.yml") and change in r.out, r.out
    r = nself(["env", "create", "qa", "--from", "staging", "--dry-run", "--json"], cwd=project)
    assert r.json()["plan"]["steps"][1]["path"] == str(project / ".env.qa")
    r = nself(["config", "edit", "--dry-run"], cwd=project, env=editor(project, 'sed -i "s/acme-stg/acme-s2/" "$1"\n'))
    assert r.code == 0 and "environments.staging.namespace: 'acme-stg' → 'acme-s2'" in r.out, r.out + r.err
    assert nself_yml(project) == COMMENTED and not (project / ".nself.yml.edit.yml").exists()


def test_a_dry_run_of_an_invalid_write_is_refused_like_the_write(nself, project):
    r = nself(["config", "set", "run.echo", "notabool", "--dry-run"], cwd=project)
    assert r.code == 3 and "run.echo" in r.err and nself_yml(project) == COMMENTED
