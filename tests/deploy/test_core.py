"""The deploy core: targets from nself.yml, the deploy flow (lock, hooks, audit), build plans,
webhooks, promote refusals. The drivers' own tests are test_ssh.py and test_kube.py."""
from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import os
import threading
from pathlib import Path

import pytest

from nself.deploy import build, core, targets
from nself.deploy.core import DeployOptions, Driver, Lock, LockHeld
from nself.deploy.release import Release
from nself.errors import ConfigError, NselfError
from nself.plan import Plan, shell
from nself.project import load_project
from nself.remote.inventory import Server
from nself.ui import Output
from tests.conftest import make_project

COMPOSE = """
services:
  web:
    build: {context: ./web, args: {VERSION: "2"}}
    ports: ["8080:80"]
  cache:
    image: redis:7
"""


def project_with(tmp_path: Path, settings: str, env: str = "staging"):
    root = make_project(tmp_path / "app", COMPOSE, {"nself.yml": settings, "web/Dockerfile": "FROM scratch\n"})
    return load_project(root, env=env)


INVENTORY = {"web1": Server("web1", "10.0.0.1", roles=("web",)), "web2": Server("web2", "10.0.0.2", roles=("web",)),
             "db1": Server("db1", "10.0.0.3", roles=("db",))}


# -- targets ----------------------------------------------------------------------------
def test_an_environment_with_a_context_is_a_kubernetes_target(tmp_path):
    project = project_with(tmp_path, "environments:\n  staging:\n    context: kind-stg\n    via: helm\n")
    target = targets.resolve(project, INVENTORY)
    assert (target.kind, target.context, target.namespace, target.via) == ("k8s", "kind-stg", "app-staging", "helm")


def test_an_environment_with_roles_is_an_ssh_target_on_the_matching_servers(tmp_path):
    project = project_with(tmp_path, "environments:\n  staging:\n    roles: [web]\n    runtime: docker\n")
    target = targets.resolve(project, INVENTORY)
    assert (target.kind, target.servers, target.runtime, target.path, target.router) == \
        ("ssh", ("web1", "web2"), "docker", "/srv/app", "nginx")


def test_hosts_and_roles_combine_and_keep_releases_comes_from_deploy(tmp_path):
    project = project_with(tmp_path, "environments:\n  staging:\n    hosts: [db1]\n    roles: [web]\n"
                                     "    path: /opt/app\ndeploy:\n  keep_releases: 3\n")
    target = targets.resolve(project, INVENTORY)
    assert (target.servers, target.path, target.keep) == (("db1", "web1", "web2"), "/opt/app", 3)


def test_an_environment_without_target_keys_names_both_keys(tmp_path):
    project = project_with(tmp_path, "environments:\n  staging:\n    namespace: stg\n")
    with pytest.raises(ConfigError) as caught:
        targets.resolve(project, INVENTORY)
    assert caught.value.code == 3
    assert "environments.staging.context" in caught.value.hint and "environments.staging.hosts" in caught.value.hint


@pytest.mark.parametrize("spec, words", [
    ("hosts: [web9]", "web9"),
    ("roles: [queue]", "queue"),
    ("target: ssh", "names no servers"),
])
def test_ssh_targets_must_name_inventory_servers(tmp_path, spec, words):
    project = project_with(tmp_path, f"environments:\n  staging:\n    {spec}\n")
    with pytest.raises(ConfigError) as caught:
        targets.resolve(project, INVENTORY)
    assert words in caught.value.message and caught.value.code == 3


def test_target_keys_are_validated_with_line_and_did_you_mean(tmp_path, nself):
    root = make_project(tmp_path / "app", COMPOSE, {"nself.yml": "environments:\n  staging:\n    target: ftp\n"
                                                                 "    rooter: nginx\n"})
    result = nself(["config.validate"], cwd=root)
    assert result.code == 3
    assert "nself.yml:3: environments.staging.target: 'ftp' is not one of ssh, k8s" in result.out
    assert "unknown key 'environments.staging.rooter' (did you mean 'router'?)" in result.out


# -- the deploy flow --------------------------------------------------------------------
class DirLock(Lock):
    """A real lock for the flow tests: an atomic mkdir, like the ssh target's."""

    def __init__(self, path: Path):
        self.path, self.mine = path, False

    def acquire(self, holder):
        try:
            self.path.mkdir()
        except FileExistsError:
            raise LockHeld("staging", self.read()) from None
        (self.path / "holder.json").write_text(json.dumps(holder))
        self.mine = True

    def release(self):
        if self.mine:
            (self.path / "holder.json").unlink()
            self.path.rmdir()

    def read(self):
        holder = self.path / "holder.json"
        return json.loads(holder.read_text()) if holder.is_file() else None


class FolderDriver(Driver):
    """A target that is a folder on this machine: apply runs a real process writing the
    release id; `fail` makes the process exit 4."""

    kind = "folder"

    def __init__(self, project, folder: Path, fail: bool = False):
        super().__init__(project, None, Output())
        self.folder, self.fail, self.records = folder, fail, []
        folder.mkdir(exist_ok=True)

    def plan(self, options):
        script = "exit 4" if self.fail else f"echo {options.release.id} > {self.folder}/current"
        return Plan(f"put {options.release.id} in place", [shell("switch the release", script, error_code=4)])

    def apply(self, options, plan):
        from nself.plan import LocalRunner

        plan.run(LocalRunner())
        return {"hosts": 1}

    def current(self):
        path = self.folder / "current"
        return path.read_text().strip() if path.is_file() else None

    def lock(self):
        return DirLock(self.folder / "lock")

    def record(self, entry):
        self.records.append(entry)


def flow_project(tmp_path, hooks: str):
    trace = tmp_path / "trace"
    settings = ("environments:\n  staging:\n    hosts: [web1]\ndeploy:\n  hooks:\n" + hooks.format(trace=trace))
    return project_with(tmp_path, settings), trace


def test_hooks_run_around_the_deploy_with_its_variables_and_everything_is_audited(tmp_path):
    project, trace = flow_project(tmp_path, (
        "    pre-deploy: ['echo pre $NSELF_ENV $NSELF_RELEASE prev=$NSELF_PREVIOUS_RELEASE >> {trace}']\n"
        "    post-deploy: ['echo post $NSELF_STRATEGY $(cat target/current) >> {trace}']\n"))
    (project.root / "target").mkdir()
    driver = FolderDriver(project, project.root / "target")
    lines = []
    record = core.deploy(driver, DeployOptions(Release("abc123")), echo=lines.append)
    assert trace.read_text().splitlines() == ["pre staging abc123 prev=", "post rolling abc123"]
    assert record["result"] == "ok" and record["to"] == "abc123" and record["from"] is None
    assert driver.records == [record]
    assert core.read_local(project.root, "staging")[-1]["to"] == "abc123"
    assert not (project.root / "target" / "lock").exists()          # released
    core.deploy(driver, DeployOptions(Release("def456")))
    assert core.read_local(project.root, "staging")[-1]["from"] == "abc123"


def test_a_failing_pre_deploy_hook_stops_before_anything_changed(tmp_path):
    project, trace = flow_project(tmp_path, "    pre-deploy: ['exit 3']\n    on-failure: ['echo failed >> {trace}']\n")
    driver = FolderDriver(project, project.root / "target")
    with pytest.raises(NselfError) as caught:
        core.deploy(driver, DeployOptions(Release("abc123")))
    assert "pre-deploy hook failed" in caught.value.message and "nothing was deployed" in caught.value.hint
    assert driver.current() is None                                  # apply never ran
    assert driver.records[-1]["result"] == "failed"
    assert not (project.root / "target" / "lock").exists()


def test_a_failed_apply_runs_on_failure_hooks_keeps_its_exit_code_and_releases_the_lock(tmp_path):
    project, trace = flow_project(tmp_path, "    on-failure: ['echo failed $NSELF_RELEASE >> {trace}']\n")
    driver = FolderDriver(project, project.root / "target", fail=True)
    with pytest.raises(NselfError) as caught:
        core.deploy(driver, DeployOptions(Release("abc123")))
    assert caught.value.code == 4
    assert trace.read_text() == "failed abc123\n"
    assert driver.records[-1]["result"] == "failed" and "switch the release" in driver.records[-1]["error"]
    assert not (project.root / "target" / "lock").exists()


def test_a_held_lock_refuses_a_second_deploy_naming_the_holder(tmp_path):
    project, _ = flow_project(tmp_path, "    pre-deploy: []\n")
    driver = FolderDriver(project, project.root / "target")
    driver.lock().acquire({"who": "ana@laptop", "since": "2026-11-29T10:00:00Z", "what": "deploy", "release": "r1"})
    with pytest.raises(LockHeld) as caught:
        core.deploy(driver, DeployOptions(Release("abc123")))
    assert caught.value.code == 1 and "ana@laptop" in caught.value.message
    assert "deploy.unlock staging" in caught.value.hint
    assert driver.current() is None
    assert (project.root / "target" / "lock").is_dir()              # not someone else's to remove


def test_the_dry_run_plan_shows_the_hooks_around_the_drivers_steps(tmp_path):
    project, _ = flow_project(tmp_path, "    pre-deploy: ['nself config.validate']\n    post-deploy: ['./smoke.sh']\n")
    plan = core.full_plan(FolderDriver(project, project.root / "target"), DeployOptions(Release("abc123")))
    assert [s.summary for s in plan.steps] == ["run the pre-deploy hook `nself config.validate`",
                                               "switch the release", "run the post-deploy hook `./smoke.sh`"]


def test_a_torn_audit_line_is_skipped_not_fatal(tmp_path):
    core.append_local(tmp_path, {"env": "staging", "to": "a"})
    with (tmp_path / core.AUDIT_LOG).open("a") as handle:
        handle.write('{"env": "staging", "to"')
    assert [r["to"] for r in core.read_local(tmp_path, "staging")] == ["a"]


# -- build ------------------------------------------------------------------------------
def test_build_plans_tag_with_the_release_and_push_with_a_digest_file(tmp_path):
    project = project_with(tmp_path, "environments:\n  staging:\n    hosts: [web1]\n")
    state = tmp_path / "state"
    plan = build.plan(project, "abc123", "podman", "127.0.0.1:5000", state=state)
    context = str(project.root / "web")
    assert [list(s.argv) for s in plan.steps] == [
        ["podman", "build", "--tag", "127.0.0.1:5000/app/web:abc123", "--build-arg", "VERSION=2", context],
        ["podman", "push", "--digestfile", str(state / "web.digest"), "--tls-verify=false",
         "127.0.0.1:5000/app/web:abc123"]]
    assert all(s.error_code == 4 for s in plan.steps)
    state.mkdir()
    (state / "web.digest").write_text("sha256:" + "a" * 64)
    digest = "sha256:" + "a" * 64
    assert build.images(project, "abc123", "127.0.0.1:5000", state) == {"web": "127.0.0.1:5000/app/web@" + digest}
    assert build.images(project, "abc123", None) == {"web": "app-web:abc123"}


def test_deploy_build_dry_run_needs_no_runtime_and_prints_the_plan(tmp_path, nself):
    project = project_with(tmp_path, "environments:\n  staging:\n    hosts: [web1]\n    runtime: docker\n")
    (project.root / ".nself").mkdir()
    (project.root / ".nself" / "servers.yml").write_text("servers:\n  web1: {host: 127.0.0.1}\n")
    result = nself(["deploy.build", "staging", "--release", "r1", "--dry-run", "--json"], cwd=project.root,
                   env={"PATH": "/nonexistent"})
    assert result.code == 0, result.err
    steps = result.json()["plan"]["steps"]
    assert steps[0]["argv"][:4] == ["docker", "build", "--tag", "app-web:r1"]


def test_a_failing_image_build_exits_4(tmp_path, nself):
    project = project_with(tmp_path, "environments:\n  staging:\n    hosts: [web1]\n")
    (project.root / ".nself").mkdir()
    (project.root / ".nself" / "servers.yml").write_text("servers:\n  web1: {host: 127.0.0.1}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "podman").write_text("#!/bin/sh\necho 'Error: building at STEP 1: no such image' >&2\nexit 125\n")
    (bin_dir / "podman").chmod(0o755)
    result = nself(["deploy.build", "staging", "--release", "r1"], cwd=project.root,
                   env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert result.code == 4
    assert "could not build web as app-web:r1 (exit 125)" in result.err and "no such image" in result.err


# -- webhook ----------------------------------------------------------------------------
class Receiver(http.server.BaseHTTPRequestHandler):
    secret = b"s3cret-webhook"
    seen: list = []

    def do_POST(self):
        payload = self.rfile.read(int(self.headers["Content-Length"]))
        expected = "sha256=" + hmac.new(self.secret, payload, hashlib.sha256).hexdigest()
        good = hmac.compare_digest(expected, self.headers.get("X-Nself-Signature-256", ""))
        Receiver.seen.append((good, json.loads(payload)))
        self.send_response(204 if good else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_the_webhook_posts_the_last_record_signed_and_a_wrong_secret_is_refused(tmp_path, nself, receiver):
    project = project_with(tmp_path, "environments:\n  staging:\n    hosts: [web1]\n")
    core.append_local(project.root, {"env": "staging", "to": "old", "result": "ok"})
    core.append_local(project.root, {"env": "staging", "to": "abc123", "result": "ok"})
    ok = nself(["deploy.webhook", receiver, "--env", "staging", "--json"], cwd=project.root,
               env={"NSELF_WEBHOOK_SECRET": "s3cret-webhook"})
    assert ok.code == 0, ok.err
    assert Receiver.seen == [(True, {"env": "staging", "to": "abc123", "result": "ok"})]
    assert "s3cret" not in ok.out + ok.err
    bad = nself(["deploy.webhook", receiver, "--env", "staging"], cwd=project.root,
                env={"NSELF_WEBHOOK_SECRET": "not-the-secret"})
    assert bad.code == 1 and "answered 401" in bad.err


def test_the_webhook_without_a_secret_or_receiver_says_what_to_do(tmp_path, nself):
    project = project_with(tmp_path, "environments:\n  staging:\n    hosts: [web1]\n")
    core.append_local(project.root, {"env": "staging", "to": "abc123", "result": "ok"})
    missing = nself(["deploy.webhook", "http://127.0.0.1:9/hook", "--env", "staging"], cwd=project.root)
    assert missing.code == 3 and "NSELF_WEBHOOK_SECRET is not set" in missing.err
    closed = nself(["deploy.webhook", "http://127.0.0.1:9/hook", "--env", "staging"], cwd=project.root,
                   env={"NSELF_WEBHOOK_SECRET": "x" * 12})
    assert closed.code == 6


# -- the task layer ---------------------------------------------------------------------
def test_deploy_without_an_environment_or_with_an_unknown_one_is_a_usage_error(tmp_path, nself):
    project = project_with(tmp_path, "environments:\n  staging:\n    hosts: [web1]\n")
    assert nself(["deploy.to", "nowhere"], cwd=project.root).code == 2
    assert nself(["deploy"], cwd=project.root).code == 2
    none = nself(["deploy.to", "production"], cwd=project.root)
    assert none.code == 3 and "has no deploy target" in none.err


def test_an_environment_with_both_a_context_and_servers_must_say_which(tmp_path, nself):
    project = project_with(tmp_path, "environments:\n  staging:\n    hosts: [web1]\n    context: kind\n")
    both = nself(["--dry-run", "deploy.to", "staging"], cwd=project.root)
    assert both.code == 3 and "both a kube context and SSH servers" in both.err and "target: k8s or ssh" in both.err
    (project.root / "nself.yml").write_text("environments:\n  staging:\n    hosts: [web1]\n    context: kind\n"
                                            "    target: k8s\n")
    assert "k8s → kind" in nself(["--dry-run", "deploy.to", "staging"], cwd=project.root).out


@pytest.mark.parametrize("task", ["deploy.to staging", "deploy.promote"])
@pytest.mark.parametrize("flag, value", [("--timeout", "abc"), ("--timeout", "0"), ("--timeout", "-1"),
                                         ("--parallel", "0")])
def test_run_numbers_below_one_are_usage_errors(tmp_path, nself, task, flag, value):
    """The floor nself.yml keeps for deploy.timeout holds for the flags too, before any host is
    asked (web1's address is a closed port) and in a dry run as in a real one."""
    project = project_with(tmp_path, "environments:\n  staging:\n    hosts: [web1]\n  production:\n"
                                     "    hosts: [web2]\n")
    (project.root / ".nself").mkdir()
    (project.root / ".nself" / "servers.yml").write_text("servers:\n  web1: {host: 127.0.0.1, port: 9}\n"
                                                         "  web2: {host: 127.0.0.1, port: 9}\n")
    for dry in ([], ["--dry-run"]):
        result = nself([*dry, *task.split(), "--skip-build" if "promote" not in task else "--keep-going",
                        flag, value], cwd=project.root)
        assert result.code == 2 and f"{flag} {value}: must be" in result.err, (result.code, result.err)
    if task == "deploy.to staging":            # the floor itself is allowed
        fine = nself(["--dry-run", "deploy.to", "staging", "--timeout", "1", "--parallel", "1"],
                     cwd=project.root)
        assert fine.code == 0, fine.err


def test_promote_refuses_a_source_without_a_successful_deploy(tmp_path, nself):
    project = project_with(tmp_path, "environments:\n  staging:\n    hosts: [web1]\n  production:\n"
                                     "    hosts: [web1]\n")
    (project.root / ".nself").mkdir()
    (project.root / ".nself" / "servers.yml").write_text("servers:\n  web1: {host: 127.0.0.1, port: 9}\n")
    result = nself(["deploy.promote"], cwd=project.root)
    assert result.code == 1 and "staging has no successful deploy to promote" in result.err


@pytest.mark.parametrize("url, code", [("http://exa mple.com/hook", 2), ("http://[::1/hook", 2), ("ftp://h/x", 2),
                                       ("http://user:hunter2@127.0.0.1:9/hook", 6)])
def test_webhook_urls_are_checked_and_credentials_never_shown(tmp_path, nself, url, code):
    project = project_with(tmp_path, "environments:\n  staging:\n    hosts: [web1]\n")
    core.append_local(project.root, {"env": "staging", "to": "abc123", "result": "ok"})
    result = nself(["deploy.webhook", url, "--env", "staging"], cwd=project.root,
                   env={"NSELF_WEBHOOK_SECRET": "x" * 12})
    assert result.code == code, result.err
    assert "hunter2" not in result.out + result.err


def test_the_dry_run_of_service_plans_only_those_builds(tmp_path, nself):
    """`--service api --dry-run` shows the build the real run makes: api's, not web's."""
    root = make_project(tmp_path / "shop", "name: shop\nservices:\n  web:\n    build: ./web\n  api:\n"
                        "    build: ./api\n", {"nself.yml": "environments:\n  staging:\n    hosts: [web1]\n"
                                                              "    router: none\n",
                                              "web/Containerfile": "FROM scratch\n",
                                              "api/Containerfile": "FROM scratch\n",
                                              ".nself/servers.yml": "servers:\n  web1: {host: 127.0.0.1, port: 9}\n"})
    steps = nself(["--dry-run", "deploy.to", "staging", "--service", "api", "--release", "r1", "--json"],
                  cwd=root).json()["plan"]["steps"]
    built = [s["summary"] for s in steps if s["summary"].startswith("build ")]
    assert built == ["build api as shop-api:r1"]
    everything = nself(["--dry-run", "deploy.to", "staging", "--release", "r1", "--json"], cwd=root).json()
    assert sum(s["summary"].startswith("build ") for s in everything["plan"]["steps"]) == 2


def test_the_rollback_dry_run_is_a_plan_of_the_hosts_steps(tmp_path, nself):
    project = project_with(tmp_path, "environments:\n  staging:\n    hosts: [web1]\ndeploy:\n  hooks:\n"
                                     "    on-rollback: ['echo rolled back']\n")
    (project.root / ".nself").mkdir()
    (project.root / ".nself" / "servers.yml").write_text("servers:\n  web1: {host: 127.0.0.1, port: 9}\n")
    plan = nself(["--dry-run", "deploy.rollback", "staging", "--to", "r1", "--json"], cwd=project.root).json()["plan"]
    summaries = [s["summary"] for s in plan["steps"]]
    assert any("start release r1" in s for s in summaries) and any("healthy" in s for s in summaries)
    assert plan["steps"][-1]["argv"][-1] == "echo rolled back"        # the on-rollback hook, last
