"""Walking a canary: manual pauses, --auto with analysis, abort, resume from saved state.

The driver here is a target made of files (state JSON, a weight file, an access log in
nginx's nself_json format), so every step's effect is observable on disk; the real routers
(nginx on ssh hosts, ingress/HTTPRoute on Kubernetes) have their own tests."""
from __future__ import annotations

import calendar
import json
import time
from pathlib import Path

import pytest

from nself.deploy import analysis, bluegreen, canary, core, progressive
from nself.deploy.canary import CanaryState
from nself.deploy.core import DeployOptions
from nself.deploy.release import Release
from nself.errors import NselfError
from tests.deploy.test_core import FolderDriver, flow_project


class FileRouterDriver(FolderDriver):
    kind = "files"

    def current(self):
        return "r1"

    def canary_start(self, options):
        (self.folder / "canary").write_text(options.release.id)

    def canary_weight(self, state, weight):
        with (self.folder / "weights").open("a") as handle:
            handle.write(f"{weight}\n")

    def canary_requests(self, state, since):
        log = self.folder / "access.log"
        lines = log.read_text().splitlines() if log.is_file() else []
        return analysis.canary_requests(lines, {"canary:8082"}, since)

    def canary_promote(self, state):
        (self.folder / "canary").rename(self.folder / "stable")

    def canary_abort(self, state):
        (self.folder / "canary").unlink()
        self.canary_weight(state, 0)

    def canary_load(self):
        path = self.folder / "canary.json"
        return CanaryState.from_dict(json.loads(path.read_text())) if path.is_file() else None

    def canary_save(self, state):
        (self.folder / "canary.json").write_text(json.dumps(state.to_dict()))

    def weights(self):
        path = self.folder / "weights"
        return [int(w) for w in path.read_text().split()] if path.is_file() else []


class FakeTime:
    def __init__(self):
        self.t, self.slept = 1000.0, []

    def clock(self):
        return progressive.Clock(now=lambda: f"t{int(self.t)}", epoch=lambda: self.t, sleep=self.sleep)

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.t += seconds


LIMITS = analysis.Thresholds(success_rate=0.95, p95=1.0, min_requests=10, window=10, interval=5)


@pytest.fixture
def target(tmp_path):
    project, trace = flow_project(tmp_path, "    post-deploy: ['echo promoted $NSELF_STRATEGY >> {trace}']\n"
                                            "    on-failure: ['echo aborted >> {trace}']\n")
    return FileRouterDriver(project, project.root / "target"), trace


def options(release="r2"):
    return DeployOptions(Release(release), strategy="canary")


def test_without_auto_each_weight_waits_for_promote(target):
    driver, trace = target
    steps = canary.from_flags(None, "10,50,100", "5m", None)
    state = progressive.start(driver, options(), steps, auto=False, limits=LIMITS)
    assert (state.phase, state.weight, driver.weights()) == ("paused", 10, [10])
    assert driver.canary_load() == state                               # saved in the environment
    state = progressive.promote(driver, full=False, auto=False, limits=LIMITS)
    assert (state.phase, state.weight, driver.weights()) == ("paused", 50, [10, 50])
    state = progressive.promote(driver, full=False, auto=False, limits=LIMITS)
    assert (state.phase, state.weight) == ("promoted", 100)
    assert (driver.folder / "stable").read_text() == "r2" and not (driver.folder / "canary").exists()
    assert trace.read_text() == "promoted canary\n"
    assert [r["result"] for r in driver.records] == ["ok"] and driver.records[0]["to"] == "r2"


def test_promote_full_goes_to_100_at_once(target):
    driver, _ = target
    progressive.start(driver, options(), canary.from_flags(None, "10,50,100", None, None), auto=False, limits=LIMITS)
    state = progressive.promote(driver, full=True, auto=False, limits=LIMITS)
    assert (state.phase, state.weight, driver.weights()) == ("promoted", 100, [10])


def test_auto_walks_pauses_and_passing_analyses_to_100(target):
    driver, _ = target
    fake = FakeTime()
    (driver.folder / "access.log").write_text("\n".join(
        json.dumps({"time": 1000 + i, "upstream": "canary:8082", "status": 200, "upstream_status": "200",
                    "request_time": 0.01}) for i in range(1, 400)) + "\n")
    steps = canary.from_flags(None, "10,50,100", "60", "http")
    state = progressive.start(driver, options(), steps, auto=True, limits=LIMITS, clock=fake.clock())
    assert (state.phase, driver.weights()) == ("promoted", [10, 50, 100])
    assert fake.slept == [60, 60]
    assert [a["result"] for a in state.analyses] == ["passed", "passed"]


def test_a_failing_analysis_aborts_records_why_and_runs_on_failure_hooks(target):
    driver, trace = target
    (driver.folder / "access.log").write_text("\n".join(
        json.dumps({"time": 1001, "upstream": "canary:8082", "status": 500 if i % 5 == 0 else 200,
                    "upstream_status": "", "request_time": 0.01}) for i in range(100)) + "\n")
    fake = FakeTime()
    state = progressive.start(driver, options(), canary.from_flags(10, None, None, "http"), auto=True,
                              limits=LIMITS, clock=fake.clock())
    assert (state.phase, state.weight, driver.weights()) == ("aborted", 0, [10, 0])
    assert not (driver.folder / "canary").exists()
    assert state.analyses[0]["result"] == "failed" and state.analyses[0]["success_rate"] == 0.8
    assert "success rate 80.0% below 95.0%" in state.analyses[-1]["abort"]
    assert trace.read_text() == "aborted\n"
    assert driver.records[-1]["result"] == "aborted" and driver.records[-1]["analyses"][0]["result"] == "failed"


def test_too_few_requests_within_the_window_aborts_rather_than_promotes(target):
    driver, _ = target
    fake = FakeTime()
    state = progressive.start(driver, options(), canary.from_flags(10, None, None, "http"), auto=True,
                              limits=LIMITS, clock=fake.clock())
    assert state.phase == "aborted" and "inconclusive" in state.analyses[-1]["abort"]
    assert fake.slept == [5, 5]                                        # polled through the 10 s window


def test_a_second_canary_is_refused_naming_the_running_one(target):
    driver, _ = target
    progressive.start(driver, options(), canary.from_flags(10, None, None, None), auto=False, limits=LIMITS)
    with pytest.raises(NselfError) as caught:
        progressive.start(driver, options("r3"), canary.from_flags(10, None, None, None), auto=False, limits=LIMITS)
    assert "a new canary is refused while the canary of release r2 is in progress" in caught.value.message
    assert driver.weights() == [10]


def test_a_killed_command_leaves_state_that_another_process_rolls_back(target):
    driver, _ = target
    progressive.start(driver, options(), canary.from_flags(25, None, None, None), auto=False, limits=LIMITS)
    again = FileRouterDriver(driver.project, driver.folder)          # a new process: only the files remain
    assert again.canary_load().weight == 25
    state = progressive.rollback(again)
    assert (state.phase, again.weights()) == ("aborted", [25, 0])
    with pytest.raises(NselfError) as caught:
        progressive.promote(again, full=False, auto=False, limits=LIMITS)
    assert caught.value.code == 1 and "no canary is running" in caught.value.message


def test_the_lock_is_free_after_each_command(target):
    driver, _ = target
    progressive.start(driver, options(), canary.from_flags(25, None, None, None), auto=False, limits=LIMITS)
    assert not (Path(driver.folder) / "lock").exists()
    core.deploy(driver, DeployOptions(Release("r9")))               # a rolling deploy can take the lock


# -- blue-green -------------------------------------------------------------------------
def test_blue_green_deploys_idle_switches_at_once_and_rolls_back_to_the_kept_colour(target):
    driver, trace = target
    fake = FakeTime()
    state = bluegreen.deploy(driver, options(), clock=fake.clock())
    assert (state.strategy, state.phase, state.weight, driver.weights()) == ("blue-green", "paused", 0, [])
    assert (driver.folder / "canary").read_text() == "r2"
    state = bluegreen.switch(driver, clock=fake.clock())
    assert (state.phase, driver.weights()) == ("switched", [100])
    assert trace.read_text() == "promoted blue-green\n"
    state = bluegreen.rollback(driver, clock=fake.clock())
    assert (state.phase, driver.weights()) == ("aborted", [100, 0])
    assert [r["strategy"] for r in driver.records] == ["blue-green", "rollback"]
    with pytest.raises(NselfError) as caught:
        bluegreen.switch(driver)
    assert "no blue-green deploy" in caught.value.message


def test_the_old_colour_is_kept_for_the_keep_time_then_stopped(target):
    driver, _ = target
    real_now = progressive.utc_now()
    start = calendar.timegm(time.strptime(real_now, "%Y-%m-%dT%H:%M:%SZ"))
    fake = FakeTime()
    fake.t = start
    clock = progressive.Clock(now=lambda: real_now, epoch=lambda: fake.t, sleep=fake.sleep)
    bluegreen.deploy(driver, options(), clock=clock)
    bluegreen.switch(driver, clock=clock)
    fake.t = start + 29 * 60
    assert bluegreen.finish(driver, clock=clock) is None and (driver.folder / "canary").exists()
    fake.t = start + 31 * 60
    done = bluegreen.finish(driver, clock=clock)
    assert done.phase == "promoted" and (driver.folder / "stable").read_text() == "r2"


def test_canary_verbs_do_not_act_on_a_blue_green_and_its_hints_say_what_ends_it(target):
    driver, _ = target
    bluegreen.deploy(driver, options())
    with pytest.raises(NselfError) as caught:
        progressive.promote(driver, full=True, auto=False, limits=LIMITS)
    assert "while the blue-green of release r2 is in progress" in caught.value.message
    assert "deploy.blue-green.switch staging" in caught.value.hint
    assert driver.weights() == []                                   # nothing promoted
    with pytest.raises(NselfError) as caught:
        bluegreen.finish(driver)
    assert "not switched yet" in caught.value.message and "deploy.blue-green.switch staging" in caught.value.hint
    bluegreen.switch(driver)
    with pytest.raises(NselfError) as caught:
        progressive.start(driver, options("r3"), canary.from_flags(10, None, None, None), auto=False,
                          limits=LIMITS)
    assert "deploy.blue-green.finish staging --now" in caught.value.hint
