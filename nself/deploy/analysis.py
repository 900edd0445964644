"""Canary analysis from the router's own access log (pure: lines in, a verdict out).

nginx writes one JSON object per request with the `nself_json` log format below: the upstream
that answered, the status it returned and the request time in seconds. A canary's requests
are those whose upstream address is one of the canary's; the verdict compares its success
rate (status < 500) and p95 latency with the thresholds, and is inconclusive below the
minimum request count (Argo Rollouts' `inconclusive`; `--auto` treats it as a failure only
when the analysis' deadline passes).
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

# nginx `log_format` (escape=json keeps every field valid JSON); `$msec` is the epoch time.
LOG_FORMAT = ("log_format nself_json escape=json '{\"time\":$msec,\"upstream\":\"$upstream_addr\","
              "\"status\":$status,\"upstream_status\":\"$upstream_status\",\"request_time\":$request_time}';")


@dataclass(frozen=True)
class Thresholds:
    """success_rate: fraction of requests with status < 500 (0–1); p95: seconds; min_requests:
    fewer than this gives `inconclusive`; window: seconds an analysis waits for min_requests;
    interval: seconds between reads of the log while it waits."""

    success_rate: float = 0.99
    p95: float = 1.0
    min_requests: int = 50
    window: float = 60.0
    interval: float = 2.0

    @classmethod
    def from_settings(cls, data: dict | None) -> Thresholds:
        data, defaults = data or {}, cls()
        return cls(*(type(getattr(defaults, k))(data.get(k, getattr(defaults, k)))
                     for k in ("success_rate", "p95", "min_requests", "window", "interval")))


@dataclass(frozen=True)
class Verdict:
    result: str                  # "passed" | "failed" | "inconclusive"
    requests: int
    success_rate: float | None
    p95: float | None
    reason: str

    def to_dict(self) -> dict:
        return {"result": self.result, "requests": self.requests, "success_rate": self.success_rate,
                "p95": self.p95, "reason": self.reason}


def canary_requests(lines: Iterable[str], upstreams: set[str], since: float = 0.0) -> list[tuple[int, float]]:
    """(status, seconds) of each logged request answered by one of `upstreams` ("10.0.0.5:8081")
    at or after `since` (epoch seconds). Lines that are not nself_json records are skipped."""
    out = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or float(record.get("time") or 0) < since:
            continue
        # after a retry `$upstream_addr` lists every upstream tried ("a:1, b:2"): the last answered
        tried = [a.strip() for a in str(record.get("upstream", "")).split(",")]
        if tried and tried[-1] in upstreams:
            statuses = [s.strip() for s in str(record.get("upstream_status", "")).split(",")]
            status = int(statuses[-1]) if statuses and statuses[-1].isdigit() else int(record.get("status", 0))
            out.append((status, float(record.get("request_time") or 0.0)))
    return out


def p95(values: list[float]) -> float:
    """The nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def judge(requests: list[tuple[int, float]], limits: Thresholds) -> Verdict:
    count = len(requests)
    if count < limits.min_requests:
        return Verdict("inconclusive", count, None, None,
                       f"{count} canary requests, fewer than the {limits.min_requests} needed")
    good = sum(1 for status, _ in requests if 0 < status < 500)
    rate, slowest = good / count, p95([t for _, t in requests])
    if rate < limits.success_rate:
        return Verdict("failed", count, rate, slowest,
                       f"success rate {rate:.1%} below {limits.success_rate:.1%}")
    if slowest > limits.p95:
        return Verdict("failed", count, rate, slowest, f"p95 {slowest:.3f}s above {limits.p95:.3f}s")
    return Verdict("passed", count, rate, slowest, f"success rate {rate:.1%}, p95 {slowest:.3f}s")
