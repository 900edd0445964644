"""Help and discoverability (nself/help.py, nself/legacy.py, the Program's routing): the plan's
five help forms, did-you-mean, legacy aliases forwarding with the plan's warning."""
import json
import os
import subprocess
import sys

import pytest

from nself import legacy

PROJECT_TASKS = '''
from invoke import Collection, task
from nself.tasks import namespace


@task
def seed(c):
    """Load the demo data."""
    print("seeded")


@task(help={"name": "who"})
def hello(c, name):
    """Say hello to NAME."""
    print(f"hello {name}")


@task
def staging(c):
    """The project's own staging task."""
    print("own staging")


ns = namespace()
ns.add_task(seed)
ns.add_collection(Collection("ops", hello))
'''


def section(text: str, title: str) -> list[str]:
    """The lines under `title:` up to the next blank line after its entries."""
    lines = text.splitlines()
    start = lines.index(f"{title}:") + 2
    end = lines.index("", start)
    return lines[start:end]


def test_help_lists_groups_one_line_each_then_global_flags(nself, stack):
    r = nself(["--help"], cwd=stack)
    assert r.code == 0, r.err
    groups = section(r.out, "Groups")
    names = [line.split()[0] for line in groups]
    assert names == ["blueprint", "ci", "cloud", "config", "db", "deploy", "env", "helm", "k8s", "monitor",
                     "service", "sync"]
    assert any(line.split()[0] == "env" and "environments" in line for line in groups)
    assert r.out.index("Groups:") < r.out.index("Global flags:") < r.out.index("Invoke's options:")
    flags = "\n".join(section(r.out, "Global flags"))
    for flag in ("--env", "--json", "--yes", "--dry-run", "--quiet", "--verbose", "--debug"):
        assert flag in flags
    assert "--write-pyc" not in flags and "--write-pyc" in r.out
    assert nself(["help"], cwd=stack).out == r.out


@pytest.mark.parametrize("argv", [["help", "cloud"], ["cloud", "--help"], ["--help", "cloud"], ["cloud", "-h"]])
def test_group_help_forms_agree(nself, stack, argv):
    r = nself(argv, cwd=stack)
    assert r.code == 0, r.err
    assert r.out.startswith("Usage: nself cloud TASK")
    assert [line.split()[0] for line in section(r.out, "Groups")] == ["costs", "k8s", "providers", "servers"]
    tasks = section(r.out, "Tasks")
    assert len(tasks) == 1 and tasks[0].split()[0] == "provision" and "Create a server" in tasks[0]


@pytest.mark.parametrize("argv", [["help", "k8s", "ingress"], ["k8s.ingress", "--help"], ["k8s", "ingress", "--help"]])
def test_nested_group_help_forms_agree(nself, stack, argv):
    r = nself(argv, cwd=stack)
    assert r.code == 0 and r.out.startswith("Usage: nself k8s ingress TASK"), (r.out, r.err)


def test_nested_group_help_marks_the_default(nself, stack):
    r = nself(["help", "cloud", "servers"], cwd=stack)
    assert r.code == 0
    assert any(line.split()[:2] == ["list", "(default)"] for line in section(r.out, "Tasks"))


@pytest.mark.parametrize("argv", [["help", "cloud", "provision"], ["cloud", "provision", "--help"],
                                  ["help", "cloud.provision"], ["--help", "cloud.provision"]])
def test_task_help_forms_agree(nself, stack, argv):
    r = nself(argv, cwd=stack)
    assert r.code == 0, r.err
    assert r.out.startswith("Usage: nself [--core-opts] cloud.provision")
    assert "--region" in r.out and "Create a server at a provider" in r.out


def test_a_bare_group_without_a_default_task_shows_its_help(nself, stack):
    r = nself(["config"], cwd=stack)
    assert r.code == 0 and r.out.startswith("Usage: nself config TASK")
    assert {"set", "list", "export", "import", "reset", "diff", "edit"} <= \
        {line.split()[0] for line in section(r.out, "Tasks")}


@pytest.mark.parametrize("argv, guess", [
    (["help", "confg"], "`config`"), (["help", "cloud", "provison"], "`cloud provision`"),
    (["confg", "--help"], "`config`"), (["cloud", "provison"], "`cloud provision`"),
    (["env", "swich", "qa"], "`env switch`"),
])
def test_unknown_groups_and_tasks_say_did_you_mean(nself, stack, argv, guess):
    r = nself(argv, cwd=stack)
    assert r.code == 2 and f"did you mean {guess}" in r.err, r.err


def test_help_as_json(nself, stack):
    doc = nself(["help", "--json"], cwd=stack).json()
    assert "env" in [g["name"] for g in doc["groups"]] and [t["name"] for t in doc["tasks"]] == ["doctor", "new"]
    doc = nself(["help", "env", "--json"], cwd=stack).json()
    assert [t["name"] for t in doc["tasks"]] == ["create", "diff", "list", "switch"]
    doc = nself(["help", "env", "create", "--json"], cwd=stack).json()
    assert doc["task"] == "env.create" and doc["positional"] == ["name"]
    for flags in (["--json"], ["--json", "--env", "staging"], ["--env=staging", "--json"]):
        assert nself(["help", *flags, "env", "create"], cwd=stack).json()["task"] == "env.create", flags
    assert any("--from" in o["flag"] for o in doc["options"])


def test_help_shows_a_projects_own_tasks_and_groups(nself, stack):
    (stack / "tasks.py").write_text(PROJECT_TASKS)
    r = nself(["help"], cwd=stack)
    assert "ops" in [line.split()[0] for line in section(r.out, "Groups")]
    assert any(line.split()[0] == "seed" and "Load the demo data." in line for line in section(r.out, "Tasks"))
    r = nself(["ops", "--help"], cwd=stack)
    assert r.code == 0 and "Say hello to NAME." in r.out


# -- legacy aliases -----------------------------------------------------------------
def test_the_alias_table_is_the_plans():
    assert {a: " ".join(t) for a, t in legacy.ALIASES.items()} == {
        "staging": "deploy staging", "prod": "deploy prod", "providers": "cloud providers",
        "provision": "cloud provision", "servers": "cloud servers", "email": "service email",
        "search": "service search", "functions": "service functions", "mlflow": "service mlflow",
        "admin": "service admin", "metrics": "monitor", "monitor": "monitor open"}


@pytest.mark.parametrize("alias, new", [(["servers", "list"], ["cloud", "servers", "list"]),
                                        (["providers"], ["cloud", "providers"]),
                                        (["servers"], ["cloud", "servers"])])
def test_an_alias_forwards_with_the_warning_and_the_same_result(nself, stack, alias, new):
    r = nself([*alias, "--json"], cwd=stack)
    target = nself([*new, "--json"], cwd=stack)
    assert (r.code, r.out) == (target.code, target.out) and r.code == 0
    assert r.err == (f"Warning: 'nself {alias[0]}' is deprecated. Use 'nself {' '.join(legacy.ALIASES[alias[0]])}' "
                     "instead. This alias will be removed in v0.5.0\n")
    assert target.err == ""


@pytest.mark.parametrize("alias, new, code", [
    (["provision", "hetzner", "--name", "web1"], ["cloud", "provision", "hetzner", "--name", "web1"], 2),
    (["staging", "--dry-run"], ["deploy", "staging", "--dry-run"], 3),
    (["prod", "--bogus"], ["deploy", "prod", "--bogus"], 2),
])
def test_an_alias_fails_like_its_target(nself, stack, alias, new, code):
    r, target = nself(alias, cwd=stack), nself(new, cwd=stack)
    assert r.code == target.code == code
    warning, rest = r.err.split("\n", 1)
    assert warning.startswith(f"Warning: 'nself {alias[0]}' is deprecated.") and rest == target.err


def test_the_old_monitor_alias_leads_to_a_command_not_built_yet(nself, stack):
    r = nself(["monitor", "grafana"], cwd=stack)   # old `nself monitor grafana` → `monitor open grafana`
    assert r.code == 2 and "Traceback" not in r.err
    assert r.err.startswith("Warning: 'nself monitor' is deprecated. Use 'nself monitor open'")
    assert "'nself monitor open' is not built yet" in r.err and "issue 15" in r.err


def test_metrics_runs_the_monitor_group(nself, stack):
    r, target = nself(["metrics", "status", "--json"], cwd=stack), nself(["monitor", "status", "--json"], cwd=stack)
    assert r.code == target.code and r.out == target.out and "profile" in r.json()
    assert r.err.startswith("Warning: 'nself metrics' is deprecated. Use 'nself monitor' instead.")


def test_planned_sub_commands_are_refused_plainly(nself, stack):
    r = nself(["service", "mlflow", "runs"], cwd=stack)
    assert r.code == 2 and "'nself service mlflow runs' is not built yet" in r.err and "Warning" not in r.err


@pytest.mark.parametrize("alias", ["email", "search", "functions", "mlflow", "admin"])
def test_service_aliases_run_the_service_group(nself, tmp_path, alias):
    """`nself search enable` is `nself service search enable` (on a project without it)."""
    made = [nself(["new", f"p{i}", "--no-input", "--extra", "mailpit=false"], cwd=tmp_path) for i in (1, 2)]
    assert all(m.code == 0 for m in made)
    r = nself([alias, "enable", "--json"], cwd=tmp_path / "p1")
    target = nself(["service", alias, "enable", "--json"], cwd=tmp_path / "p2")
    assert r.code == target.code == 0, r.err
    assert r.json() == target.json() and r.json()["state"] == "enabled"
    assert r.err.startswith(f"Warning: 'nself {alias}' is deprecated. Use 'nself service {alias}' instead.")


def test_the_new_monitor_group_is_not_taken_for_the_alias(nself, stack):
    r = nself(["monitor", "status", "--json"], cwd=stack)
    assert "Warning" not in r.err and r.json()["environment"] == "local"


def test_aliases_are_hidden_from_list_and_shown_in_help_legacy(nself, stack):
    listed = {line.split()[0] for line in nself(["--list"], cwd=stack).out.splitlines()[1:] if line.strip()}
    assert not listed & set(legacy.ALIASES)
    r = nself(["help", "legacy"], cwd=stack)
    assert r.code == 0
    for alias, target in legacy.ALIASES.items():
        assert any(line.split()[:2] == [alias, "→"] and line.endswith(f"nself {' '.join(target)}")
                   for line in r.out.splitlines()), alias
    assert [row["alias"] for row in nself(["help", "legacy", "--json"], cwd=stack).json()["legacy"]] == \
        list(legacy.ALIASES)


def test_a_projects_own_task_wins_over_an_alias(nself, stack):
    (stack / "tasks.py").write_text(PROJECT_TASKS.replace("ns.add_task(seed)",
                                                          "ns.add_task(seed)\nns.add_task(staging)"))
    r = nself(["staging"], cwd=stack)
    assert (r.code, r.out.strip(), r.err) == (0, "own staging", "")


def test_the_console_script_forwards_with_the_exit_code(stack):
    exe = os.path.join(os.path.dirname(sys.executable), "nself")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
    r = subprocess.run([exe, "staging"], cwd=stack, capture_output=True, text=True, env=environ, timeout=60)
    assert r.returncode == 3 and r.stderr.startswith("Warning: 'nself staging' is deprecated.")
    assert "environment 'staging' has no deploy target" in r.stderr
    r = subprocess.run([exe, "servers", "list", "--json"], cwd=stack, capture_output=True, text=True,
                       env=environ, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout) == []


@pytest.mark.parametrize("argv", [["deploy.to", "--help"], ["deploy", "to", "--help"], ["help", "deploy", "to"],
                                  ["deploy.to", "staging", "--help"]])
def test_task_help_shows_each_options_help(nself, stack, argv):
    """Invoke pops an option's help as it builds the arguments: a first look must not use it up."""
    r = nself(argv, cwd=stack)
    assert r.code == 0 and "hosts at once" in r.out and "only this service" in r.out, r.out
