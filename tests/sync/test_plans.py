"""Pure parts of sync: where a database is, the plans' exact commands, the masking filter,
env-file merges. No process, no network."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from nself.errors import ConfigError
from nself.project import load_project
from nself.remote.inventory import Server
from nself.sync import config as configsync
from nself.sync import db as dbsync
from nself.sync import endpoints, mask
from tests.conftest import make_project
from tests.sync.conftest import COMPOSE

SERVERS = {"db1": Server("db1", "10.0.0.5", 2222, "deploy", sudo=True)}


def _project(tmp_path: Path, env: str, environments: str):
    root = make_project(tmp_path / "app", COMPOSE, {
        "nself.yml": f"environments:\n{environments}",
        ".env": "POSTGRES_DB=shop\nPOSTGRES_USER=shop\n", ".env.staging": "POSTGRES_PASSWORD=stg-secret-1\n",
        ".env.dev": "POSTGRES_PASSWORD=local-secret-1\nPOSTGRES_PORT=6543\n"})
    return load_project(root, env=env)


def test_an_ssh_environment_defaults_to_exec_in_the_compose_container(tmp_path):
    project = _project(tmp_path, "staging", "  staging:\n    hosts: [db1]\n    path: /opt/shop\n    runtime: docker\n")
    db = endpoints.resolve(project, SERVERS)
    assert (db.on, db.via, db.name, db.user, db.state) == ("db1", "exec", "shop", "shop", "/opt/shop/.nself")
    assert db.tool("pg_dump", "-Fc", "-d", "shop", sync_id="s1") == (
        'docker exec -i "$(docker ps -q --filter label=com.docker.compose.project=app '
        '--filter label=com.docker.compose.service=postgres | head -n 1)" pg_dump -w -U shop -Fc -d shop')


def test_local_is_direct_on_the_published_port_with_a_password_file(tmp_path):
    db = endpoints.resolve(_project(tmp_path, "local", "  default: local\n"), {})
    assert (db.on, db.via, db.port, db.password) == ("local", "direct", 6543, "local-secret-1")
    assert db.tool("psql", "-c", "select 1", sync_id="s1") == \
        f"PGPASSFILE={db.state}/sync/s1.pgpass psql -w -h 127.0.0.1 -p 6543 -U shop -c 'select 1'"


def test_a_transfer_between_hosts_is_one_local_pipeline_with_sudo_on_sudo_hosts(tmp_path):
    staging = endpoints.resolve(_project(tmp_path, "staging", "  staging:\n    hosts: [db1]\n"), SERVERS)
    local = endpoints.resolve(load_project(tmp_path / "app", env="local"), {})
    step = dbsync.transfer_step(tmp_path, staging, local, dbsync.DbOptions(), "s1", SERVERS)
    assert step.argv[:4] == ("bash", "-o", "pipefail", "-c")
    remote, here = step.argv[4].split(" | { ", 1)
    assert remote.startswith("ssh -T -o BatchMode=yes -o StrictHostKeyChecking=yes") and "-p 2222 -l deploy" in remote
    assert "'sudo -n sh -c '" in remote and "10.0.0.5" in remote
    assert here.startswith("echo 'BEGIN;") and "PGPASSFILE=" in here and "pg_restore -w -h 127.0.0.1 -p 6543" in here
    # one transaction: the target's schemas dropped first (a mirror), COMMIT only after a whole dump
    assert here.index("DROP SCHEMA") < here.index("pg_restore") < here.index("COMMIT") < here.index("| PGPASSFILE=")
    kept = dbsync.transfer_step(tmp_path, staging, local, dbsync.DbOptions(keep_extra=True), "s1", SERVERS)
    assert "DROP SCHEMA" not in kept.argv[4] and "COMMIT" in kept.argv[4]
    plan = dbsync.plan(tmp_path, staging, local, dbsync.DbOptions(), "s1", SERVERS).plan()
    shown = "\n".join(plan.show())
    assert "local-secret-1" not in shown and "stg-secret-1" not in shown
    assert "(mode 0600)" in shown and "if the transfer fails: put local's snapshot back" in shown


@pytest.mark.parametrize("environments, words", [
    ("  staging:\n    database: {server: db9}\n", "db9"),
    ("  staging:\n    database: {url_env: DATABASE_URL}\n", "DATABASE_URL"),
])
def test_bad_database_settings_name_the_key(tmp_path, environments, words):
    with pytest.raises(ConfigError) as caught:
        endpoints.resolve(_project(tmp_path, "staging", environments), SERVERS)
    assert caught.value.code == 3 and words in caught.value.message


def test_a_kubernetes_environments_database_is_reached_by_kubectl_exec_from_here(tmp_path):
    db = endpoints.resolve(_project(tmp_path, "staging", "  staging:\n    context: kind-x\n    namespace: shop\n"),
                           SERVERS)
    assert (db.on, db.via, db.kubectl) == ("local", "kubectl", ("kubectl", "--context", "kind-x", "-n", "shop"))
    assert db.state.endswith("/.nself/state/staging")
    fragment = db.tool("pg_dump", "-Fc", "-d", db.name)
    assert fragment.startswith('kubectl --context kind-x -n shop exec -i "$(kubectl --context kind-x -n shop get pods')
    assert fragment.endswith(f"-- pg_dump -w -U {db.user} -Fc -d {db.name}")


def test_rules_are_normalised_and_bad_ones_refused():
    assert mask.normalize({"users.email": "email", "crm.people.phone": "phone"}) == \
        {"crm.people.phone": "phone", "public.users.email": "email"}
    for bad in ({"email": "email"}, {"users.email": "scramble"}):
        with pytest.raises(ConfigError):
            mask.normalize(bad)
    assert mask.unclassified(["public.users.email", "public.users.plan", "public.t.last_name", "public.t.ip"],
                             {"public.users.email": "email"}) == ["public.t.ip", "public.t.last_name"]


DUMP = b"""SET x = 1;
COPY public.users (id, email, "Full Name", plan) FROM stdin;
1\tann@corp.example\tAnn Lee\tpro
2\t\\N\tBo\\tB\tfree
\\.
COPY public.orders (id, note) FROM stdin;
1\tann@corp.example
\\.
"""


def test_the_filter_rewrites_only_classified_columns_deterministically():
    rules = {"public.users.email": "email", 'public.users.Full Name': "name"}
    out = io.BytesIO()
    mask.filter_dump(io.BytesIO(DUMP), out, rules)
    lines = out.getvalue().decode().splitlines()
    first, second = lines[2].split("\t"), lines[3].split("\t")
    assert first[0] == "1" and first[3] == "pro" and first[1].endswith("@example.com") and first[2] != "Ann Lee"
    assert second[1] == "\\N" and second[3] == "free"             # NULL stays NULL
    assert lines[6] == "1\tann@corp.example"                       # no rule for orders.note: untouched
    again = io.BytesIO()
    mask.filter_dump(io.BytesIO(DUMP), again, rules)
    assert again.getvalue() == out.getvalue()
    assert mask.fake("email", "ann@corp.example") != mask.fake("email", "bob@corp.example")


def test_a_merge_replaces_in_place_appends_and_quotes_literally():
    text = "# comment\nA=1\nexport B=2\n"
    assert configsync.merged(text, {"B": "x$y", "C": "it's"}) == \
        "# comment\nA=1\nB='x$y'\nC=\"it's\"\n"
