"""Shell completion (nself/completion/): candidates from the cache, rebuilt when the project
changes, and the bash, zsh and fish scripts driven by the real shells (.ci/run installs them)."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nself.completion import scripts

BIN = Path(sys.executable).parent
TASKS = '''from invoke import task
from nself.tasks import namespace


@task(help={"service": "which service", "target": "where"})
def seed(c, service, target="local"):
    """Load demo data into SERVICE."""


seed.positional = ["service"]
seed.completion = {"target": "environment"}
ns = namespace()
ns.add_task(seed)
'''


@pytest.fixture
def project(stack):
    (stack / ".nself").mkdir(exist_ok=True)
    (stack / ".nself" / "servers.yml").write_text("servers:\n  web1: {host: 127.0.0.1}\n  db1: {host: 127.0.0.2}\n")
    settings = stack / "nself.yml"
    settings.write_text(settings.read_text().replace("  production:\n",
                                                     "  qa:\n    namespace: acme-qa\n  production:\n"))
    return stack


def complete(root, *words, env=None) -> list[str]:
    """The console script, as a shell runs it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
    environ.update(env or {})
    r = subprocess.run([str(BIN / "nself"), "--complete", "--", "nself", *words], cwd=root, capture_output=True,
                       text=True, env=environ, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return r.stdout.split()


SERVICES = {"postgres", "hasura", "auth", "nginx", "minio"}


@pytest.mark.parametrize("words, expected", [
    (["con"], ["config"]),
    (["he"], ["helm", "help"]),
    (["help", "cloud", "pro"], ["providers", "provision"]),
    (["help", "cloud", "provision", ""], []),
    (["config."], ["config.diff", "config.edit", "config.env", "config.export", "config.get", "config.import",
                   "config.list", "config.reset", "config.set", "config.show", "config.validate"]),
    (["config", "s"], ["set", "show"]),
    (["env", ""], ["create", "diff", "list", "switch"]),
    (["--env", ""], ["local", "staging", "production", "qa"]),
    (["config.show", "--env", "q"], ["qa"]),
    (["env", "switch", ""], ["local", "staging", "production", "qa"]),
    (["env.diff", "staging", "p"], ["production"]),
    (["sync.db", "local", "st"], ["staging"]),
    (["deploy", "to", ""], ["local", "staging", "production", "qa"]),
    (["cloud", "servers", "ssh", ""], ["db1", "web1"]),
    (["cloud.servers.status", "--hosts", "w"], ["web1"]),
    (["cloud.provision", "he"], ["hetzner"]),
    (["cloud", "providers", "regions", "lin"], ["linode"]),
    (["helm.status", "--name", ""], ["acme"]),
    (["config.export", "--format", ""], ["yaml", "json", "env"]),
    (["k8s.logs", "--follow", "postgres-"], ["postgres-exporter"]),
    (["k8s", "scale", "hasura", ""], []),
])
def test_candidates(project, words, expected):
    found = complete(project, *words)
    assert sorted(found) == sorted(expected)


def test_services_and_flags(project):
    assert SERVICES <= set(complete(project, "k8s.logs", ""))
    flags = complete(project, "k8s.logs", "--")
    assert {"--follow", "--tail", "--namespace", "--env", "--json"} <= set(flags)
    assert all(f.startswith("--") for f in flags)
    # a group with a default task (list, no positional): its tasks
    assert complete(project, "cloud", "servers", "") == ["add", "destroy", "exec", "list", "logs", "reboot",
                                                         "remove", "ssh", "status"]


def test_a_projects_own_tasks_complete_and_changes_are_seen(project):
    assert "seed" not in complete(project, "see")
    (project / "tasks.py").write_text(TASKS)
    assert complete(project, "see") == ["seed"]
    assert SERVICES <= set(complete(project, "seed", ""))
    assert sorted(complete(project, "seed", "hasura", "--target", "")) == ["local", "production", "qa", "staging"]
    time.sleep(0.01)
    (project / "tasks.py").write_text(TASKS.replace("def seed(", "def plant(").replace("seed.", "plant.")
                                      .replace("add_task(seed)", "add_task(plant)"))
    assert complete(project, "see") == [] and complete(project, "pla") == ["plant"]
    compose = project / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("\n  hasura:\n", "\n  graphql:\n", 1))
    names = set(complete(project, "k8s.logs", ""))
    assert "graphql" in names and "hasura" not in names


def test_the_cache_lives_in_the_project_and_a_broken_project_completes_nothing(project):
    complete(project, "con")
    assert (project / ".nself" / "cache" / "completion.json").is_file()
    (project / "tasks.py").write_text("raise SystemExit('boom')\n")
    assert complete(project, "con") == []
    (project / "tasks.py").write_text("import nope\n")
    assert complete(project, "con") == []


def test_outside_a_project_the_builtins_complete(tmp_path):
    assert complete(tmp_path, "blue") == ["blueprint"]
    assert complete(tmp_path, "--env", "") == []


def test_in_process_and_console_script_agree(nself, project):
    r = nself(["--complete", "--", "nself", "env", ""], cwd=project)
    assert r.code == 0 and r.out.split() == complete(project, "env", "")


# -- the shells -----------------------------------------------------------------------
def shell_env(tmp_path) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
    environ.update(PATH=f"{BIN}{os.pathsep}{environ['PATH']}", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    return environ


def test_bash_completes_through_the_script(project, tmp_path):
    script = tmp_path / "nself.bash"
    script.write_text(scripts.script("bash"))
    line = ('source "$1"; COMP_WORDS=(nself env switch ""); COMP_CWORD=3; _nself_complete; '
            'printf "%s\\n" "${COMPREPLY[@]}"; '
            'COMP_WORDS=(nself k8s.logs post); COMP_CWORD=2; _nself_complete; printf "%s\\n" "${COMPREPLY[@]}"; '
            'complete -p nself')
    r = subprocess.run([shutil.which("bash"), "--norc", "-c", line, "bash", str(script)], cwd=project,
                       capture_output=True, text=True, env=shell_env(tmp_path), timeout=60)
    lines = r.stdout.splitlines()
    assert lines[:6] == ["local", "staging", "production", "qa", "postgres", "postgres-exporter"], r.stderr
    assert lines[6] == "complete -o default -F _nself_complete nself"


def test_zsh_completes_through_the_script(project, tmp_path):
    script = tmp_path / "_nself"
    script.write_text(scripts.script("zsh"))
    # compadd is zsh's completion builtin (only inside the completion system): record what it is given
    line = ('compadd() { print -l -- "${@[$@[(i)--]+1,-1]}"; }; source "$1"; '
            'words=(nself cloud.provision hetz); CURRENT=3; _nself; '
            'words=(nself --env ""); CURRENT=3; _nself')
    r = subprocess.run([shutil.which("zsh"), "-f", "-c", line, "zsh", str(script)], cwd=project,
                       capture_output=True, text=True, env=shell_env(tmp_path), timeout=60)
    assert r.stdout.splitlines() == ["hetzner", "local", "staging", "production", "qa"], r.stderr


def test_fish_completes_through_the_script(project, tmp_path):
    script = tmp_path / "nself.fish"
    script.write_text(scripts.script("fish"))
    line = f"source {script}; complete -C 'nself env switch '; complete -C 'nself cloud.servers.ssh w'"
    r = subprocess.run([shutil.which("fish"), "--no-config", "-c", line], cwd=project,
                       capture_output=True, text=True, env=shell_env(tmp_path), timeout=60)
    assert [w.split("\t")[0] for w in r.stdout.splitlines()] == ["local", "production", "qa", "staging", "web1"], \
        r.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_program_prints_these_scripts(nself, tmp_path, shell):
    assert nself(["--print-completion-script", shell], cwd=tmp_path).out == scripts.script(shell)


def test_unknown_shell_is_exit_2(nself, tmp_path):
    r = nself(["--print-completion-script", "tcsh"], cwd=tmp_path)
    assert r.code == 2 and "bash, zsh or fish" in r.err
