"""The branded `nself` program: discovery, global flags, spellings, exit codes."""
import json
import os
import subprocess
import sys

import pytest

from nself import __version__

SECRETS_IN_FIXTURE = ["Zq8pLk2vWn4sTr7yXc1m", "hsr_4f9c2e7a1b6d8f03c5e9a2b7d4f1c8e6",
                      "2b7f9e1c4a8d6f3e0b5c9a7d2e4f1a8c6b3d9e0f7a2c5b8d", "m1n10-S3cr3t-2f8c4a",
                      "ghs_0123456789abcdef0123456789abcdef"]

PROJECT_TASKS = '''
from invoke import task
from nself import runtime
from nself.tasks import namespace


@task(help={"service": "service name"})
def status(c, service=None):
    """Print the service and what followed --."""
    print(f"service={service} remainder={runtime.options(c).remainder!r}")
status.optional_positionals = ("service",)


@task
def settings(c):
    """Print values that come from nself.yml and NSELF_*."""
    print(f"installer={c.config.k8s.k3s_installer} echo={c.config.run.echo}")


@task
def danger(c):
    """Ask before doing something."""
    print("confirmed" if runtime.confirm(c, "Delete everything?") else "declined")


ns = namespace()
ns.add_task(status)
ns.add_task(settings)
ns.add_task(danger)
'''


def test_version(nself, tmp_path):
    r = nself(["--version"], cwd=tmp_path)
    assert r.code == 0 and __version__ in r.out


def test_list_outside_a_project_shows_builtins(nself, tmp_path):
    r = nself(["--list"], cwd=tmp_path)
    assert r.code == 0
    assert "config.validate" in r.out and "config.show" in r.out


def test_project_task_outside_a_project_is_a_configuration_error(nself, tmp_path):
    r = nself(["config.show"], cwd=tmp_path)
    assert r.code == 3 and "not inside an nself project" in r.err and "To fix" in r.err


@pytest.mark.parametrize("argv", [
    ["--json", "config.show"], ["config.show", "--json"], ["config", "show", "--json"],
])
def test_json_flag_anywhere_prints_exactly_one_document(nself, stack, argv):
    r = nself(argv, cwd=stack)
    assert r.code == 0, r.err
    doc = json.loads(r.out)                      # the whole stdout is one document
    assert doc["project"] == "acme" and len(doc["services"]) == 24


def test_secrets_never_appear_in_any_output(nself, stack):
    outputs = [nself(a, cwd=stack) for a in (["config.show"], ["config.show", "--json"],
                                              ["config.get", "variables"],
                                              ["config.get", "services.hasura.environment"],
                                              ["config.validate", "--json"])]
    for r in outputs:
        assert r.code == 0, r.err
        for secret in SECRETS_IN_FIXTURE:
            assert secret not in r.out + r.err
    assert "[REDACTED]" in outputs[1].out


@pytest.mark.parametrize("argv, expected", [
    (["config.get", "namespace"], "acme-local"),
    (["config", "get", "namespace", "--env", "prod"], "acme"),
    (["--env", "staging", "config.get", "namespace"], "acme-stg"),
    (["config.get", "services.postgres.image"], "postgres:16-alpine"),
    (["config.get", "settings.helm.chart.name"], "acme"),
    (["config.get", "run.echo"], "False"),
])
def test_config_get(nself, stack, argv, expected):
    r = nself(argv, cwd=stack)
    assert (r.code, r.out.strip()) == (0, expected), r.err


def test_env_selection_order(nself, stack):
    assert nself(["config.get", "environment"], cwd=stack).out.strip() == "local"
    assert nself(["config.get", "environment"], cwd=stack, env={"ENV": "prod"}).out.strip() == "production"
    assert nself(["config.get", "environment"], cwd=stack,
                 env={"ENV": "prod", "NSELF_ENV": "staging"}).out.strip() == "staging"
    assert nself(["config.get", "environment", "--env", "dev"], cwd=stack,
                 env={"NSELF_ENV": "staging"}).out.strip() == "local"


def test_config_env_lists_the_cascade(nself, stack):
    (stack / ".env.secrets").write_text("EXTRA_TOKEN=abcdefgh\n")
    r = nself(["config.env", "--env", "prod", "--json"], cwd=stack)
    doc = r.json()
    assert doc["environment"] == "production" and doc["chosen_by"] == "--env"
    assert [f["path"].rsplit("/", 1)[1] for f in doc["files"]] == \
        [".env", ".env.prod", ".env.production", ".env.secrets"]
    assert [f["exists"] for f in doc["files"]] == [True, False, False, True]
    assert "EXTRA_TOKEN" in doc["secrets"] and "abcdefgh" not in r.out


def test_validate_reports_every_problem_at_once(nself, stack):
    (stack / "nself.yml").write_text("projcet: {name: x}\nkubernetes: {generate: {replicas: {a: x}}}\n")
    compose = stack / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("    image: postgres:16-alpine",
                                                   "    image: postgres:16-alpine\n    imagee: x", 1))
    r = nself(["config.validate", "--json"], cwd=stack)
    assert r.code == 3
    problems = r.json()["problems"]
    assert any("did you mean 'project'" in p for p in problems)
    assert any("kubernetes.generate.replicas.a" in p for p in problems)
    assert any("'imagee'" in p for p in problems)


def test_validate_strict_fails_on_warnings(nself, stack):
    assert nself(["config.validate"], cwd=stack).code == 0
    r = nself(["config.validate", "--strict"], cwd=stack)
    assert r.code == 3 and "with --strict" in r.err


@pytest.mark.parametrize("argv, message", [
    (["config.show", "--bogus"], "No idea what '--bogus' is"),
    (["config.get"], "'config.get' did not receive required positional arguments: 'key'"),
    (["no.such.task"], "No idea what 'no.such.task' is"),
    (["--quiet", "--verbose", "config.show"], "contradict"),
    (["config.get", "no.such.key"], "no configuration key 'no.such.key'"),
    (["--env", "qa", "config.show"], "unknown environment 'qa'"),
])
def test_argument_errors_exit_2(nself, stack, argv, message):
    r = nself(argv, cwd=stack)
    assert r.code == 2 and message in r.err, r.err


def test_json_errors_are_one_json_document(nself, stack):
    r = nself(["--json", "config.get", "nope"], cwd=stack)
    assert r.code == 2
    assert r.json() == {"error": "no configuration key 'nope'", "code": 2,
                        "hint": r.json()["hint"]}


@pytest.mark.parametrize("argv, env", [
    (["config.get", "nope", "--json"], {}),           # after the task
    (["config.get", "nope"], {"NSELF_JSON": "1"}),    # from the environment
    (["k8s.logs", "--json"], {}),                     # where Invoke would take it as the service
])
def test_json_errors_wherever_json_is_asked_for(nself, stack, argv, env):
    r = nself(argv, cwd=stack, env=env)
    assert r.code == 2 and r.json()["code"] == 2 and r.err == ""


@pytest.mark.parametrize("argv", [["k8s.logs", "--help"], ["cloud.provision", "--help"],
                                  ["k8s.logs", "web", "--help"], ["k8s.scale", "-h"]])
def test_help_after_a_task_shows_its_help_even_with_positionals(nself, stack, argv):
    r = nself(argv, cwd=stack)
    assert r.code == 0 and f"Usage: nself [--core-opts] {argv[0]}" in r.out, r.err


def test_global_flags_after_a_missing_positional_are_global(nself, stack):
    r = nself(["config.get", "--env", "prod", "namespace"], cwd=stack)
    assert r.code == 0 and r.out.strip() == "acme"


def test_unknown_task_suggests_the_close_one(nself, stack):
    r = nself(["k8s.genrate"], cwd=stack)
    assert r.code == 2 and "did you mean `k8s.generate`" in r.err


def test_os_refusals_name_the_path_with_the_right_code(nself, stack, tmp_path):
    (tmp_path / "a-file").write_text("")
    r = nself(["k8s.generate", "--output", str(tmp_path / "a-file" / "k8s")], cwd=stack)
    assert r.code == 1 and "a-file: File exists" in r.err and "internal" not in r.err
    # A read-only mount (a real one, in a private mount namespace): exit 7 with the path.
    target = tmp_path / "ro"
    target.mkdir()
    exe = os.path.join(os.path.dirname(sys.executable), "nself")
    r = subprocess.run(["unshare", "--mount", "sh", "-c", f"mount --bind -o ro {target} {target} && "
                        f"{exe} k8s.generate --output {target}/k8s"], cwd=stack, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 7 and "Read-only file system" in r.stderr and str(target) in r.stderr, r.stderr


def test_the_blueprint_cache_is_optional(nself, tmp_path):
    (tmp_path / "not-a-dir").write_text("")
    r = nself(["new", "demo", "--no-input", "--output", str(tmp_path)], cwd=tmp_path,
              env={"XDG_CACHE_HOME": str(tmp_path / "not-a-dir")})
    assert r.code == 0 and (tmp_path / "demo" / "docker-compose.yml").is_file(), r.err


def test_malformed_nself_yml_is_exit_3_without_traceback(nself, stack):
    (stack / "nself.yml").write_text("project: [\n")
    r = nself(["--list"], cwd=stack)
    assert r.code == 3 and "not valid YAML" in r.err and "Traceback" not in r.err


def project_with_tasks(root):
    (root / "tasks.py").write_text(PROJECT_TASKS)
    (root / "nself.yml").write_text("k8s: {k3s_installer: http://127.0.0.1:9/k3s}\n")
    return root


def test_project_tasks_are_loaded_from_the_root_with_builtins(nself, stack):
    project_with_tasks(stack)
    sub = stack / "deep" / "er"
    sub.mkdir(parents=True)
    r = nself(["--list"], cwd=sub)
    assert r.code == 0
    for name in ("status", "settings", "config.show"):
        assert name in r.out


def test_tasks_py_outside_the_root_is_not_loaded(nself, tmp_path):
    (tmp_path / "tasks.py").write_text("raise SystemExit('must not be imported')\n")
    project = tmp_path / "app"
    project.mkdir()
    (project / "compose.yaml").write_text("services: {web: {image: x}}\n")
    r = nself(["--list"], cwd=project)
    assert r.code == 0 and "config.show" in r.out


def test_broken_tasks_py_is_a_configuration_error(nself, stack):
    (stack / "tasks.py").write_text("import does_not_exist\n")
    r = nself(["--list"], cwd=stack)
    assert r.code == 3 and "tasks.py failed to load" in r.err and "Traceback" not in r.err


def test_nself_yml_and_nself_env_vars_feed_invoke_config(nself, stack):
    project_with_tasks(stack)
    assert nself(["settings"], cwd=stack).out.strip() == "installer=http://127.0.0.1:9/k3s echo=False"
    r = nself(["settings"], cwd=stack, env={"NSELF_K8S_K3S_INSTALLER": "elsewhere", "NSELF_RUN_ECHO": "1"})
    assert r.out.strip() == "installer=elsewhere echo=True"


@pytest.mark.parametrize("argv, expected", [
    (["status"], "service=None remainder=()"),
    (["status", "web"], "service=web remainder=()"),
    (["status", "--service", "web"], "service=web remainder=()"),
    (["status", "web", "--", "psql", "-c", "select 1"], "service=web remainder=('psql', '-c', 'select 1')"),
    (["--json", "status", "db"], "service=db remainder=()"),
])
def test_optional_positionals_and_remainder(nself, stack, argv, expected):
    project_with_tasks(stack)
    r = nself(argv, cwd=stack)
    assert (r.code, r.out.strip()) == (0, expected), r.err


def test_confirmation_without_terminal_needs_yes(nself, stack, monkeypatch):
    project_with_tasks(stack)
    monkeypatch.setattr(sys, "stdin", open(os.devnull))
    r = nself(["danger"], cwd=stack)
    assert r.code == 2 and "pass --yes" in r.err
    r = nself(["danger", "--yes"], cwd=stack)
    assert (r.code, r.out.strip()) == (0, "confirmed")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(nself, tmp_path, shell):
    r = nself(["--print-completion-script", shell], cwd=tmp_path)
    assert r.code == 0 and "nself" in r.out and "--complete" in r.out


def test_completion_candidates_cover_tasks_and_flags(nself, stack):
    r = nself(["--complete", "--", "nself", "config.sh"], cwd=stack)
    assert "config.show" in r.out.split()
    r = nself(["--complete", "--", "nself", "config.show", "--"], cwd=stack)
    assert "--file" in r.out.split() and "--profile" in r.out.split()


def run_console(args, cwd, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
    environ.update(env)
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=environ, timeout=60)


def test_console_script_exit_codes(stack):
    exe = os.path.join(os.path.dirname(sys.executable), "nself")
    assert run_console([exe, "config.validate"], stack).returncode == 0
    (stack / "docker-compose.yml").write_text("services:\n  web:\n    image: ${TAG:?set TAG}\n")
    r = run_console([exe, "config.show"], stack)
    assert r.returncode == 3 and "TAG is unset" in r.stderr and "Traceback" not in r.stderr


def test_plain_inv_loads_nself_yml_through_the_namespace(stack):
    project_with_tasks(stack)
    inv = os.path.join(os.path.dirname(sys.executable), "inv")
    r = run_console([inv, "settings"], stack)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "installer=http://127.0.0.1:9/k3s echo=False"
    r = run_console([inv, "settings"], stack, NSELF_K8S_K3S_INSTALLER="env-wins")
    assert r.stdout.strip() == "installer=env-wins echo=False"
    r = run_console([inv, "config.get", "namespace"], stack, NSELF_ENV="prod")
    assert r.stdout.strip() == "acme-production"


def test_generated_style_override_and_mount():
    from invoke import Collection, task

    from nself.tasks import mount, namespace, override

    @task
    def custom_show(c):
        """Show it my way."""

    base = namespace()
    changed = override(base, "config.show", custom_show)
    assert changed.collections["config"].tasks["show"].body is custom_show.body
    assert base.collections["config"].tasks["show"].body is not custom_show.body  # a copy
    with pytest.raises(KeyError, match="no task 'config.nope'"):
        override(base, "config.nope", custom_show)
    extra = Collection("mine", custom_show)
    assert "mine" in mount(base, extra).collections and "mine" not in base.collections
    with pytest.raises(KeyError, match="is a task"):
        mount(base, Collection("new"))
    # an older project's own `db` collection: merged, its task wins, nself's others stay
    merged = mount(base, Collection("db", custom_show)).collections["db"]
    assert merged.tasks["custom-show"].body is custom_show.body and "query" in merged.tasks
    assert "custom-show" not in base.collections["db"].tasks
    ours = Collection("config", custom_show)
    ours.add_task(custom_show, name="show")
    assert mount(base, ours).collections["config"].tasks["show"].body is custom_show.body


def test_a_deleted_working_directory_is_named(nself, tmp_path, monkeypatch):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    r = nself(["config.show"])
    assert r.code == 1 and "current directory no longer exists" in r.err and "internal" not in r.err


def test_short_flags_keep_one_meaning_across_nself():
    """kubectl's and helm's short flags mean what they mean there; nothing else gets one."""
    from nself.tasks import namespace
    from nself.tasks.flags import CONVENTIONAL

    def tasks(coll):
        yield from coll.tasks.values()
        for sub in coll.collections.values():
            yield from tasks(sub)

    shorts = {(name, arg.name) for task in tasks(namespace()) for arg in task.get_arguments()
              for name in arg.names[1:]}
    assert shorts and all(CONVENTIONAL[attr] == flag for flag, attr in shorts), sorted(shorts)
    assert ("n", "namespace") in shorts and ("e", "environment") in shorts


def test_helm_users_short_namespace_flag(nself, stack):
    shown = nself(["helm.template", "--help"], cwd=stack).out
    assert "-n STRING, --namespace" in shown and "--name=STRING" in shown


def test_a_projects_own_tasks_keep_invokes_short_flags(nself, stack):
    (stack / "tasks.py").write_text(PROJECT_TASKS.replace('def status(c, service=None)',
                                                          'def status(c, service=None, other=None)'))
    assert "-o STRING, --other" in nself(["status", "--help"], cwd=stack).out


def test_ctrl_c_while_nself_starts_is_quiet_exit_130():
    """SIGINT arriving during the imports: exit 130, no KeyboardInterrupt traceback."""
    r = subprocess.run([sys.executable, "-c", "import os, signal, nself.entry\n"
                        "os.kill(os.getpid(), signal.SIGINT)\nimport nself.cli\nprint('went on')"],
                       capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (130, "", "")


def test_ctrl_c_once_running_is_a_keyboard_interrupt_again():
    """After start-up the Program owns Ctrl-C (tasks revert what they began): exit 130 from it."""
    script = ("import atexit, os, signal, sys, nself.entry, nself.cli\n"
              "atexit.register(print, 'cleaned up')   # skipped by the start-up handler's os._exit\n"
              "nself.cli.NselfProgram._run = lambda self, argv: os.kill(os.getpid(), signal.SIGINT)\n"
              "sys.argv = ['nself', '--list']\nnself.entry.main()\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 130 and r.stdout == "cleaned up\n" and "Traceback" not in r.stderr, r
