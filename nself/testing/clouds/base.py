"""What every fake provider API shares: the HTTP server on 127.0.0.1, injected faults, paging,
the route table, and the check of every request (and of the fake's own answers) against the
provider's description. A provider module adds its catalog (a data file), its error shape and
its handlers."""
from __future__ import annotations

import datetime
import itertools
import json
import re
import threading
import time
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

import yaml

from nself.testing.openapi import Contract

DATA = Path(__file__).parent / "data"


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def public(thing: dict) -> dict:
    """An object as the API shows it: the fake's bookkeeping (`_polls`, `_ip`, …) left out."""
    return {k: v for k, v in thing.items() if not k.startswith("_")}


def copy(data):
    """A deep copy of JSON-shaped data (examples and recorded answers are shared templates)."""
    return json.loads(json.dumps(data))


class Answer(Exception):
    """Raised by a handler to answer at once: an unknown id (404), a conflict, a refused body."""

    def __init__(self, reply: tuple[int, object]):
        super().__init__(reply[0])
        self.reply = reply


@cache
def catalog(name: str) -> dict:
    """The fake's regions, sizes, images and versions: data/<name>.yml (read once)."""
    return yaml.safe_load((DATA / f"{name}.yml").read_text())


class FakeCloud:
    """`routes` is the fake's API: (method, path regex, handler name). A handler gets the query,
    the decoded body and the regex's named groups, and returns (status, answer). A path that
    matches no route is a 404; one that matches for another method, a 405."""

    name = ""
    token_env = ""
    prefix = ""            # the version path nself puts in front (part of the base URL)
    boot_polls = 2         # GETs of a new server before it runs
    page_cap = 2           # at most this many items per page, whatever per_page asks
    delay = 0.0            # seconds each answer takes (latency, for benchmarks)
    text_type = "application/yaml"   # the Content-Type of answers given as text
    routes: tuple[tuple[str, str, str], ...] = ()

    def __init__(self, contract: Contract | None, token: str = "fake-token-0123456789"):
        self.contract = contract
        self.token = token
        self.catalog = catalog(self.name)
        self.requests: list[dict] = []
        self.violations: list[str] = []
        self.faults: list[dict] = []
        self.servers: dict[str, dict] = {}
        self.clusters: dict[str, dict] = {}
        self.keys: list[dict] = []
        # What a cluster's kubeconfig endpoint answers; a test points it at its own API server.
        self.kubeconfig = ("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: "
                           "'https://127.0.0.1:6443'}\nusers:\n- name: u\n  user: {token: fake-cluster-token}\n"
                           "contexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n")
        self.ids = itertools.count(1001)
        self.lock = threading.Lock()
        self._table = [(method, re.compile(pattern), getattr(self, handler))
                       for method, pattern, handler in self.routes]
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, name=f"fake-{self.name}", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{self.prefix}"

    def env(self) -> dict[str, str]:
        return {f"NSELF_{self.name.upper()}_API_URL": self.url, self.token_env: self.token}

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail(self, method: str, path: str, status: int, times: int = 1, retry_after: int | None = None,
             after: bool = False) -> None:
        """The next `times` requests matching METHOD and path regex get `status`; with `after`, the
        request is carried out first and only its answer fails (a create that happened anyway)."""
        self.faults.append({"method": method, "path": re.compile(path), "status": status, "times": times,
                            "retry_after": retry_after, "after": after})

    def calls(self, method: str, pattern: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method and re.search(pattern, r["path"])]

    # --- what a provider module decides ---------------------------------------------------
    def authorized(self, method: str, raw_path: str, header: str, body: bytes) -> bool:
        return header == f"Bearer {self.token}"

    def error(self, status: int, code: str, message: str) -> tuple[int, object]:
        raise NotImplementedError

    # --- shared behaviour -----------------------------------------------------------------
    def route(self, method: str, path: str, query: dict, body) -> tuple[int, object]:
        """The first route whose method and path match handles the request."""
        allowed = False
        for verb, pattern, handler in self._table:
            match = pattern.fullmatch(path)
            if match and verb == method:
                try:
                    return handler(query, body, **match.groupdict())
                except Answer as answer:
                    return answer.reply
            allowed = allowed or bool(match)
        if allowed:
            return self.error(405, "method_not_allowed", f"{method} {path}")
        return self.error(404, "not_found", f"{method} {path} not found")

    def page(self, items: list, query: dict) -> tuple[list, int, int | None]:
        """page/per_page paging: (this page's items, the last page's number, the next one or None)."""
        per_page = min(int(query.get("per_page", 25)), self.page_cap)
        number = int(query.get("page", 1))
        chunk = items[(number - 1) * per_page: number * per_page]
        last = max(1, -(-len(items) // per_page))
        return chunk, last, number + 1 if number < last else None

    def one(self, store: dict, key: str, message: str, code: str = "not_found") -> dict:
        """The object with this id, or a 404 in the provider's words."""
        if key not in store:
            raise Answer(self.error(404, code, message))
        return store[key]

    def refuse(self, status: int, code: str, message: str) -> Answer:
        """A refusal in the provider's error shape, for a handler to raise."""
        return Answer(self.error(status, code, message))

    def tick(self, thing: dict) -> None:
        """Boot: a new server (or cluster) is ready after `boot_polls` reads."""
        thing["_polls"] = thing.get("_polls", 0) + 1

    def booted(self, thing: dict) -> bool:
        return thing.get("_polls", 0) >= self.boot_polls

    def check_fields(self, where: str, body: dict, allowed: set[str], required: tuple[str, ...] = (),
                     nested: dict[str, set[str]] | None = None) -> tuple[int, object] | None:
        """For APIs without a machine-readable description: the fields their reference
        documents. A body with others, or without a required one, is a violation (answered 400)."""
        problems = [f"unknown field {k!r}" for k in body if k not in allowed]
        for key, fields in (nested or {}).items():
            problems += [f"{key}[]: unknown field {k!r}" for item in body.get(key) or [] for k in item
                         if k not in fields]
        problems += [f"{k} is required" for k in required if k not in body]
        if not problems:
            return None
        self.violations.extend(f"{where}: {p}" for p in problems)
        return self.error(400, "invalid_request", "; ".join(problems))

    def _serve(self, method: str, raw_path: str, headers: dict, raw_body: bytes) -> tuple[int, object, dict]:
        parsed = urlparse(raw_path)
        path, query = parsed.path, dict(parse_qsl(parsed.query))
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            return (*self.error(400, "invalid_input", "the body is not JSON"), {})
        with self.lock:
            self.requests.append({"method": method, "path": path, "query": query, "body": body, "at": time.monotonic(),
                                  "authorization": headers.get("Authorization")})
            if not self.authorized(method, raw_path, headers.get("Authorization") or "", raw_body):
                return (*self.error(401, "unauthorized", "Unable to authenticate you"), {})
            described = self.contract is not None and self.contract.scope.match(path)
            if described:
                problems = self.contract.check_request(method, path, query, body, headers)
                if problems:
                    self.violations.extend(problems)
                    return (*self.error(400, "contract_violation", "; ".join(problems)), {})
            relative = path[len(self.prefix):]
            fault = self.injected(method, relative, lambda: self.route(method, relative, query, body))
            if fault:
                return fault
            status, answer = self.route(method, relative, query, body)
            if described and status < 400:
                self.violations.extend(self.contract.check_response(method, path, query, status,
                                                                    None if isinstance(answer, str) else answer))
            return status, answer, {}

    def injected(self, method: str, target: str, carry_out) -> tuple[int, object, dict] | None:
        """The answer of the next fault set for this request (`target`: its path, or what names
        the operation), after `carry_out()` when the fault lets the request happen first."""
        fault = next((f for f in self.faults if f["times"] > 0 and f["method"] == method
                      and f["path"].search(target)), None)
        if fault is None:
            return None
        fault["times"] -= 1
        if fault["after"]:
            carry_out()
        extra = {"Retry-After": str(fault["retry_after"])} if fault["retry_after"] is not None else {}
        return (*self.error(fault["status"], "fault", f"injected {fault['status']}"), extra)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                time.sleep(fake.delay)
                length = int(self.headers.get("Content-Length") or 0)
                status, answer, extra = fake._serve(self.command, self.path, dict(self.headers),
                                                    self.rfile.read(length) if length else b"")
                text = isinstance(answer, str)          # a kubeconfig as YAML, or XML (text_type)
                data = b"" if answer is None else answer.encode() if text else json.dumps(answer).encode()
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                if data:
                    self.send_header("Content-Type", fake.text_type if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

            def log_message(self, *args):
                pass

        return Handler
