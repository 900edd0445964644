"""Request signers for providers that do not take a bearer token."""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import parse_qs, urlsplit

import requests


class Exo2Signer:
    """Exoscale's EXO2-HMAC-SHA256: an HMAC-SHA256 over the method and path, the body, the values
    of the single-valued query parameters in name order, the (empty) signed headers and the
    expiry time, sent as `credential=…,signed-query-args=…,expires=…,signature=…`."""

    def __init__(self, key: str, secret: str, lifetime: int = 600, clock=time.time):
        self.key = key
        self.secret = secret.encode()
        self.lifetime = lifetime
        self.clock = clock

    def header(self, method: str, url: str, body: bytes, expires: int) -> str:
        parts = urlsplit(url)
        query = parse_qs(parts.query, keep_blank_values=True)
        names = sorted(query)
        values = "".join(query[n][0] for n in names if len(query[n]) == 1)
        message = b"\n".join([f"{method} {parts.path}".encode(), body, values.encode(), b"", str(expires).encode()])
        signature = base64.b64encode(hmac.new(self.secret, message, hashlib.sha256).digest()).decode()
        fields = [f"credential={self.key}"]
        if names:
            fields.append("signed-query-args=" + ";".join(names))
        fields += [f"expires={expires}", f"signature={signature}"]
        return "EXO2-HMAC-SHA256 " + ",".join(fields)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        request.headers["Authorization"] = self.header(request.method, request.url, body,
                                                       int(self.clock()) + self.lifetime)
        return request
