"""The HTTP core every provider shares: timeouts, retries with backoff on 429/5xx honouring
Retry-After, pagination, the provider's error body as a clear message, secrets redacted."""
from __future__ import annotations

import copy
import email.utils
import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import requests

from nself.errors import Exit, NselfError

_RETRY_STATUS = {429, 500, 502, 503, 504}
_SAFE_METHODS = {"GET", "HEAD", "PUT", "DELETE"}   # repeating them cannot make a second thing


class ProviderError(NselfError):
    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None,
                 ambiguous: bool = False):
        super().__init__(message, code=Exit.PROVIDER, hint=hint)
        self.status = status
        # True when a create may have happened although it failed (timeout, 5xx): the caller
        # must look before it tries again.
        self.ambiguous = ambiguous


def api_url(provider: str, default: str) -> str:
    """NSELF_<PROVIDER>_API_URL replaces the documented base URL (regional endpoints, tests)."""
    return (os.environ.get(f"NSELF_{provider.upper()}_API_URL") or default).rstrip("/")


def _retry_after(response: requests.Response, attempt: int, backoff: float) -> float:
    value = response.headers.get("Retry-After") if response is not None else None
    if value:
        if value.strip().isdigit():
            return min(float(value), 120.0)
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is not None:
            return max(0.0, min(parsed.timestamp() - time.time(), 120.0))
    return backoff * (2 ** attempt)


class Api:
    """Requests to one provider. `auth` signs a request (header or signature), `secrets` are the
    values never to show, `describe_error` turns the provider's error body into a sentence."""

    def __init__(self, provider: str, base_url: str, *, auth: Callable[[requests.PreparedRequest], Any],
                 secrets: list[str], describe_error: Callable[[Any], str | None] = lambda body: None,
                 timeout: float = 30.0, retries: int = 4, backoff: float = 0.5, deadline: float | None = None,
                 log: Callable[[str], None] = lambda text: None, sleep: Callable[[float], None] = time.sleep):
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.auth = auth
        self.session.headers["User-Agent"] = "nself"
        self.secrets = [s for s in secrets if s]
        self.describe_error = describe_error
        self.timeout = timeout
        # One call, retries included, ends within this many seconds (NSELF_API_DEADLINE).
        self.deadline = deadline if deadline is not None else float(os.environ.get("NSELF_API_DEADLINE") or 90)
        self.retries = retries
        self.backoff = backoff
        self.log = log
        self.sleep = sleep

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def at(self, base_url: str, auth: Callable[[requests.PreparedRequest], Any] | None = None) -> Api:
        """The same provider and credentials against another endpoint (a region's, a zone's);
        `auth` replaces the signer when the credentials are scoped to the endpoint (SigV4)."""
        other = copy.copy(self)
        other.base_url = base_url.rstrip("/")
        if auth is not None:
            other.session = requests.Session()
            other.session.headers.update(self.session.headers)
            other.session.auth = auth
        return other

    def request(self, method: str, path: str, *, params: dict | None = None, json: Any = None,
                text: str | None = None, form: dict | None = None, ok: tuple[int, ...] = (), raw: bool = False,
                shape: type = dict, idempotent: bool | None = None) -> Any:
        """The decoded JSON body (None when empty; with `raw`, the text as it came: a kubeconfig,
        an XML answer). Statuses in `ok` count as success (e.g. 404 on a delete that already
        happened). `text` sends a plain-text body instead of JSON, `form` a form-encoded one (the
        AWS Query API). A body that is not of `shape` (an object, or a list for the few endpoints
        answering one) is refused: `null` or `[]` from a proxy. `idempotent` says a request is
        safe to repeat whatever its method (the Query API reads with POST; a create that carries
        a client token); by default GET, HEAD, PUT and DELETE are."""
        url = self.base_url + path
        safe = method in _SAFE_METHODS if idempotent is None else idempotent
        data, content_type = None, None
        if text is not None:
            data, content_type = text.encode(), "text/plain"
        elif form is not None:
            data, content_type = urlencode(form).encode(), "application/x-www-form-urlencoded; charset=utf-8"
        ends = time.monotonic() + self.deadline
        for attempt in range(self.retries + 1):
            self.log(f"{self.provider}: {method} {path}" + (f" {params}" if params else ""))
            left = ends - time.monotonic()
            if left <= 0:
                raise ProviderError(f"{self.provider}: {method} {path}: no answer within {self.deadline:g} s",
                                    hint="the provider is slow or unreachable; try again later, or raise "
                                         "NSELF_API_DEADLINE", ambiguous=not safe)
            try:
                response = self.session.request(
                    method, url, params=params, json=json, timeout=min(self.timeout, left), data=data,
                    headers=None if content_type is None else {"Content-Type": content_type})
            except requests.RequestException as exc:
                if safe and attempt < self.retries:
                    self.sleep(self.backoff * (2 ** attempt))
                    continue
                raise ProviderError(self.redact(f"{self.provider}: {method} {path}: {type(exc).__name__}: {exc}"),
                                    hint=f"check your network, or {_env_hint(self.provider)}",
                                    ambiguous=not safe) from None
            status = response.status_code
            if status in _RETRY_STATUS and status not in ok and attempt < self.retries and \
                    (safe or status == 429):
                # A 429 means the request was refused, so even a create is safe to repeat.
                wait = _retry_after(response, attempt, self.backoff)
                self.log(f"{self.provider}: {status}, retrying in {wait:.1f}s")
                self.sleep(min(wait, max(0.0, ends - time.monotonic())))
                continue
            if status < 400 or status in ok:
                if not response.content or status in ok and status >= 400:
                    return None
                if raw:
                    return response.text
                try:
                    answer = response.json()
                except ValueError:
                    answer = None
                if not isinstance(answer, shape):
                    raise ProviderError(f"{self.provider}: {method} {path}: the answer is not a JSON "
                                        f"{'list' if shape is list else 'object'} ({response.text[:60]!r})",
                                        status=status,
                                        hint="a proxy or an outage page may be in the way; try again later")
                return answer
            raise self._error(method, path, response, safe)
        raise AssertionError("unreachable")

    def _error(self, method: str, path: str, response: requests.Response, safe: bool) -> ProviderError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = response.text          # XML (AWS), HTML from a proxy, plain text
        detail = self.describe_error(body) if isinstance(body, dict | str) else None
        detail = detail or (response.text[:200].strip() or response.reason)
        message = self.redact(f"{self.provider}: {method} {path}: {status} {detail}")
        if status in (401, 403):
            hint = f"the credentials were refused: {_env_hint(self.provider)}"
        elif status == 429:
            hint = "the provider is rate-limiting this account; wait a minute and try again"
        elif status >= 500:
            hint = "the provider had an internal error; try again, or see its status page"
        else:
            hint = "check the values you passed (cloud.providers.regions / cloud.providers.sizes)"
        return ProviderError(message, status=status, hint=hint, ambiguous=status >= 500 and not safe)

    def pages(self, path: str, key: str, next_params: Callable[[Any, dict], dict | None],
              params: dict | None = None) -> Iterator[Any]:
        """Every item of a paginated list: `next_params(body, params)` gives the next page's
        parameters, or None at the end."""
        params = dict(params or {})
        for _ in range(10_000):
            body = self.request("GET", path, params=params)
            yield from body.get(key) or []
            following = next_params(body, params)
            if not following:
                return
            params = following
        raise ProviderError(f"{self.provider}: {path}: more than 10000 pages")


def _env_hint(provider: str) -> str:
    return f"run `nself cloud.providers.init {provider}` or set the provider's token variable"


def bearer(token: str) -> Callable[[requests.PreparedRequest], requests.PreparedRequest]:
    def sign(request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {token}"
        return request
    return sign


def token_or_basic(values: dict[str, str]):
    """An API token when there is one, else the account's user and password (UpCloud, IONOS)."""
    if "token" in values:
        return bearer(values["token"])
    return requests.auth.HTTPBasicAuth(values["username"], values["password"])
