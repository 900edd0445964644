"""nself.plan: the shape plans print and emit, and how runners run them."""
import json
import sys

import pytest

from nself.errors import Exit, NselfError
from nself.plan import Dispatch, LocalRunner, Plan, Step, StepFailed, StepResult, put, run, shell

SECRET = "pa55-w0rd-in-stdin"


def sample() -> Plan:
    return Plan("release r1 on web1", [
        run("make the folder", "mkdir", "-p", "/srv/app", on="web1"),
        put("write the env file", "/srv/app/.env", f"PASSWORD={SECRET}\n", on="web1", mode=0o600),
        run("load the values", "helm", "lint", "chart", "--values", "-", data=SECRET, may_fail=True),
        Step("create web1", "http", spec={"method": "POST", "url": "https://api.example.test/v1"}),
        Step("apply Deployment web", "k8s", spec={"verb": "apply", "resource": "Deployment", "name": "web",
                                                  "namespace": "acme"})])


def test_to_json_shape_and_data_never_shown():
    doc = sample().to_json()
    assert doc == {"title": "release r1 on web1", "steps": [
        {"summary": "make the folder", "kind": "run", "on": "web1", "argv": ["mkdir", "-p", "/srv/app"]},
        {"summary": "write the env file", "kind": "put", "on": "web1", "path": "/srv/app/.env", "mode": 0o600,
         "data": "(28 bytes, not shown)"},
        {"summary": "load the values", "kind": "run", "on": "local", "argv": ["helm", "lint", "chart", "--values", "-"],
         "data": "(18 bytes, not shown)", "may_fail": True},
        {"summary": "create web1", "kind": "http", "on": "local", "method": "POST",
         "url": "https://api.example.test/v1"},
        {"summary": "apply Deployment web", "kind": "k8s", "on": "local", "verb": "apply", "resource": "Deployment",
         "name": "web", "namespace": "acme"}]}
    assert SECRET not in json.dumps(doc) and SECRET not in "\n".join(sample().show()) + repr(sample())


def test_show_numbers_steps_and_says_where():
    assert sample().show() == [
        "Plan: release r1 on web1",
        "  1. [web1] make the folder", "       mkdir -p /srv/app",
        "  2. [web1] write the env file", "       put 28 bytes → /srv/app/.env (mode 0600)",
        "  3. load the values (may fail)", "       helm lint chart --values - < (stdin, 18 bytes)",
        "  4. create web1", "       POST https://api.example.test/v1",
        "  5. apply Deployment web", "       apply acme/Deployment/web"]


def test_a_failing_step_raises_with_its_code_unless_it_may_fail():
    ran = []

    def runner(step):
        ran.append(step.summary)
        return StepResult(step, ok=step.argv[0] == "true", exit_code=0 if step.argv[0] == "true" else 3,
                          stderr="it broke")

    plan = Plan("t", [run("may fail", "false", may_fail=True), run("fine", "true"),
                      run("must work", "false", error_code=Exit.KUBERNETES), run("never reached", "true")])
    with pytest.raises(StepFailed) as failed:
        plan.run(runner)
    assert failed.value.code == Exit.KUBERNETES and "could not must work (exit 3): it broke" in failed.value.message
    assert ran == ["may fail", "fine", "must work"]


def test_local_runner_runs_argv_with_stdin_and_writes_puts(tmp_path):
    target = tmp_path / "out.txt"
    results = Plan("t", [run("echo stdin", sys.executable, "-c", "import sys; print(sys.stdin.read().upper())",
                             data="hello"),
                         put("write", str(target), b"bytes\n", mode=0o600)]).run(LocalRunner())
    assert results[0].stdout == "HELLO\n" and target.read_bytes() == b"bytes\n"
    assert oct(target.stat().st_mode & 0o777) == "0o600"


def test_local_runner_timeout_is_exit_10_and_a_missing_binary_127():
    with pytest.raises(NselfError) as slow:
        LocalRunner(timeout=0.3)(run("wait", "sleep", "5"))
    assert slow.value.code == Exit.TIMEOUT and "within 0.3s" in slow.value.message
    with pytest.raises(NselfError) as missing:
        LocalRunner()(run("use a tool", "/nonexistent/nself-tool"))
    assert missing.value.code == Exit.NOT_FOUND and "was not found" in missing.value.message
    with pytest.raises(NselfError) as plain:        # a run step's own deadline wins over the runner's
        LocalRunner(timeout=60)(run("wait", "sleep", "5", timeout=0.2))
    assert plain.value.code == Exit.TIMEOUT


def test_a_timed_out_pipeline_is_stopped_whole_not_only_its_shell(tmp_path):
    """Every process of the step's group goes, not just bash (the rest of `a | b` kept running)."""
    import os
    import time

    pids = tmp_path / "pids"
    script = f"sleep 30 & echo $! >> {pids}; sh -c 'echo $$ >> {pids}; exec sleep 30' | cat; wait"
    with pytest.raises(NselfError) as slow:
        LocalRunner()(shell("wait in a pipeline", script, timeout=0.5))
    assert slow.value.code == Exit.TIMEOUT
    alive = [int(p) for p in pids.read_text().split()]
    assert len(alive) == 2
    time.sleep(0.1)
    for pid in alive:
        assert not os.path.exists(f"/proc/{pid}") or " Z " in open(f"/proc/{pid}/stat").read()


def test_dispatch_routes_by_on():
    seen = []

    def runner(name):
        return lambda step: seen.append((name, step.summary)) or StepResult(step, True)

    Plan("t", [run("a", "x", on="web1"), run("b", "x"), run("c", "x", on="db1")]).run(
        Dispatch({"web1": runner("web1"), "local": runner("local")}, default=runner("other")))
    assert seen == [("web1", "a"), ("local", "b"), ("other", "c")]
    with pytest.raises(NselfError, match="no way to run a step on 'db1'"):
        Dispatch({"local": runner("local")})(run("c", "x", on="db1"))


def test_steps_check_their_shape():
    with pytest.raises(ValueError, match="kind"):
        Step("x", "ftp")
    with pytest.raises(ValueError, match="argv"):
        Step("x", "run")
    assert shell("s", "a | b").argv == ("sh", "-c", "a | b")


def test_the_documented_example_is_this_plan():
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "plans.md").read_text()
    example = text.split("```json\n", 1)[1].split("```", 1)[0]
    shown = text.split("and the same plan as `--dry-run` prints it:\n\n```\n", 1)[1].split("```", 1)[0]
    assert json.loads(example) == sample().to_json()
    assert shown.splitlines() == sample().show()
