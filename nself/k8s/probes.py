"""Compose healthchecks → readiness, liveness and startup probes."""
from __future__ import annotations

import math
import re
import shlex
from urllib.parse import urlsplit

from nself.k8s.objects import seconds
from nself.project.model import Healthcheck

# curl/wget flags that only change output or failure behaviour: the check is still a GET.
_QUIET_FLAGS = {"-f", "--fail", "-s", "--silent", "-S", "--show-error", "-q", "--quiet",
                "--spider", "-fs", "-sf", "-fsS", "-sSf", "-fSs", "-qO-", "-O-", "-O", "-",
                "--no-verbose", "-nv", "--tries=1", "-t1", "-L", "--location", "-k", "--insecure",
                "-o", "/dev/null"}
_EXIT_SUFFIX = re.compile(r"\s*\|\|\s*(exit\s+1|false)\s*$")
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0", "[::1]"}


def handler(check: Healthcheck) -> dict:
    """The probe handler: httpGet for a plain local curl/wget, else exec (shell wrapped)."""
    http = http_get(check)
    if http is not None:
        return {"httpGet": http}
    if check.shell:
        return {"exec": {"command": ["sh", "-c", check.test[0]]}}
    return {"exec": {"command": list(check.test)}}


def http_get(check: Healthcheck) -> dict | None:
    text = check.test[0] if check.shell else shlex.join(check.test)
    text = _EXIT_SUFFIX.sub("", text)
    if any(c in text for c in "|&;$`><"):
        return None
    try:
        argv = shlex.split(text)
    except ValueError:
        return None
    if not argv or argv[0] not in ("curl", "wget"):
        return None
    urls = [a for a in argv[1:] if "://" in a]
    others = [a for a in argv[1:] if "://" not in a]
    if len(urls) != 1 or any(a not in _QUIET_FLAGS for a in others):
        return None
    url = urlsplit(urls[0])
    if url.scheme not in ("http", "https") or url.hostname is None or \
            (url.hostname not in _LOCAL_HOSTS and f"[{url.hostname}]" not in _LOCAL_HOSTS):
        return None
    out: dict = {"path": (url.path or "/") + (f"?{url.query}" if url.query else ""),
                 "port": url.port or (443 if url.scheme == "https" else 80)}
    if url.scheme == "https":
        out["scheme"] = "HTTPS"
    return out


def probes(check: Healthcheck | None) -> dict[str, dict]:
    """readinessProbe and livenessProbe (and startupProbe for start_period) for a container."""
    if check is None or check.disabled or not check.test:
        return {}
    base = handler(check)
    period = seconds(check.interval, 30)
    timing = {"periodSeconds": period, "timeoutSeconds": seconds(check.timeout, 30),
              "failureThreshold": check.retries if check.retries else 3}
    out = {"readinessProbe": {**base, **timing}, "livenessProbe": {**base, **timing}}
    if check.start_period:
        # Compose lets a container fail its checks during start_period, then `retries` more
        # times `interval` apart: the startup probe allows the same time in all.
        interval = seconds(check.start_interval, 5) if check.start_interval else min(period, 5)
        budget = check.start_period + timing["failureThreshold"] * period
        out["startupProbe"] = {**base, "periodSeconds": interval,
                               "timeoutSeconds": timing["timeoutSeconds"],
                               "failureThreshold": max(1, math.ceil(budget / interval))}
    return out
