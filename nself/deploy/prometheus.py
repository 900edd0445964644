"""Canary analysis on Kubernetes: the ingress controller's metrics, read from Prometheus.

`deploy.canary.analysis.<name>.prometheus` is the Prometheus base URL (its HTTP API,
`GET <url>/api/v1/query?query=…`). Two instant queries per canary Service over the seconds
since the step began, on ingress-nginx's metrics by default:

- requests by status: `sum by (status) (increase(nginx_ingress_controller_requests{…}[Ns]))`
- p95 latency: `histogram_quantile(0.95, sum by (le) (rate(
  nginx_ingress_controller_request_duration_seconds_bucket{…}[Ns])))`

`requests_query` and `p95_query` in the analysis settings replace them (for another
controller or a Gateway), with `{namespace}`, `{service}` and `{window}` filled in.
Prometheus keeps counts and a histogram, not each request: every request is reported with the
p95 as its time, which is what `analysis.judge` compares (its success rate uses the statuses).
"""
from __future__ import annotations

import math

from nself.errors import Exit, NselfError

REQUESTS = 'sum by (status) (increase(nginx_ingress_controller_requests{{namespace="{namespace}",' \
           'service="{service}"}}[{window}s]))'
P95 = 'histogram_quantile(0.95, sum by (le) (rate(nginx_ingress_controller_request_duration_seconds_bucket' \
      '{{namespace="{namespace}",service="{service}"}}[{window}s])))'
TIMEOUT = 10.0                     # seconds per query


def queries(settings: dict, namespace: str, service: str, window: int) -> tuple[str, str]:
    """The (requests by status, p95) queries for `service` over the last `window` seconds."""
    fill = {"namespace": namespace, "service": service, "window": max(1, int(window))}
    return (settings.get("requests_query") or REQUESTS).format(**fill), \
        (settings.get("p95_query") or P95).format(**fill)


def endpoint(url: str) -> str:
    """`http://prom:9090` or `…/api/v1/query` → the query endpoint."""
    url = url.rstrip("/")
    return url if url.endswith("/api/v1/query") else url + "/api/v1/query"


def query(url: str, promql: str) -> list[dict]:
    """An instant query's vector (`[{"metric": {...}, "value": [t, "v"]}]`). NselfError exit 6
    when Prometheus cannot be reached, exit 1 when it refuses the query."""
    import requests

    where = endpoint(url)
    try:
        response = requests.get(where, params={"query": promql}, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise NselfError(f"could not reach Prometheus at {where}: {type(exc).__name__}", code=Exit.NETWORK,
                         hint="check deploy.canary.analysis.<name>.prometheus in nself.yml and that "
                              "Prometheus answers from here") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or body.get("status") != "success":
        raise NselfError(f"Prometheus at {where} refused the query ({response.status_code}): "
                         f"{body.get('error') or response.text[:200]}", code=Exit.GENERAL,
                         hint=f"the query was: {promql}")
    data = body.get("data") or {}
    if data.get("resultType") != "vector":
        raise NselfError(f"Prometheus answered a {data.get('resultType')}, not a vector", code=Exit.GENERAL,
                         hint=f"the query was: {promql}")
    return data.get("result") or []


def requests_of(by_status: list[dict], p95: list[dict]) -> list[tuple[int, float]]:
    """(status, seconds) pairs from the two query results: one per counted request (increase()
    extrapolates, so counts are rounded), each with the p95 (0 when there is none: NaN)."""
    latency = _value(p95[0]) if p95 else 0.0
    latency = 0.0 if math.isnan(latency) else latency
    out = []
    for sample in by_status:
        status = str(sample.get("metric", {}).get("status", "0"))
        count = _value(sample)
        if math.isnan(count):
            continue
        out += [(int(status) if status.isdigit() else 0, latency)] * round(count)
    return out


def _value(sample: dict) -> float:
    return float(sample["value"][1])
