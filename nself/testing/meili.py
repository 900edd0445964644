"""A Meilisearch fake over real HTTP, for `service search` tests: Meilisearch's server is not
installable here (no PyPI or Debian package).

Built from Meilisearch's published API (the specifications repository's "Search API",
"Documents API", "Tasks API" and "Error format and definitions" texts, v1.x) for the routes nself
uses: `POST /indexes/{uid}/documents` (asynchronous: a task), `GET /tasks/{uid}`,
`POST /indexes/{uid}/search`, `GET /health`; master-key auth (Bearer); the error object
`{message, code, type, link}` with its HTTP status. Its faithfulness is checked by driving it
with Meilisearch's official Python client (tests/services/test_search.py), whose requests it
must accept and whose models must parse its answers. Every request is recorded.
"""
from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_UID = re.compile(r"^[A-Za-z0-9_-]{1,400}$")
_ERRORS = {   # code → (HTTP status, type), from "Error format and definitions"
    "missing_authorization_header": (401, "auth"), "invalid_api_key": (403, "auth"),
    "index_not_found": (404, "invalid_request"), "task_not_found": (404, "invalid_request"),
    "invalid_index_uid": (400, "invalid_request"), "missing_content_type": (415, "invalid_request"),
    "invalid_content_type": (415, "invalid_request"), "malformed_payload": (400, "invalid_request"),
    "missing_payload": (400, "invalid_request"), "invalid_search_q": (400, "invalid_request"),
}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class _Refused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class FakeMeilisearch:
    """`with FakeMeilisearch(master_key) as meili:` → `meili.url`, `meili.requests`, `meili.indexes`."""

    def __init__(self, master_key: str | None):
        self.master_key = master_key
        self.indexes: dict[str, dict] = {}    # uid → {"primaryKey", "documents": {id: doc}}
        self.tasks: list[dict] = []
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    # -- routes -----------------------------------------------------------------------
    def route(self, method: str, path: str, query: dict, headers, body: bytes) -> tuple[int, object]:
        if path == "/health" and method == "GET":
            return 200, {"status": "available"}
        self._authorize(headers.get("Authorization"))
        if m := re.fullmatch(r"/indexes/([^/]+)/documents", path):
            if method == "POST":
                return 202, self._add_documents(m.group(1), query, headers, body)
        elif m := re.fullmatch(r"/indexes/([^/]+)/search", path):
            if method == "POST":
                return 200, self._search(m.group(1), self._json(headers, body, required=False) or {})
        elif m := re.fullmatch(r"/tasks/(\d+)", path):
            if method == "GET":
                return 200, self._task(int(m.group(1)))
        return 404, None

    def _authorize(self, header: str | None) -> None:
        if self.master_key is None:
            return
        if not header:
            raise _Refused("missing_authorization_header",
                           "The Authorization header is missing. It must use the bearer authorization method.")
        if header != f"Bearer {self.master_key}":
            raise _Refused("invalid_api_key", "The provided API key is invalid.")

    def _json(self, headers, body: bytes, required: bool = True):
        kind = headers.get("Content-Type")
        if not body and not required:
            return None
        if kind is None:
            raise _Refused("missing_content_type", "A Content-Type header is missing. Accepted values for the "
                                                   "Content-Type header are: `application/json`")
        if kind.split(";")[0].strip() != "application/json":
            raise _Refused("invalid_content_type", f"The Content-Type `{kind}` is invalid. Accepted values for "
                                                   "the Content-Type header are: `application/json`")
        if not body:
            raise _Refused("missing_payload", "A json payload is missing.")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise _Refused("malformed_payload", f"The json payload provided is malformed. `{exc}`.") from None

    def _add_documents(self, uid: str, query: dict, headers, body: bytes) -> dict:
        if not _UID.match(uid):
            raise _Refused("invalid_index_uid", f"`{uid}` is not a valid index uid. Index uid can be an integer or "
                                                "a string containing only alphanumeric characters, hyphens (-) "
                                                "and underscores (_), and can not be more than 400 bytes.")
        docs = self._json(headers, body)
        docs = [docs] if isinstance(docs, dict) else docs
        if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
            raise _Refused("malformed_payload", "The json payload provided is malformed. "
                                                "`expected a sequence of documents`.")
        with self._lock:
            task = {"uid": len(self.tasks), "indexUid": uid, "status": "enqueued",
                    "type": "documentAdditionOrUpdate", "canceledBy": None,
                    "details": {"receivedDocuments": len(docs), "indexedDocuments": None},
                    "error": None, "duration": None, "enqueuedAt": _now(), "startedAt": None, "finishedAt": None}
            self.tasks.append(task)
            self._process(task, docs, (query.get("primaryKey") or [None])[0])
        return {"taskUid": task["uid"], "indexUid": uid, "status": "enqueued",
                "type": "documentAdditionOrUpdate", "enqueuedAt": task["enqueuedAt"]}

    def _process(self, task: dict, docs: list[dict], primary_key: str | None) -> None:
        """Index at once; the task reads `succeeded` (or `failed` with the engine's error) from
        its first GET. Primary key: the given one, the index's, else the only field named *id."""
        index = self.indexes.get(task["indexUid"])
        key = primary_key or (index or {}).get("primaryKey")
        if key is None:
            candidates = sorted({f for d in docs for f in d if f.lower().endswith("id")})
            if len(candidates) != 1:
                return self._fail(task, "index_primary_key_no_candidate_found",
                                  "The primary key inference failed as the engine did not find any field "
                                  "ending with `id` in its name. Please specify the primary key manually "
                                  "using the `primaryKey` query parameter.")
            key = candidates[0]
        missing = [d for d in docs if key not in d]
        if missing:
            return self._fail(task, "missing_document_id", f"Document doesn't have a `{key}` attribute: "
                                                           f"`{json.dumps(missing[0])}`.")
        index = self.indexes.setdefault(task["indexUid"], {"primaryKey": key, "documents": {}})
        for doc in docs:
            index["documents"][str(doc[key])] = {**index["documents"].get(str(doc[key]), {}), **doc}
        task.update(status="succeeded", details={"receivedDocuments": len(docs), "indexedDocuments": len(docs)},
                    duration="PT0.001S", startedAt=_now(), finishedAt=_now())

    def _fail(self, task: dict, code: str, message: str) -> None:
        task.update(status="failed", error={"message": message, "code": code, "type": "invalid_request",
                                            "link": f"https://docs.meilisearch.com/errors#{code}"},
                    details={**task["details"], "indexedDocuments": 0},
                    duration="PT0.001S", startedAt=_now(), finishedAt=_now())

    def _task(self, uid: int) -> dict:
        if uid >= len(self.tasks):
            raise _Refused("task_not_found", f"Task `{uid}` not found.")
        return self.tasks[uid]

    def _search(self, uid: str, params: dict) -> dict:
        if uid not in self.indexes:
            raise _Refused("index_not_found", f"Index `{uid}` not found.")
        q = params.get("q") or ""
        if not isinstance(q, str):
            raise _Refused("invalid_search_q", "Invalid value type at `.q`: expected a string.")
        limit, offset = int(params.get("limit", 20)), int(params.get("offset", 0))
        terms = q.lower().split()
        hits = [d for d in self.indexes[uid]["documents"].values() if all(_matches(t, d) for t in terms)]
        return {"hits": hits[offset:offset + limit], "query": q, "processingTimeMs": 0, "limit": limit,
                "offset": offset, "estimatedTotalHits": len(hits)}

    # -- HTTP -------------------------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                query = parse_qs(parts.query)
                fake.requests.append({"method": self.command, "path": parts.path,
                                      "query": {k: v[0] for k, v in query.items()},
                                      "content_type": self.headers.get("Content-Type"),
                                      "authorization": self.headers.get("Authorization"),
                                      "body": json.loads(body) if body else None})
                try:
                    status, doc = fake.route(self.command, parts.path, query, self.headers, body)
                except _Refused as exc:
                    status, doc_type = _ERRORS[exc.code]
                    doc = {"message": str(exc), "code": exc.code, "type": doc_type,
                           "link": f"https://docs.meilisearch.com/errors#{exc.code}"}
                data = json.dumps(doc).encode() if doc is not None else b""
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any   # noqa: N815 - http.server's names

            def log_message(self, *args):
                pass

        return Handler


def _matches(term: str, doc: dict) -> bool:
    """A query word matches a document when it starts one of the words of its text values."""
    words = re.findall(r"\w+", " ".join(str(v) for v in doc.values() if isinstance(v, (str, int, float))).lower())
    return any(w.startswith(term) for w in words)
