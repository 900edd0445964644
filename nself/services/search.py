"""`service search index|query`: the Meilisearch HTTP API (v1.x).

Where: MEILI_URL of the environment (`service search enable` sets the stack's
`http://meilisearch:7700`; from this machine point it at a published port in .env.local), and
MEILI_MASTER_KEY (.env.secrets) as `Authorization: Bearer`. Adding documents is asynchronous
in Meilisearch: the answer is a task, polled at `GET /tasks/{uid}` until it succeeds or fails.
"""
from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from nself.errors import ConfigError, Exit, NselfError, UsageError
from nself.plan import Plan, Step

TIMEOUT = 15.0        # seconds for one HTTP request
TASK_DEADLINE = 120.0   # seconds for an indexing task to finish
_DONE = ("succeeded", "failed", "canceled")


@dataclass(frozen=True)
class Meili:
    url: str
    key: str | None   # never shown

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}


def connection(variables: Mapping[str, str]) -> Meili:
    url = (variables.get("MEILI_URL") or "").rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError("MEILI_URL is not set to an http(s) URL for this environment",
                          hint="`nself service search enable` sets it for the stack; from this machine set "
                               "MEILI_URL=http://127.0.0.1:7700 (a published port) in .env.local")
    return Meili(url, variables.get("MEILI_MASTER_KEY") or None)


def read_documents(path: Path) -> list[dict]:
    """A JSON array of objects (or one object), or NDJSON (one object a line)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}", hint="pass --file with a JSON or NDJSON file") from None
    try:
        docs = json.loads(text)
    except ValueError:
        try:
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise UsageError(f"{path} is neither JSON nor NDJSON: {exc}",
                             hint="a JSON array of objects, or one JSON object a line") from None
    docs = [docs] if isinstance(docs, dict) else docs
    if not isinstance(docs, list) or not docs or not all(isinstance(d, dict) for d in docs):
        raise UsageError(f"{path} holds no documents (JSON objects)", hint="a JSON array of objects")
    return docs


def index_plan(meili: Meili, name: str, docs: list[dict], primary_key: str | None = None) -> Plan:
    """One http step: add or update `docs` in index `name` and wait for Meilisearch's task."""
    url = f"{meili.url}/indexes/{quote(name, safe='')}/documents"
    if primary_key:
        url += f"?primaryKey={quote(primary_key, safe='')}"
    body = json.dumps(docs)
    step = Step(f"add {len(docs)} document(s) to search index {name}", "http",
                spec={"method": "POST", "url": url}, data=body, timeout=TASK_DEADLINE, error_code=Exit.RUNTIME,
                call=lambda s: _add_and_wait(meili, s.spec["url"], s.data))
    return Plan(f"index {name}", [step])


def _add_and_wait(meili: Meili, url: str, body: str) -> dict:
    task = _request(meili, "POST", url, body)
    deadline, pause = time.monotonic() + TASK_DEADLINE, 0.05
    while True:
        state = _request(meili, "GET", f"{meili.url}/tasks/{task['taskUid']}")
        if state["status"] in _DONE:
            break
        if time.monotonic() > deadline:
            raise NselfError(f"Meilisearch task {task['taskUid']} did not finish within {TASK_DEADLINE:g}s",
                             code=Exit.TIMEOUT, hint=f"see GET {meili.url}/tasks/{task['taskUid']}")
        time.sleep(pause)
        pause = min(pause * 2, 1.0)
    if state["status"] != "succeeded":
        error = state.get("error") or {}
        raise NselfError(f"Meilisearch did not index the documents: {error.get('message', state['status'])}",
                         code=Exit.RUNTIME, hint=_hint(error.get("code")))
    return state


def query(meili: Meili, name: str, text: str, limit: int = 20) -> dict:
    """`POST /indexes/{name}/search` with `{"q": text, "limit": limit}`: Meilisearch's answer."""
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, not {limit}")
    return _request(meili, "POST", f"{meili.url}/indexes/{quote(name, safe='')}/search",
                    json.dumps({"q": text, "limit": limit}))


def _request(meili: Meili, method: str, url: str, body: str | None = None) -> dict:
    import requests

    headers = {**meili.headers(), **({"Content-Type": "application/json"} if body is not None else {})}
    try:
        answer = requests.request(method, url, data=body, headers=headers, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise NselfError(f"cannot reach Meilisearch at {meili.url}: {type(exc).__name__}", code=Exit.NETWORK,
                         hint="is it running (`nself service search status`), and MEILI_URL right?") from None
    if answer.status_code < 300:
        return answer.json()
    try:
        error = answer.json()
    except ValueError:
        error = {"message": answer.text[:200], "code": None}
    code = {401: Exit.PERMISSION, 403: Exit.PERMISSION, 404: Exit.USAGE}.get(answer.status_code, Exit.RUNTIME)
    raise NselfError(f"Meilisearch refused {method} {url.removeprefix(meili.url)}: {error.get('message')} "
                     f"({error.get('code')})", code=code, hint=_hint(error.get("code")))


def _hint(code: str | None) -> str | None:
    return {"missing_authorization_header": "set MEILI_MASTER_KEY (.env.secrets)",
            "invalid_api_key": "MEILI_MASTER_KEY does not match the server's master key",
            "index_not_found": "index documents first: `nself service search index NAME --file F`",
            "index_primary_key_no_candidate_found": "name the primary key: --primary-key FIELD",
            "missing_document_id": "every document needs the primary key field"}.get(code or "")
