"""`service list` and `service NAME enable|disable` on projects made by `nself new` and on the
nself stack fixture: the files they write, the formatting they keep, and what they refuse."""
from __future__ import annotations

import stat

import pytest
import yaml

from nself.services.catalog import SERVICES
from nself.services.envtext import defined

FILES = ("docker-compose.yml", ".env", ".env.secrets")


def new_project(nself, where, *answers):
    """`nself new app` with no optional service unless `answers` turn one on."""
    extra = [a for pair in [("--extra", f"{k}=false") for k in ("mailpit", "minio", "redis")] +
             [("--extra", a) for a in answers] for a in pair]
    r = nself(["new", "app", "--no-input", *extra], cwd=where)
    assert r.code == 0, r.err
    return where / "app"


def snapshot(root):
    return {name: (root / name).read_bytes() if (root / name).exists() else None for name in FILES}


@pytest.mark.parametrize("name", list(SERVICES))
def test_enable_adds_block_variables_and_secrets_and_disable_restores_every_byte(nself, tmp_path, name):
    root = new_project(nself, tmp_path)
    before = snapshot(root)
    svc = SERVICES[name]
    r = nself(["service", name, "enable", "--json"], cwd=root)
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["state"] == "enabled" and doc["secrets"] == list(svc.secrets)
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    assert compose["services"][svc.compose_name] == svc.block
    assert set(svc.volumes) <= set(compose.get("volumes") or {})
    assert set(svc.variables) <= defined((root / ".env").read_text())
    secrets_text = (root / ".env.secrets").read_text()
    assert stat.S_IMODE((root / ".env.secrets").stat().st_mode) == 0o600
    for key in svc.secrets:
        value = secrets_text.split(f"\n{key}=", 1)[1].split("\n", 1)[0]
        assert len(value) == 48 and value not in r.out + r.err   # fresh, and never printed
    assert nself(["config.validate"], cwd=root).code == 0
    listed = {s["service"]: s["enabled"] for s in nself(["service", "list", "--json"], cwd=root).json()["services"]}
    assert listed == {s: s == name for s in SERVICES}

    r = nself(["service", name, "disable"], cwd=root)
    assert r.code == 0, r.err
    assert snapshot(root) == before


def test_on_the_stack_fixture_the_users_comments_and_layout_survive(nself, stack):
    """The nself stack's compose file (comments above services, long flow lists): enabling
    mlflow adds only its lines; disabling gives the file back byte for byte."""
    before = snapshot(stack)
    assert nself(["service", "mlflow", "enable"], cwd=stack).code == 0
    old, new = before["docker-compose.yml"].decode(), (stack / "docker-compose.yml").read_text()
    added = [line for line in new.splitlines() if line not in old.splitlines()]
    assert "  mlflow:" in added and all(line.startswith("  ") or not line.strip() for line in added)
    assert [line for line in old.splitlines() if line not in new.splitlines()] == []
    assert nself(["service", "mlflow", "disable"], cwd=stack).code == 0
    assert snapshot(stack) == before


def test_already_enabled_unknown_and_not_enabled_are_usage_errors_that_change_nothing(nself, stack, tmp_path):
    before = snapshot(stack)
    r = nself(["service", "search", "enable"], cwd=stack)   # the stack has meilisearch
    assert r.code == 2 and "already enabled" in r.err
    root = new_project(nself, tmp_path)
    r = nself(["service", "email", "disable"], cwd=root)
    assert r.code == 2 and "is not enabled" in r.err
    r = nself(["service", "serach", "enable"], cwd=stack)
    assert r.code != 0 and "Traceback" not in r.err
    assert snapshot(stack) == before


@pytest.mark.parametrize("compose", [
    "services: {postgres: {image: 'postgres:16', environment: {POSTGRES_PASSWORD: x}}}\n",
    # a block scalar whose last line looks like a comment: a line edit would cut it off
    "services:\n  postgres:\n    image: postgres:16\n    environment: {POSTGRES_PASSWORD: x}\n"
    "    command: |\n      postgres\n      # -c log_statement=all\n",
], ids=["flow-style", "block-scalar-ending-like-a-comment"])
def test_a_compose_file_it_cannot_edit_safely_is_refused_untouched(nself, tmp_path, compose):
    root = new_project(nself, tmp_path)
    (root / "docker-compose.yml").write_text(compose)
    before = snapshot(root)
    r = nself(["service", "search", "enable"], cwd=root)
    assert r.code == 3 and "cannot be edited safely" in r.err and "Traceback" not in r.err
    assert snapshot(root) == before


def test_a_change_that_fails_validation_is_undone_in_every_file(nself, tmp_path):
    """The user's .env.secrets already sets NSELF_ADMIN_PASSWORD, empty: enable keeps the
    user's line, the admin block's `${NSELF_ADMIN_PASSWORD:?}` then fails validation, and
    the compose file, .env and .env.secrets are all put back."""
    root = new_project(nself, tmp_path)
    with open(root / ".env.secrets", "a") as handle:
        handle.write("NSELF_ADMIN_PASSWORD=\n")
    before = snapshot(root)
    r = nself(["service", "admin", "enable"], cwd=root)
    assert r.code == 3 and "nothing was changed" in r.err and "NSELF_ADMIN_PASSWORD" in r.err
    assert snapshot(root) == before


def test_the_fragments_are_the_blocks_the_blueprint_writes(nself, tmp_path):
    from nself.services.monitor import COMPONENTS, current_profile, scrape_config

    root = new_project(nself, tmp_path, "stack=minimal", "mailpit=true", "search=true", "functions=true",
                       "monitoring=true")
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    for svc in [SERVICES["email"], SERVICES["search"], SERVICES["functions"], COMPONENTS["prometheus"],
                COMPONENTS["grafana"]]:
        assert compose["services"][svc.compose_name] == svc.block, svc.name
    assert (root / "monitoring" / "prometheus.yml").read_text() == scrape_config("minimal")
    assert current_profile(root) == "minimal"


def test_without_monitoring_the_blueprint_writes_no_scrape_config(nself, tmp_path):
    assert not (new_project(nself, tmp_path) / "monitoring").exists()
