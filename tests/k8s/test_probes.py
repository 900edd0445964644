"""Compose healthchecks → probes (nself/k8s/probes.py), value by value."""
import pytest

from nself.k8s.probes import handler, probes
from nself.project.model import Healthcheck


def shell(text, **timing):
    return Healthcheck(test=(text,), shell=True, **timing)


def cmd(*argv, **timing):
    return Healthcheck(test=argv, **timing)


@pytest.mark.parametrize("check, expected", [
    (cmd("curl", "-fsS", "https://localhost:8443/health"),
     {"path": "/health", "port": 8443, "scheme": "HTTPS"}),
    (cmd("curl", "-f", "https://127.0.0.1/"), {"path": "/", "port": 443, "scheme": "HTTPS"}),
    (cmd("wget", "-qO-", "http://0.0.0.0"), {"path": "/", "port": 80}),
    (cmd("curl", "-f", "http://[::1]:9000/ping"), {"path": "/ping", "port": 9000}),
    (shell("curl -f http://localhost:3000/up || false"), {"path": "/up", "port": 3000}),
    (shell("curl -sf http://localhost/x   ||   exit 1"), {"path": "/x", "port": 80}),
    (cmd("curl", "-o", "/dev/null", "-s", "http://localhost:81/a?b=c"), {"path": "/a?b=c", "port": 81}),
    (cmd("curl", "http://localhost:8080/Xray"), {"path": "/Xray", "port": 8080}),
])
def test_a_plain_local_http_check_becomes_http_get(check, expected):
    assert handler(check) == {"httpGet": expected}


@pytest.mark.parametrize("check", [
    shell("curl -f http://localhost/ && echo ok"),
    shell("curl -f http://localhost/ | grep ok"),
    shell("curl -f http://localhost/$PATH_X"),
    shell("curl -f http://localhost/ > /tmp/x"),
    shell("curl -f 'http://localhost/"),                      # unbalanced quote: shlex refuses
    cmd("curl", "-f", "ftp://localhost/"),
    cmd("curl", "-f", "http://web:8080/"),
    cmd("curl", "-f", "http://localhost/a", "http://localhost/b"),
    cmd("curl", "-f"),
    cmd("http", "http://localhost/"),
    cmd("curl", "-X", "POST", "http://localhost/"),
    cmd("curl", "-v", "http://localhost/"),
    cmd("curl", "-f", "http:///nohost"),
])
def test_anything_else_stays_a_command(check):
    expected = ["sh", "-c", check.test[0]] if check.shell else list(check.test)
    assert handler(check) == {"exec": {"command": expected}}


def test_the_exit_suffix_is_only_dropped_for_the_http_form():
    assert handler(shell("true || exit 1")) == {"exec": {"command": ["sh", "-c", "true || exit 1"]}}


def test_timing_defaults_follow_compose():
    out = probes(cmd("true"))
    expected = {"exec": {"command": ["true"]}, "periodSeconds": 30, "timeoutSeconds": 30, "failureThreshold": 3}
    assert out == {"readinessProbe": expected, "livenessProbe": expected}


def test_timing_is_taken_from_the_healthcheck():
    out = probes(cmd("true", interval=15, timeout=2.4, retries=5))
    assert out["livenessProbe"] == {"exec": {"command": ["true"]}, "periodSeconds": 15, "timeoutSeconds": 2,
                                    "failureThreshold": 5}
    assert out["readinessProbe"] == out["livenessProbe"] and "startupProbe" not in out


def test_zero_retries_keep_the_default_of_three():
    assert probes(cmd("true", retries=0))["livenessProbe"]["failureThreshold"] == 3


@pytest.mark.parametrize("check", [None, Healthcheck(test=("true",), disabled=True), Healthcheck(test=())])
def test_no_check_no_probes(check):
    assert probes(check) == {}


def test_start_period_gives_a_startup_probe_with_the_same_budget():
    # 60 s of start period + 4 retries x 15 s = 120 s, checked every 5 s (the interval, at most 5)
    out = probes(cmd("true", interval=15, timeout=3, retries=4, start_period=60))
    assert out["startupProbe"] == {"exec": {"command": ["true"]}, "periodSeconds": 5, "timeoutSeconds": 3,
                                   "failureThreshold": 24}


def test_start_interval_sets_the_startup_period():
    out = probes(cmd("true", interval=10, retries=2, start_period=30, start_interval=4))
    # (30 + 2 x 10) / 4 = 12.5 → 13 checks
    assert (out["startupProbe"]["periodSeconds"], out["startupProbe"]["failureThreshold"]) == (4, 13)


def test_a_short_interval_is_the_startup_period():
    out = probes(cmd("true", interval=2, retries=1, start_period=1))
    # (1 + 1 x 2) / 2 = 1.5 → 2 checks of 2 s
    assert (out["startupProbe"]["periodSeconds"], out["startupProbe"]["failureThreshold"]) == (2, 2)


def test_a_startup_interval_longer_than_the_budget_still_checks_once():
    out = probes(cmd("true", interval=2, retries=1, start_period=1, start_interval=100))
    assert (out["startupProbe"]["periodSeconds"], out["startupProbe"]["failureThreshold"]) == (100, 1)
