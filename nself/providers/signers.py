"""Request signers for providers that do not take a bearer token: Exoscale's EXO2-HMAC-SHA256, AWS
Signature Version 4."""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit

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


_UNRESERVED = "-_.~"          # with letters and digits: what SigV4 leaves unencoded (RFC 3986)


class SigV4Signer:
    """AWS Signature Version 4 with AWS4-HMAC-SHA256, header form
    (docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html).

    Signs `host`, `content-type` and every `x-amz-*` header (the date, the session token when
    there is one) over the canonical request; the body's SHA-256 is part of it. Credentials
    are scoped to one region and service, so a driver keeps one signer per regional endpoint."""

    def __init__(self, key: str, secret: str, region: str, service: str, token: str | None = None,
                 clock=time.time):
        self.key = key
        self.secret = secret
        self.region = region
        self.service = service
        self.token = token
        self.clock = clock

    @staticmethod
    def canonical_request(method: str, url: str, headers: dict[str, str], body: bytes) -> tuple[str, str]:
        """(canonical request, signed header names): the path as sent, the query sorted by name
        and value and encoded, header names lower-cased with values trimmed and inner runs of
        spaces folded, the body's SHA-256 in hex."""
        parts = urlsplit(url)
        pairs = sorted(parse_qsl(parts.query, keep_blank_values=True))
        query = "&".join(f"{quote(k, safe=_UNRESERVED)}={quote(v, safe=_UNRESERVED)}" for k, v in pairs)
        canonical = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
        names = sorted(canonical)
        lines = "".join(f"{n}:{canonical[n]}\n" for n in names)
        signed = ";".join(names)
        path = quote(parts.path or "/", safe="/" + _UNRESERVED)
        return "\n".join([method, path, query, lines, signed, hashlib.sha256(body).hexdigest()]), signed

    def _key(self, day: str) -> bytes:
        key = ("AWS4" + self.secret).encode()
        for part in (day, self.region, self.service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return key

    def authorization(self, method: str, url: str, headers: dict[str, str], body: bytes) -> str:
        """The Authorization value for a request whose `headers` (with X-Amz-Date) are the signed ones."""
        stamp = next(v for k, v in headers.items() if k.lower() == "x-amz-date")
        canonical, signed = self.canonical_request(method, url, headers, body)
        signature = hmac.new(self._key(stamp[:8]), self.string_to_sign(stamp, canonical).encode(),
                             hashlib.sha256).hexdigest()
        return (f"AWS4-HMAC-SHA256 Credential={self.key}/{self._scope(stamp)}, SignedHeaders={signed}, "
                f"Signature={signature}")

    def _scope(self, stamp: str) -> str:
        return f"{stamp[:8]}/{self.region}/{self.service}/aws4_request"

    def string_to_sign(self, stamp: str, canonical: str) -> str:
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        return "\n".join(["AWS4-HMAC-SHA256", stamp, self._scope(stamp), digest])

    def presign(self, url: str, headers: dict[str, str], expires: int) -> str:
        """`url` signed for a GET in its query string (SigV4 query form): the X-Amz-* parameters,
        then X-Amz-Signature; `headers` (beside `host`) are signed too and must be sent with it.
        The payload is the empty body's hash, as the SDKs presign non-S3 requests."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.clock()))
        signed = {"host": urlsplit(url).netloc, **{k.lower(): v for k, v in headers.items()}}
        fields = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": f"{self.key}/{self._scope(stamp)}",
                  "X-Amz-Date": stamp, "X-Amz-Expires": str(expires), "X-Amz-SignedHeaders": ";".join(sorted(signed))}
        if self.token:
            fields["X-Amz-Security-Token"] = self.token
        unsigned = url + ("&" if urlsplit(url).query else "?") + urlencode(fields, quote_via=quote)
        canonical, _ = self.canonical_request("GET", unsigned, signed, b"")
        signature = hmac.new(self._key(stamp[:8]), self.string_to_sign(stamp, canonical).encode(),
                             hashlib.sha256).hexdigest()
        return f"{unsigned}&X-Amz-Signature={signature}"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        request.headers["X-Amz-Date"] = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.clock()))
        if self.token:
            request.headers["X-Amz-Security-Token"] = self.token
        signed = {"Host": urlsplit(request.url).netloc,
                  **{k: v for k, v in request.headers.items() if k.lower() == "content-type"
                     or k.lower().startswith("x-amz-")}}
        request.headers["Authorization"] = self.authorization(request.method, request.url, signed, body)
        return request
