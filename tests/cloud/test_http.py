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
from nself.providers.http import Api, ProviderError, api_url, bearer, token_or_basic

TOKEN = "tok-0123456789abcdef"


class Seen(list):
    requests: list[dict]

    def __init__(self):
        super().__init__()
        self.requests = []


@contextmanager
def scripted(*answers):
    """A server answering each request with the next (status, headers, body, delay_s); the last
    answer repeats. Yields (base URL, list of (method, path) received); the list's `requests`
    has each request's headers and body too."""
    seen = Seen()
    script = list(answers)

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((self.command, self.path))
            seen.requests.append({"headers": dict(self.headers), "body": body})
            status, headers, body, delay = script.pop(0) if len(script) > 1 else script[0]
            time.sleep(delay)
            payload = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
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
               describe_error=lambda body: body.get("error") if isinstance(body, dict) else None, **kw)


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
    assert caught.value.status == status and caught.value.code == Exit.PROVIDER and not caught.value.ambiguous
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
        api(url, waits, deadline=1000).request("GET", "/servers")     # the call's own deadline is not the cap here
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
    assert caught.value.hint == "check the values you passed (cloud.providers.regions / cloud.providers.sizes)"


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
            api(url, waits, timeout=0.1, retries=2).request("GET", "/servers")
    assert not caught.value.ambiguous and waits == [0.5, 1.0] and caught.value.status is None


def test_the_defaults_are_30_s_per_request_and_4_retries_from_half_a_second():
    waits = []
    with scripted(answer(503)) as (url, seen):
        client = Api("hetzner", url + "/", auth=bearer(TOKEN), secrets=[TOKEN], sleep=waits.append)
        with pytest.raises(ProviderError):
            client.request("GET", "/servers")
    assert client.timeout == 30.0 and client.base_url == url
    assert len(seen) == 5 and waits == [0.5, 1.0, 2.0, 4.0]


def test_a_request_carries_the_token_the_parameters_and_the_body():
    with scripted(answer(200, {"ok": True})) as (url, seen):
        client = api(url, [])
        assert client.request("POST", "/servers", params={"page": 2}, json={"name": "web1"}) == {"ok": True}
        client.request("PUT", "/user-data", text="#cloud-config\n")
    assert seen == [("POST", "/servers?page=2"), ("PUT", "/user-data")]
    first, second = seen.requests
    assert first["headers"]["Authorization"] == f"Bearer {TOKEN}" and first["headers"]["User-Agent"] == "nself"
    assert json.loads(first["body"]) == {"name": "web1"} and first["headers"]["Content-Type"] == "application/json"
    assert second["body"] == b"#cloud-config\n" and second["headers"]["Content-Type"] == "text/plain"


def test_answers_json_raw_text_empty_and_accepted_errors():
    with scripted(answer(200, b"apiVersion: v1\n"), answer(200, b"not json"), answer(204),
                  answer(404, {"error": "gone"}), answer(200, {"a": 1})) as (url, _):
        client = api(url, [])
        assert client.request("GET", "/kubeconfig", raw=True) == "apiVersion: v1\n"
        with pytest.raises(ProviderError, match="the answer is not a JSON object") as caught:
            client.request("GET", "/x")
        assert caught.value.status == 200
        assert client.request("DELETE", "/servers/1") is None                # 204, no content
        assert client.request("DELETE", "/servers/1", ok=(404,)) is None     # already gone
        assert client.request("GET", "/y", ok=(404,)) == {"a": 1}
    with scripted(answer(200, {"a": 1}), answer(400, {"error": "exists"})) as (url, _):
        client = api(url, [])
        assert client.request("GET", "/y", ok=(200,)) == {"a": 1}           # a success keeps its body
        assert client.request("POST", "/keys", ok=(400,)) is None           # an accepted error has none


def test_the_log_names_each_request_and_each_retry():
    lines = []
    with scripted(answer(503), answer(200, {})) as (url, _):
        Api("hetzner", url, auth=bearer(TOKEN), secrets=[TOKEN], sleep=lambda s: None, log=lines.append) \
            .request("GET", "/servers", params={"page": 1})
    assert lines == ["hetzner: GET /servers {'page': 1}", "hetzner: 503, retrying in 0.5s",
                     "hetzner: GET /servers {'page': 1}"]
    lines.clear()
    with scripted(answer(200, {})) as (url, _):
        Api("hetzner", url, auth=bearer(TOKEN), secrets=[], log=lines.append).request("GET", "/servers")
    assert lines == ["hetzner: GET /servers"]


@pytest.mark.parametrize("status, hint", [
    (429, "the provider is rate-limiting this account; wait a minute and try again"),
    (500, "the provider had an internal error; try again, or see its status page"),
])
def test_rate_limits_and_internal_errors_have_their_own_hints(status, hint):
    with scripted(answer(status, {"error": "x"})) as (url, _):
        with pytest.raises(ProviderError) as caught:
            api(url, [], retries=0).request("POST", "/servers")
    assert caught.value.hint == hint and caught.value.ambiguous == (status == 500)


@pytest.mark.parametrize("body, detail", [(b"<html>busy</html>", "<html>busy</html>"), (b"", "Bad Request"),
                                          (b"x" * 300, "x" * 200)])
def test_an_error_body_without_the_providers_words_is_shown_as_it_came(body, detail):
    with scripted(answer(400, body)) as (url, _):
        with pytest.raises(ProviderError) as caught:
            api(url, []).request("GET", "/servers")
    assert caught.value.message == f"hetzner: GET /servers: 400 {detail}"


def test_a_transport_error_names_the_request_and_the_fix():
    with scripted(answer(200, {}, delay=0.3)) as (url, _):
        with pytest.raises(ProviderError) as caught:
            api(url, [], timeout=0.05, retries=0).request("GET", "/servers")
    assert caught.value.message.startswith("hetzner: GET /servers: ReadTimeout:")
    assert caught.value.hint == ("check your network, or run `nself cloud.providers.init hetzner` or set the "
                                 "provider's token variable")


def test_retry_after_dates_are_capped_at_two_minutes_too():
    waits = []
    later = email.utils.formatdate(time.time() + 600, usegmt=True)
    with scripted(answer(429, headers={"Retry-After": later}), answer(200, {})) as (url, _):
        api(url, waits, deadline=1000).request("GET", "/servers")
    assert waits == [120.0]


def test_a_retry_never_waits_past_the_calls_deadline():
    waits = []
    with scripted(answer(429, headers={"Retry-After": "600"}), answer(200, {})) as (url, _):
        api(url, waits, deadline=30).request("GET", "/servers")
    assert len(waits) == 1 and 29 <= waits[0] <= 30


def test_pages_are_read_until_the_provider_says_the_end():
    pages = {"1": {"servers": [1, 2], "next": 2}, "2": {"servers": [3], "next": 3}, "3": {"servers": []}}
    answers = [answer(200, pages[n]) for n in ("1", "2", "3")]
    with scripted(*answers) as (url, seen):
        items = list(api(url, []).pages("/servers", "servers", lambda body, params: (
            {**params, "page": body["next"]} if body["servers"] else None), params={"per_page": 2}))
    assert items == [1, 2, 3]
    assert seen == [("GET", "/servers?per_page=2"), ("GET", "/servers?per_page=2&page=2"),
                    ("GET", "/servers?per_page=2&page=3")]


def test_pages_are_read_with_retries():
    with scripted(answer(503), answer(200, {"servers": [1]})) as (url, seen):
        items = list(api(url, []).pages("/servers", "servers", lambda body, params: None))
    assert items == [1] and len(seen) == 2


def test_the_api_url_can_be_replaced_per_provider(monkeypatch):
    monkeypatch.delenv("NSELF_HETZNER_API_URL", raising=False)
    assert api_url("hetzner", "https://api.hetzner.cloud/v1/") == "https://api.hetzner.cloud/v1"
    monkeypatch.setenv("NSELF_HETZNER_API_URL", "http://127.0.0.1:9/v1/")
    assert api_url("hetzner", "https://api.hetzner.cloud/v1") == "http://127.0.0.1:9/v1"
    assert api_url("linode", "https://api.linode.com/v4") == "https://api.linode.com/v4"
    assert api_url("ionos", "https://api.ionos.com/X/") == "https://api.ionos.com/X"        # only slashes go
    assert Api("ionos", "https://api.ionos.com/X/", auth=None, secrets=[]).base_url == "https://api.ionos.com/X"


def test_a_token_is_a_bearer_and_an_account_is_basic_auth():
    with scripted(answer(200, {})) as (url, seen):
        for values in ({"token": "t-1"}, {"username": "me", "password": "pw"}):
            Api("upcloud", url, auth=token_or_basic(values), secrets=[]).request("GET", "/account")
    assert seen.requests[0]["headers"]["Authorization"] == "Bearer t-1"
    assert seen.requests[1]["headers"]["Authorization"] == "Basic bWU6cHc="          # me:pw


def test_errors_that_are_not_a_create_are_not_ambiguous():
    from nself.providers.http import ProviderError as Error

    assert Error("x").ambiguous is False and Error("x").code == Exit.PROVIDER


def test_a_form_body_goes_to_another_endpoint_with_its_own_signer():
    with scripted(answer(200, b"<ok/>")) as (first_url, seen), scripted(answer(200, b"<ok/>")) as (other_url, other):
        client = api(first_url, [])
        regional = client.at(other_url + "/", auth=bearer("regional-token"))
        assert regional.request("POST", "/", form={"Action": "DescribeRegions", "Filter.1.Value.1": "a b"},
                                raw=True) == "<ok/>"
        client.request("GET", "/servers", raw=True)
    assert seen == [("GET", "/servers")] and other == [("POST", "/")]
    sent = other.requests[0]
    assert sent["body"] == b"Action=DescribeRegions&Filter.1.Value.1=a+b"
    assert sent["headers"]["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8"
    assert sent["headers"]["Authorization"] == "Bearer regional-token" and sent["headers"]["User-Agent"] == "nself"
    assert seen.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"     # the original keeps its own


def test_an_error_body_that_is_not_json_reaches_the_providers_words():
    xml = b"<Response><Errors><Error><Code>AuthFailure</Code></Error></Errors></Response>"
    with scripted(answer(401, xml, {"Content-Type": "text/xml"})) as (url, _):
        client = Api("aws", url, auth=bearer(TOKEN), secrets=[TOKEN],
                     describe_error=lambda body: "AuthFailure" if "<Code>AuthFailure" in body else None)
        with pytest.raises(ProviderError) as caught:
            client.request("POST", "/", form={"Action": "DescribeRegions"}, raw=True)
    assert caught.value.message == "aws: POST /: 401 AuthFailure"


def test_a_post_said_to_be_idempotent_is_retried_and_never_ambiguous():
    with scripted(answer(503), answer(200, {"ok": True})) as (url, seen):
        waits = []
        assert api(url, waits).request("POST", "/", form={"Action": "DescribeRegions"}, idempotent=True) == {"ok": 1}
    assert len(seen) == 2 and waits == [0.5]
    with scripted(answer(500)) as (url, seen):
        with pytest.raises(ProviderError) as caught:
            api(url, [], retries=1).request("POST", "/", form={"Action": "RunInstances"}, idempotent=True)
    assert len(seen) == 2 and not caught.value.ambiguous
