"""`service search index|query` against a Meilisearch fake over real HTTP (nself/testing/meili.py;
Meilisearch's server is not installable here). The fake is first held to Meilisearch's official
Python client: it must accept the client's requests and the client must parse its answers; then
nself's requests must be the ones the client sends for the same operations."""
from __future__ import annotations

import json

import meilisearch
import pytest

from nself.testing.meili import FakeMeilisearch
from tests.services.test_enable import new_project

KEY = "test-master-key-0123456789"
MOVIES = [{"id": 1, "title": "Carol", "genre": "drama"}, {"id": 2, "title": "Wonder Woman", "genre": "action"},
          {"id": 3, "title": "Life of Pi", "genre": "adventure drama"}]


@pytest.fixture
def meili():
    with FakeMeilisearch(KEY) as fake:
        yield fake


def test_the_fake_answers_the_official_client(meili):
    client = meilisearch.Client(meili.url, KEY, timeout=10)
    task = client.index("movies").add_documents(MOVIES)
    done = client.wait_for_task(task.task_uid, timeout_in_ms=10_000)
    assert done.status == "succeeded" and done.details["indexedDocuments"] == 3
    found = client.index("movies").search("drama")
    assert sorted(h["id"] for h in found["hits"]) == [1, 3] and found["estimatedTotalHits"] == 2
    with pytest.raises(meilisearch.errors.MeilisearchApiError) as refused:
        meilisearch.Client(meili.url, "wrong", timeout=10).index("movies").search("x")
    assert refused.value.code == "invalid_api_key" and refused.value.status_code == 403


def project_with_search(nself, tmp_path, meili):
    root = new_project(nself, tmp_path)
    assert nself(["service", "search", "enable"], cwd=root).code == 0
    (root / ".env.local").write_text(f"MEILI_URL={meili.url}\n")
    secrets = (root / ".env.secrets").read_text()
    (root / ".env.secrets").write_text(secrets.replace(secrets.split("MEILI_MASTER_KEY=")[1].split("\n")[0], KEY))
    return root


def requests_of(meili, since: int) -> list[tuple]:
    return [(r["method"], r["path"], r["query"], r["content_type"], r["authorization"], r["body"])
            for r in meili.requests[since:]]


def test_index_then_query_send_what_the_official_client_sends(nself, tmp_path, meili):
    root = project_with_search(nself, tmp_path, meili)
    (root / "movies.json").write_text(json.dumps(MOVIES))
    r = nself(["service", "search", "index", "movies", "--file", "movies.json", "--json"], cwd=root)
    assert r.code == 0, r.err
    assert r.json() == {"index": "movies", "task": 0, "status": "succeeded", "indexed": 3}
    ours = requests_of(meili, 0)

    r = nself(["service", "search", "query", "movies", "life pi", "--json"], cwd=root)
    assert r.code == 0, r.err
    assert [h["id"] for h in r.json()["hits"]] == [3] and KEY not in r.out + r.err
    ours += requests_of(meili, len(meili.requests) - 1)

    start = len(meili.requests)
    client = meilisearch.Client(meili.url, KEY, timeout=10)
    client.wait_for_task(client.index("movies").add_documents(MOVIES).task_uid, timeout_in_ms=10_000)
    client.index("movies").search("life pi", {"limit": 20})
    theirs = requests_of(meili, start)
    def same(a):   # the task number differs between the two runs
        return (a[0], a[1].replace("/tasks/1", "/tasks/0"), a[2], a[3], a[4], a[5])
    assert [same(a) for a in ours] == [same(a) for a in theirs]


def test_refusals_come_back_as_exit_codes_with_meilisearchs_reason(nself, tmp_path, meili):
    root = project_with_search(nself, tmp_path, meili)
    (root / "bad.json").write_text(json.dumps([{"title": "no id here"}]))
    r = nself(["service", "search", "index", "movies", "--file", "bad.json"], cwd=root)
    assert r.code == 4 and "primary key inference failed" in r.err and "--primary-key" in r.err
    r = nself(["service", "search", "index", "movies", "--file", "bad.json", "--primary-key", "title"], cwd=root)
    assert r.code == 0, r.err
    r = nself(["service", "search", "query", "nosuch", "x"], cwd=root)
    assert r.code == 2 and "index_not_found" in r.err
    (root / ".env.local").write_text(f"MEILI_URL={meili.url}\nMEILI_MASTER_KEY=not-the-key\n")
    r = nself(["service", "search", "query", "movies", "x"], cwd=root)
    assert r.code == 7 and "invalid_api_key" in r.err and "not-the-key" not in r.err
    r = nself(["service", "search", "index", "movies", "--file", "missing.json"], cwd=root)
    assert r.code == 2 and "cannot read" in r.err


def test_dry_run_shows_the_plan_and_sends_nothing(nself, tmp_path, meili):
    root = project_with_search(nself, tmp_path, meili)
    (root / "movies.json").write_text(json.dumps(MOVIES))
    r = nself(["service", "search", "index", "movies", "--file", "movies.json", "--dry-run", "--json"], cwd=root)
    assert r.code == 0, r.err
    [step] = r.json()["plan"]["steps"]
    assert (step["kind"], step["method"]) == ("http", "POST")
    assert step["url"] == f"{meili.url}/indexes/movies/documents"
    assert meili.requests == [] and KEY not in r.out
