"""Canary schedules, state and analysis verdicts (the pure model under deploy.canary)."""
from __future__ import annotations

import json

import pytest

from nself.deploy import analysis, canary
from nself.deploy.canary import CanaryStep
from nself.errors import UsageError


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("5m", 300), ("1h", 3600), (30, 30)])
def test_durations(text, seconds):
    assert canary.duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "-1", "1d", "", True])
def test_bad_durations_are_usage_errors(text):
    with pytest.raises(UsageError):
        canary.duration(text)


def test_flags_make_weights_with_analysis_and_pause_between_and_none_after_100():
    steps = canary.from_flags(None, "10,50,100", "5m", "http")
    assert [s.to_dict() for s in steps] == [
        {"weight": 10}, {"analysis": "http"}, {"pause": "300s"},
        {"weight": 50}, {"analysis": "http"}, {"pause": "300s"}, {"weight": 100}]


def test_percent_alone_is_one_weight_then_wait_for_promote():
    assert [s.to_dict() for s in canary.from_flags(25, None, None, None)] == [{"weight": 25}, {"pause": {}}]
    assert canary.from_flags(None, None, None, None)[0].weight == 10


@pytest.mark.parametrize("percent, steps, words", [
    (0, None, "not a whole number from 1 to 100"), (101, None, "not a whole number from 1 to 100"),
    ("ten", None, "not a whole number from 1 to 100"),
    (None, "50,10", "must not go down"), (None, "10,,x", "not a whole number from 1 to 100"),
    (None, "", "not a whole number from 1 to 100"), (25, "10,50", "both say where the canary starts"),
])
def test_bad_flags_are_refused(percent, steps, words):
    with pytest.raises(UsageError) as caught:
        canary.from_flags(percent, steps, None, None)
    assert words in caught.value.message and caught.value.code == 2


def test_steps_from_nself_yml_round_trip_and_unknown_steps_are_refused():
    data = [{"weight": 10}, {"pause": "5m"}, {"analysis": "http"}, {"weight": 50}, {"pause": {}}]
    steps = canary.from_data(data, analyses=["http"])
    assert [s.to_dict() for s in steps] == [{"weight": 10}, {"pause": "300s"}, {"analysis": "http"},
                                            {"weight": 50}, {"pause": {}}]
    for bad, words in [([{"wait": 5}], "unknown step 'wait'"), ([{"analysis": "latency"}], "no analysis named"),
                       ([{"pause": {}}], "at least one weight"), (["10"], "must be one of")]:
        with pytest.raises(UsageError) as caught:
            canary.from_data(bad, analyses=["http"])
        assert words in caught.value.message


def test_state_walks_the_steps_pauses_and_ends_promoted_at_100():
    steps = canary.from_flags(None, "10,100", None, None)        # 10, pause{}, 100
    state = canary.start("production", "r2", "r1", steps, "t0")
    state = canary.advanced(state, "t1", weight=10)
    assert (state.step, state.weight, state.phase) == (1, 10, "progressing")
    state = canary.advanced(state, "t2", paused=True)
    assert state.phase == "paused" and not state.done
    state = canary.resumed(state, "t3")
    assert state.next_step() == CanaryStep(weight=100)
    state = canary.advanced(state, "t4", weight=100)
    assert (state.phase, state.weight, state.done) == ("promoted", 100, True)


def test_state_survives_a_round_trip_through_json_and_abort_records_the_reason():
    steps = canary.from_flags(None, "10,50,100", "1m", "http")
    state = canary.advanced(canary.start("production", "r2", "r1", steps, "t0"), "t1", weight=10)
    again = canary.CanaryState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state
    stopped = canary.aborted(again, "t2", "success rate 80.0% below 99.0%")
    assert (stopped.phase, stopped.weight, stopped.done) == ("aborted", 0, True)
    assert stopped.analyses[-1] == {"abort": "success rate 80.0% below 99.0%", "at": "t2"}
    full = canary.completed(again, "t3")
    assert (full.phase, full.weight, full.next_step()) == ("promoted", 100, None)


def log(upstream, status, seconds, at=100.0, upstream_status=None):
    return json.dumps({"time": at, "upstream": upstream, "status": status,
                       "upstream_status": upstream_status or str(status), "request_time": seconds})


def test_only_the_canarys_requests_since_the_step_count():
    lines = [log("10.0.0.1:8081", 200, 0.01), log("10.0.0.1:8082", 500, 0.02), "not json",
             log("10.0.0.1:8082", 200, 0.03, at=50.0),
             # retried: first upstream failed, the canary answered last
             log("10.0.0.1:8081, 10.0.0.1:8082", 200, 0.05, upstream_status="502, 200")]
    got = analysis.canary_requests(lines, {"10.0.0.1:8082"}, since=60.0)
    assert got == [(500, 0.02), (200, 0.05)]


def test_verdicts_pass_fail_on_rate_or_latency_and_are_inconclusive_below_the_minimum():
    limits = analysis.Thresholds(success_rate=0.95, p95=0.5, min_requests=20)
    healthy = [(200, 0.01)] * 95 + [(200, 0.4)] * 5
    assert analysis.judge(healthy, limits).result == "passed"
    errors = [(200, 0.01)] * 80 + [(500, 0.01)] * 20
    failed = analysis.judge(errors, limits)
    assert failed.result == "failed" and failed.success_rate == 0.8 and "80.0%" in failed.reason
    slow = [(200, 0.01)] * 90 + [(200, 2.0)] * 10
    assert analysis.judge(slow, limits).result == "failed" and analysis.judge(slow, limits).p95 == 2.0
    assert analysis.judge(healthy[:19], limits).result == "inconclusive"
    assert analysis.judge([(404, 0.01)] * 20, limits).result == "passed"     # a 4xx is the client's


def test_p95_is_nearest_rank():
    assert analysis.p95([float(i) for i in range(1, 101)]) == 95.0
    assert analysis.p95([3.0]) == 3.0
