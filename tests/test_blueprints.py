"""`nself new`, blueprint.add/list/update/check, and the generated project working for real."""
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

BIN = os.path.dirname(sys.executable)


def console(args, cwd, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
    environ.update(env)
    return subprocess.run([os.path.join(BIN, args[0]), *args[1:]], cwd=cwd, capture_output=True,
                          text=True, env=environ, timeout=120)


@pytest.fixture
def demo(tmp_path, nself):
    r = nself(["new", "demo", "--no-input"], cwd=tmp_path)
    assert r.code == 0, r.err
    return tmp_path / "demo"


def test_new_project_files_and_secrets(demo):
    for rel in ("tasks.py", "nself.yml", "docker-compose.yml", ".env", ".env.example", ".env.secrets",
                ".gitignore", "README.md", "nginx/nginx.conf", ".nself/blueprints/project/answers.json"):
        assert (demo / rel).is_file(), rel
    secrets = demo / ".env.secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    values = dict(line.split("=", 1) for line in secrets.read_text().splitlines() if "=" in line)
    assert {"POSTGRES_PASSWORD", "HASURA_GRAPHQL_ADMIN_SECRET", "AUTH_JWT_SECRET"} <= set(values)
    for value in values.values():                                # random, not a placeholder
        assert len(value) >= 32 and len(set(value)) >= 16, value
    assert len(set(values.values())) == len(values)            # each one fresh
    assert not any(name in (demo / ".env").read_text() for name in values)
    gitignore = (demo / ".gitignore").read_text().split()
    assert {".env.local", ".env.secrets", ".nself/cache/", ".nself/state/"} <= set(gitignore)


def test_plain_inv_reports_errors_with_their_exit_code(demo):
    """Under `inv` (Invoke's own Program) a refusal ends like under nself: the message with its
    fix on stderr, the documented exit code, no traceback."""
    for args, code, words in ((["cloud.servers.remove", "nope"], 2, "no server named 'nope'"),
                              (["cloud.k8s.create", "hetzner", "--name", "abc", "--region", "fsn1"], 8,
                               "has no managed Kubernetes")):
        r = console(["inv", *args], demo)
        assert r.returncode == code, r.stderr
        assert words in r.stderr and "To fix:" in r.stderr and "Traceback" not in r.stderr


def test_two_projects_get_different_secrets(tmp_path, nself):
    for name in ("one", "two"):
        assert nself(["new", name, "--no-input"], cwd=tmp_path).code == 0
    assert (tmp_path / "one/.env.secrets").read_text() != (tmp_path / "two/.env.secrets").read_text()


def test_new_project_works_with_nself_and_inv(demo, nself, validate_objects):
    for tool in ("nself", "inv"):
        r = console([tool, "--list"], demo)
        assert r.returncode == 0, r.stderr
        for name in ("demo.seed", "db.seed", "config.validate", "k8s.generate", "helm.init"):
            assert name in r.stdout, (tool, name)
    assert console(["inv", "demo.seed", "--sample", "3"], demo).stdout.strip() == "seeding 3 rows into demo"
    assert nself(["config.validate"], cwd=demo).code == 0
    assert nself(["k8s.generate"], cwd=demo).code == 0
    assert nself(["helm.init"], cwd=demo).code == 0
    r = nself(["k8s.generate", "--plain", "--env", "production"], cwd=demo)
    docs = [d for d in yaml.safe_load_all(r.out) if d]
    validate_objects(docs)
    assert any(d["kind"] == "Ingress" and d["metadata"]["name"] == "nginx" for d in docs)


def test_minimal_stack_and_options(tmp_path, nself):
    r = nself(["new", "tiny", "--no-input", "--extra", "stack=minimal", "--extra", "provider=linode"],
              cwd=tmp_path)
    assert r.code == 0, r.err
    compose = yaml.safe_load((tmp_path / "tiny/docker-compose.yml").read_text())
    assert list(compose["services"]) == ["postgres"]
    assert yaml.safe_load((tmp_path / "tiny/nself.yml").read_text())["providers"]["default"] == "linode"
    r = nself(["new", "lean", "--no-input", "--extra", "redis=no", "--extra", "monitoring=yes"], cwd=tmp_path)
    services = yaml.safe_load((tmp_path / "lean/docker-compose.yml").read_text())["services"]
    assert "redis" not in services and {"prometheus", "grafana"} <= set(services)
    assert "GRAFANA_ADMIN_PASSWORD" in (tmp_path / "lean/.env.secrets").read_text()
    assert nself(["config.validate"], cwd=tmp_path / "lean").code == 0


def test_minimal_stack_takes_the_services_asked_for(tmp_path, nself):
    r = nself(["new", "lean", "--no-input", "--extra", "stack=minimal", "--extra", "redis=yes",
               "--extra", "functions=yes"], cwd=tmp_path)
    assert r.code == 0, r.err
    compose = yaml.safe_load((tmp_path / "lean/docker-compose.yml").read_text())
    assert list(compose["services"]) == ["postgres", "redis", "functions"]
    assert list(compose["volumes"]) == ["postgres_data", "redis_data"]
    assert "REDIS_PASSWORD" in (tmp_path / "lean/.env.secrets").read_text()
    assert nself(["config.validate"], cwd=tmp_path / "lean").code == 0


def test_new_answered_on_a_terminal_keeps_every_answer(tmp_path):
    """The questions asked on a real terminal: minimal stack, then yes to four services."""
    answers = ["", "2", "", "n", "y", "n", "y", "y", "y", ""]   # name .. provider, in prompt order
    code, shown = _on_terminal([str(Path(sys.executable).with_name("nself")), "new", "asked"], tmp_path,
                               "".join(a + "\n" for a in answers))
    assert code == 0, shown
    services = yaml.safe_load((tmp_path / "asked/docker-compose.yml").read_text())["services"]
    assert set(services) == {"postgres", "redis", "meilisearch", "functions", "prometheus", "grafana"}
    secrets = (tmp_path / "asked/.env.secrets").read_text()
    assert "MEILI_MASTER_KEY" in secrets and "MINIO_ROOT_PASSWORD" not in secrets


def _on_terminal(argv, cwd, typed: str) -> tuple[int, str]:
    """Run argv on a pseudo-terminal with `typed` as the keyboard; (exit code, screen)."""
    import pty
    import select

    main, child = pty.openpty()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=child, stdout=child, stderr=child, close_fds=True)
    os.close(child)
    os.write(main, typed.encode())
    screen = b""
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        try:
            chunk = os.read(main, 4096) if ready else b""
        except OSError:                       # the child closed the terminal
            chunk = b""
        if not chunk:
            break
        screen += chunk
    os.close(main)
    return proc.wait(timeout=60), screen.decode(errors="replace")


@pytest.mark.parametrize("argv, code, message", [
    (["new", "Bad_Name", "--no-input"], 2, "not a valid project name"),
    (["new", "ok", "--no-input", "--extra", "colour=blue"], 2, "not a variable of the project blueprint"),
    (["new", "ok", "--no-input", "--extra", "redis=maybe"], 2, "redis is yes or no"),
    (["new", "ok", "--no-input", "--extra", "stack=huge"], 2, "stack is one of full, minimal"),
    (["new", "ok"], 2, "pass --no-input"),
])
def test_new_refuses_bad_input(tmp_path, nself, argv, code, message, monkeypatch):
    monkeypatch.setattr(sys, "stdin", open(os.devnull))
    r = nself(argv, cwd=tmp_path)
    assert r.code == code and message in r.err
    assert list(tmp_path.iterdir()) == []                      # nothing half-made


def test_new_refuses_an_existing_folder(tmp_path, nself):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    r = nself(["new", "taken", "--no-input"], cwd=tmp_path)
    assert r.code == 1 and "already exists" in r.err


def test_blueprint_list_and_add(demo, nself):
    r = nself(["blueprint.list", "--json"], cwd=demo)
    assert {b["name"] for b in r.json()} == {"project", "k8s", "helm", "provider"}
    assert nself(["blueprint.add", "provider:hetzner"], cwd=demo).code == 0
    init = (demo / "providers/hetzner/cloud-init.yaml").read_text()
    assert init.startswith("#cloud-config") and "PasswordAuthentication no" in init
    assert yaml.safe_load(init)["packages"]
    settings = (demo / "providers/hetzner/provider.yml").read_text()
    assert yaml.safe_load(settings)["provider"] == "hetzner"
    for named in re.findall(r"`nself ([\w-]+(?:\.[\w-]+)*)[ `]", settings):          # the commands it points to exist
        assert nself([named, "--help"], cwd=demo).code == 0, named
    assert nself(["blueprint.add", "provider:nowhere"], cwd=demo).code == 2
    assert nself(["blueprint.add", "k8s"], cwd=demo).code == 0 and (demo / "k8s/base").is_dir()
    assert nself(["blueprint.add", "helm"], cwd=demo).code == 0 and (demo / "charts/demo/Chart.yaml").is_file()


def _git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


def _age_template(demo, rel, old_text):
    """Make the recorded render look like an older template's (as after an nself upgrade)."""
    (demo / ".nself/blueprints/project/pristine" / rel).write_text(old_text)


def test_check_and_update_merge_keeping_user_edits(demo, nself):
    assert nself(["blueprint.check"], cwd=demo).code == 0
    readme = demo / "README.md"
    current = readme.read_text()
    lines = current.splitlines(keepends=True)
    old_template = "".join(line for line in lines if "blueprint.check" not in line)
    _age_template(demo, "README.md", old_template)
    # The user edited the project's README (a different place from the template's change).
    readme.write_text(current.replace("# demo", "# demo — our shop", 1))
    _git(demo, "init", "-q")
    _git(demo, "add", "-A")
    _git(demo, "commit", "-qm", "start")
    r = nself(["blueprint.check"], cwd=demo)
    assert r.code == 1 and "README.md" in r.out
    r = nself(["blueprint.update", "--json"], cwd=demo)
    assert r.code == 0, r.err
    assert r.json()["merged"] == ["README.md"]
    text = readme.read_text()
    assert "# demo — our shop" in text and "blueprint.check" in text
    assert nself(["blueprint.check"], cwd=demo).code == 0


def test_update_reports_conflicts(demo, nself):
    nginx = demo / "nginx/nginx.conf"
    current = nginx.read_text()
    _age_template(demo, "nginx/nginx.conf", current.replace("listen 80;", "listen 8080;"))
    nginx.write_text(current.replace("listen 80;", "listen 9000;"))   # user changed the same line
    r = nself(["blueprint.update"], cwd=demo)
    assert r.code == 1 and "conflicts" in r.err and "nginx/nginx.conf" in r.err
    text = nginx.read_text()
    assert "<<<<<<<" in text and "listen 9000;" in text and "listen 80;" in text


def test_update_refuses_a_dirty_git_tree(demo, nself):
    _git(demo, "init", "-q")
    _git(demo, "add", "-A")
    _git(demo, "commit", "-qm", "start")
    (demo / "tasks.py").write_text((demo / "tasks.py").read_text() + "\n# wip\n")
    r = nself(["blueprint.update"], cwd=demo)
    assert r.code == 1 and "uncommitted changes" in r.err


# -- docs/overriding.md: every example runs -------------------------------------------------------
EXAMPLES = re.findall(r"```python\n# tasks.py\n(.*?)```", (REPO / "docs/overriding.md").read_text(), re.S)


@pytest.mark.parametrize("index, expected", [(0, "our own config.show"),
                                             (1, "before: custom checks"),
                                             (2, "seeding 3 rows")])
def test_overriding_examples(demo, index, expected):
    (demo / "tasks.py").write_text(EXAMPLES[index])
    argv = {0: ["config.show"], 1: ["config.validate"], 2: ["demo.seed", "--rows", "3"]}[index]
    for tool in ("nself", "inv"):
        r = console([tool, *argv], demo)
        assert r.returncode == 0, (tool, r.stderr)
        assert expected in r.stdout, (tool, r.stdout)


def test_generate_settings_have_one_home_in_nself_yml(demo, nself):
    """kubernetes.generate.output is read by nself and plain inv; Invoke's k8s.output and
    NSELF_K8S_OUTPUT were a second home and now say where the setting lives (issue 21)."""
    settings = (demo / "nself.yml").read_text()
    generate = "kubernetes:\n  generate:\n"
    (demo / "nself.yml").write_text(settings.replace(generate, generate + "    output: manifests\n"))
    assert nself(["k8s.generate"], cwd=demo).code == 0
    assert (demo / "manifests/base/kustomization.yaml").is_file()
    r = console(["inv", "k8s.generate", "--output", "deploy/k8s"], demo)
    assert r.returncode == 0, r.stderr
    assert (demo / "deploy/k8s/base/kustomization.yaml").is_file()
    r = console(["inv", "k8s.generate"], demo, NSELF_K8S_OUTPUT="deploy/k8s")
    assert r.returncode == 3 and "NSELF_K8S_OUTPUT is not a setting" in r.stderr
    assert "kubernetes.generate.output" in r.stderr
    (demo / "nself.yml").write_text(settings + "k8s:\n  output: manifests\n")
    r = nself(["k8s.generate"], cwd=demo)
    assert r.code == 3 and "k8s.output is not a setting: set kubernetes.generate.output" in r.err
    (demo / "nself.yml").write_text(settings.replace(generate, generate + "    namespace: one\n"))
    for env, namespace in (("local", "one"), ("staging", "demo-staging"), ("production", "demo")):
        assert nself(["config.get", "namespace", "--env", env], cwd=demo).out.strip() == namespace
    assert json.loads((demo / ".nself/blueprints/project/answers.json").read_text())["answers"]["stack"] == "full"


def test_each_test_has_its_own_empty_cache(tmp_path_factory):
    from nself import blueprints

    root = blueprints.cache_root()
    assert root.is_relative_to(tmp_path_factory.getbasetemp()) and not root.exists()
    assert Path(os.environ["XDG_CACHE_HOME"]).is_dir() and not any(Path(os.environ["XDG_CACHE_HOME"]).iterdir())
