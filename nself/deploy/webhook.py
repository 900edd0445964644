"""deploy.webhook: POST a deploy record as JSON, signed with HMAC-SHA256.

The signature is GitHub's webhook convention: header `X-Nself-Signature-256: sha256=<hex of
HMAC-SHA256(secret, body)>` over the exact body bytes, with `X-Nself-Event: deploy`. The
secret comes from an environment variable (default NSELF_WEBHOOK_SECRET), never from a flag.
"""
from __future__ import annotations

import hashlib
import hmac
import json

from urllib.parse import urlsplit, urlunsplit

from nself.errors import Exit, NselfError, UsageError

SIGNATURE_HEADER = "X-Nself-Signature-256"


def body(record: dict) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, payload: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def send(url: str, record: dict, secret: str, timeout: float = 10.0) -> int:
    """POST the record; returns the HTTP status. Refuses non-http(s) URLs (exit 2); network
    failures exit 6; a non-2xx answer exits 1 with the status."""
    import requests

    shown = shown_url(url)
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in url)
        parts.port                                   # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        valid = False
    if not valid:
        raise UsageError(f"webhook URL {shown!r} is not a valid http(s) URL", hint="e.g. https://hooks.example.com/nself")
    payload = body(record)
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(secret, payload),
               "X-Nself-Event": "deploy"}
    try:
        answer = requests.post(url, data=payload, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise NselfError(f"could not reach the webhook at {shown}: {type(exc).__name__}", code=Exit.NETWORK,
                         hint="check the URL and that the receiver is up") from None
    if not 200 <= answer.status_code < 300:
        raise NselfError(f"the webhook at {shown} answered {answer.status_code}", code=Exit.GENERAL,
                         hint="check the receiver's logs; a 401/403 usually means the secret differs")
    return answer.status_code


def shown_url(url: str) -> str:
    """The URL as it may be shown: `user:password@` removed."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("@")[-1]
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
