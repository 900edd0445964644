"""A Prometheus for tests: its HTTP query API over real HTTP on 127.0.0.1, fed by the test.

`FakePrometheus` answers `GET|POST /api/v1/query` as Prometheus does (`{"status": "success",
"data": {"resultType": "vector", "result": [...]}}`, sample values as strings, `"NaN"` for an
empty histogram, `400 bad_data` for a query it cannot parse) for the two shapes an ingress
controller's canary analysis asks (nself.deploy.prometheus):

- `sum by (status) (increase(nginx_ingress_controller_requests{…}[Ns]))`
- `histogram_quantile(Q, sum by (le) (rate(nginx_ingress_controller_request_duration_seconds_bucket{…}[Ns])))`

with `label="value"` matchers. The test records requests (`observe`); counts over the window are
exact (real Prometheus extrapolates `increase` a little) and the quantile is computed from
ingress-nginx's default buckets with Prometheus's linear interpolation inside a bucket.
"""
from __future__ import annotations

import json
import math
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)   # ingress-nginx's defaults
_MATCHERS = r"\{(?P<matchers>[^}]*)\}\[(?P<window>\d+)s\]"
_REQUESTS = re.compile(r"^sum by \(status\) \(increase\(nginx_ingress_controller_requests" + _MATCHERS + r"\)\)$")
_QUANTILE = re.compile(r"^histogram_quantile\((?P<q>[0-9.]+), sum by \(le\) \(rate\("
                       r"nginx_ingress_controller_request_duration_seconds_bucket" + _MATCHERS + r"\)\)\)$")
_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"([^"]*)"\s*$')


class BadQuery(Exception):
    pass


class FakePrometheus:
    def __init__(self):
        self.samples: list[tuple[float, dict, int, float]] = []    # (time, labels, status, seconds)
        self.queries: list[str] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake._answer(self, urllib.parse.urlsplit(self.path).query)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                fake._answer(self, self.rfile.read(length).decode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="prometheus", daemon=True)
        self._thread.start()

    def observe(self, namespace: str, service: str, status: int, seconds: float, count: int = 1,
                at: float | None = None) -> None:
        """Record `count` requests to `service` answered with `status` in `seconds`."""
        labels = {"namespace": namespace, "service": service, "ingress": service}
        with self._lock:
            self.samples += [(at if at is not None else time.time(), labels, status, seconds)] * count

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)

    # -- the API ---------------------------------------------------------------------------------------
    def _answer(self, handler, form: str) -> None:
        if urllib.parse.urlsplit(handler.path).path != "/api/v1/query":
            return _send(handler, 404, {"status": "error", "errorType": "not_found", "error": "404 page not found"})
        promql = (urllib.parse.parse_qs(form).get("query") or [""])[0]
        with self._lock:
            self.queries.append(promql)
        try:
            result = self.evaluate(promql, time.time())
        except BadQuery as exc:
            return _send(handler, 400, {"status": "error", "errorType": "bad_data", "error": str(exc)})
        _send(handler, 200, {"status": "success", "data": {"resultType": "vector", "result": result}})

    def evaluate(self, promql: str, now: float) -> list[dict]:
        for pattern, shape in ((_REQUESTS, self._by_status), (_QUANTILE, self._quantile)):
            match = pattern.match(promql.strip())
            if match:
                wanted = _matchers(match["matchers"])
                window = int(match["window"])
                with self._lock:
                    series = [s for s in self.samples if all(s[1].get(k) == v for k, v in wanted.items())]
                seen = [s for s in series if now - window < s[0] <= now]
                return shape(series, seen, window, now, match)
        raise BadQuery(f"1:1: parse error: this fake Prometheus does not know the query {promql!r}")

    @staticmethod
    def _by_status(series, seen, window, now, match) -> list[dict]:
        counts: dict[int, int] = {}
        for status in {s[2] for s in series}:       # a series exists once it was seen; its increase may be 0
            counts[status] = sum(1 for s in seen if s[2] == status)
        return [{"metric": {"status": str(status)}, "value": [now, str(float(count))]}
                for status, count in sorted(counts.items())]

    @staticmethod
    def _quantile(series, seen, window, now, match) -> list[dict]:
        if not series:
            return []
        value = quantile(float(match["q"]), [s[3] for s in seen])
        return [{"metric": {}, "value": [now, "NaN" if math.isnan(value) else repr(value)]}]


def quantile(q: float, observations: list[float]) -> float:
    """Prometheus's histogram_quantile over BUCKETS: the bucket holding rank q·total, linearly
    interpolated inside it; past the last finite bucket, that bucket's bound; NaN when empty."""
    total = len(observations)
    if total == 0:
        return math.nan
    rank = q * total
    lower, below = 0.0, 0
    for bound in BUCKETS:
        count = sum(1 for o in observations if o <= bound)
        if count >= rank:
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 0)
        lower, below = bound, count
    return BUCKETS[-1]


def _matchers(text: str) -> dict[str, str]:
    out = {}
    for part in filter(str.strip, text.split(",")):
        found = _MATCHER.match(part)
        if not found:
            raise BadQuery(f"this fake Prometheus takes only label=\"value\" matchers, not {part!r}")
        out[found[1]] = found[2]
    return out


def _send(handler, code: int, body: dict) -> None:
    data = json.dumps(body).encode()
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
