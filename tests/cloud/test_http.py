"""The provider HTTP core (nself/providers/http.py) against a real HTTP server on 127.0.0.1 that
answers from a script: which statuses are retried and for which methods, the backoff, Retry-After
in seconds and as a date, 401/403 versus other refusals, and a timed-out create reported as
ambiguous. The sleeps are recorded (the `sleep` the Api takes), never slept."""
from __future__ import annotations

import email.utils
import http.server
import json
import threading
import time
from contextlib import contextmanager

import pytest

from nself.errors import Exit
from nself.providers.http import Api, ProviderError, bearer

TOKEN = "tok-0123456789abcdef"


@contextmanager
def scripted(*answers):
    """A server answering each request with the next (status, headers, body, delay_s); the last
    answer repeats. Yields (base URL, list of (method, path) received)."""
    seen: list[tuple[str, str]] = []
    script = list(answers)

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((self.command, self.path))
            status, headers, body, delay = script.pop(0) if len(script) > 1 else script[0]
            time.sleep(delay)
            payload = json.dumps(body).encode() if body is not None else b""
            try:
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass        # the client gave up (its timeout): nothing to answer

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def answer(status, body=None, headers=None, delay=0.0):
    return (status, headers or {}, body, delay)


def api(url, waits, **kw):
    return Api("hetzner", url, auth=bearer(TOKEN), secrets=[TOKEN], sleep=waits.append,
               describe_error=lambda body: (body or {}).get("error"), **kw)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_a_get_is_retried_on_429_and_5xx_with_doubling_backoff(status):
    waits = []
    with scripted(answer(status), answer(status), answer(status), answer(200, {"ok": 1})) as (url, seen):
        assert api(url, waits).request("GET", "/servers") == {"ok": 1}
    assert len(seen) == 4 and waits == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("status", [400, 404, 409, 422, 501])
def test_other_statuses_are_not_retried(status):
    waits = []
    with scripted(answer(status, {"error": "no such size"})) as (url, seen):
        with pytest.raises(ProviderError) as caught:
            api(url, waits).request("GET", "/servers")
    assert len(seen) == 1 and waits == []
    assert caught.value.status == status and caught.value.code == Exit.PROVIDER
    assert caught.value.message == f"hetzner: GET /servers: {status} no such size"


def test_retries_stop_after_the_last_attempt_with_the_last_answer():
    waits = []
    with scripted(answer(503, {"error": "maintenance"})) as (url, seen):
        with pytest.raises(ProviderError) as caught:
            api(url, waits, retries=2, backoff=0.25).request("GET", "/servers")
    assert len(seen) == 3 and waits == [0.25, 0.5]
    assert caught.value.status == 503 and "internal error" in caught.value.hint


def test_a_create_is_retried_on_429_only():
    waits = []
    with scripted(answer(429), answer(201, {"id": 7})) as (url, seen):
        assert api(url, waits).request("POST", "/servers", json={"name": "web1"}) == {"id": 7}
    assert len(seen) == 2
    with scripted(answer(502, {"error": "bad gateway"}), answer(201, {"id": 8})) as (url, seen):
        with pytest.raises(ProviderError) as caught:
            api(url, []).request("POST", "/servers", json={"name": "web1"})
    assert len(seen) == 1                                  # a 5xx create may have happened
    assert caught.value.ambiguous and caught.value.status == 502


def test_a_refused_create_is_not_ambiguous():
    with scripted(answer(422, {"error": "name taken"})) as (url, seen):
        with pytest.raises(ProviderError) as caught:
            api(url, []).request("POST", "/servers", json={"name": "web1"})
    assert not caught.value.ambiguous and len(seen) == 1


@pytest.mark.parametrize("value,wait", [("7", 7.0), ("0", 0.0), ("600", 120.0)])
def test_retry_after_seconds_are_honoured_up_to_two_minutes(value, wait):
    waits = []
    with scripted(answer(429, headers={"Retry-After": value}), answer(200, {})) as (url, _):
        api(url, waits).request("GET", "/servers")
    assert waits == [wait]


def test_retry_after_as_a_date_waits_until_then():
    waits = []
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    with scripted(answer(503, headers={"Retry-After": when}), answer(503, headers={"Retry-After": past}),
                  answer(200, {})) as (url, _):
        api(url, waits).request("GET", "/servers")
    assert 27 <= waits[0] <= 30 and waits[1] == 0.0


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_say_the_credentials_were_refused(status):
    with scripted(answer(status, {"error": f"token {TOKEN} invalid"})) as (url, seen):
        with pytest.raises(ProviderError) as caught:
            api(url, []).request("GET", "/servers")
    assert len(seen) == 1 and caught.value.status == status
    assert caught.value.hint.startswith("the credentials were refused") and "cloud.providers.init hetzner" in \
        caught.value.hint
    assert TOKEN not in str(caught.value) and "token *** invalid" in str(caught.value)


def test_a_refusal_that_is_not_about_credentials_points_at_the_values():
    with scripted(answer(404, {"error": "location not found"})) as (url, _):
        with pytest.raises(ProviderError) as caught:
            api(url, []).request("GET", "/locations/xyz")
    assert "credentials" not in caught.value.hint and "cloud.providers.regions" in caught.value.hint


def test_a_create_that_times_out_is_ambiguous_and_not_repeated():
    with scripted(answer(201, {"id": 1}, delay=0.5)) as (url, seen):
        with pytest.raises(ProviderError) as caught:
            api(url, [], timeout=0.1).request("POST", "/servers", json={"name": "web1"})
        time.sleep(0.5)                                    # let the server log what it got
    assert caught.value.ambiguous and "Timeout" in str(caught.value)
    assert seen == [("POST", "/servers")]


def test_a_read_that_times_out_is_retried_and_not_ambiguous():
    waits = []
    with scripted(answer(200, {}, delay=0.4)) as (url, seen):
        with pytest.raises(ProviderError) as caught:
            api(url, waits, timeout=0.1, retries=1).request("GET", "/servers")
    assert not caught.value.ambiguous and waits == [0.5] and caught.value.status is None
