"""sync.config: env files diffed with secrets masked, non-secret keys merged, rollback."""
from __future__ import annotations

import pytest

from tests.conftest import make_project

COMPOSE = "services:\n  web:\n    image: nginx\n"


@pytest.fixture
def envs(tmp_path):
    return make_project(tmp_path / "app", COMPOSE, {
        ".env": "APP=demo\n",
        ".env.staging": "API_URL=https://api.staging.example\nFEATURE_X=on\nSTRIPE_SECRET=sk_staging_123456\n"
                        "SHARED=same\n",
        ".env.dev": "API_URL=http://localhost:8080\nSTRIPE_SECRET=sk_local_abcdef\nSHARED=same\nLOCAL_ONLY=1\n",
    })


def test_the_diff_masks_secrets_and_the_merge_keeps_the_targets_secrets(envs, nself):
    result = nself(["sync.config", "staging", "local"], cwd=envs)
    assert result.code == 0, result.err
    assert "sk_staging_123456" not in result.out + result.err and "sk_local_abcdef" not in result.out
    assert "STRIPE_SECRET" in result.out and "[REDACTED]" in result.out and "FEATURE_X" in result.out
    written = (envs / ".env.local").read_text()
    assert "FEATURE_X='on'" in written and "API_URL='https://api.staging.example'" in written
    assert "STRIPE_SECRET" not in written
    assert oct((envs / ".env.local").stat().st_mode & 0o777) == "0o600"
    shown = nself(["config.get", "run.echo"], cwd=envs)   # the project still loads
    assert shown.code in (0, 2)
    # secrets only when asked
    nself(["sync.config", "staging", "local", "--include-secrets"], cwd=envs)
    assert "STRIPE_SECRET='sk_staging_123456'" in (envs / ".env.local").read_text()
    # rollback: to the file as the second sync found it, then (the first sync's) no file at all
    assert nself(["sync.rollback", "local"], cwd=envs).code == 0
    assert "STRIPE_SECRET" not in (envs / ".env.local").read_text()
    first = [line for line in (envs / ".nself" / "state" / "sync.log").read_text().splitlines() if '"config"' in line]
    import json
    assert nself(["sync.rollback", "local", "--to", json.loads(first[0])["id"]], cwd=envs).code == 0
    assert not (envs / ".env.local").exists()


def test_dry_run_shows_the_diff_and_writes_nothing(envs, nself):
    result = nself(["sync.config", "staging", "local", "--dry-run", "--json"], cwd=envs)
    assert result.code == 0, result.err
    document = result.json()
    changes = {c["key"]: c for c in document["changes"]}
    assert changes["STRIPE_SECRET"]["source"] == "[REDACTED]" and changes["LOCAL_ONLY"]["change"] == "only in target"
    assert "SHARED" not in changes
    assert [s["kind"] for s in document["plan"]["steps"]] == ["put"]
    assert "sk_staging" not in result.out
    assert not (envs / ".env.local").exists()


def test_history_status_and_sync_auto_without_entries(envs, nself):
    assert nself(["sync.config", "staging", "local"], cwd=envs).code == 0
    rows = nself(["sync.history", "--json"], cwd=envs).json()["syncs"]
    assert [(r["kind"], r["from"], r["env"], r["result"]) for r in rows] == [("config", "staging", "local", "ok")]
    status = {e["env"]: e for e in nself(["sync.status", "--json"], cwd=envs).json()["environments"]}
    assert status["local"]["rollback_to"] == rows[0]["id"] and status["local"]["kind"] == "config"
    bare = nself(["sync.auto"], cwd=envs)          # no sync.auto entries in nself.yml
    assert bare.code == 3 and "nothing to sync" in bare.err and "sync.auto.db" in bare.err
    assert nself(["sync.rollback", "staging"], cwd=envs).code == 2       # nothing to roll back to
