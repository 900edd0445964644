"""The executor's connections over real sshd hosts on 127.0.0.1: one per host, reused by every
round of a command (`Connections`), and opened afresh when it cannot be trusted any more. A host
names the connection a command reached it on by its client port (`$SSH_CONNECTION`)."""
from __future__ import annotations

import pytest

from nself.plan import Plan, put, shell
from nself.remote import inventory
from nself.remote.connection import trust
from nself.remote.executor import Connections, run_plans
from nself.remote.inventory import Server

PORT = 'set -- $SSH_CONNECTION; echo "$2"'


@pytest.fixture
def fleet(tmp_path, ssh_hosts):
    """(project root, servers) of two trusted hosts."""
    root = tmp_path / "app"
    root.mkdir()
    (root / "compose.yaml").write_text("services: {web: {image: 'nginx:1.27'}}\n")
    servers = {h.name: Server(h.name, h.address, h.port, "root", str(h.user_key)) for h in ssh_hosts(2)}
    inventory.save(root, servers)
    for server in servers.values():
        trust(root, server, servers)
    return root, servers


def ports(root, servers, connections=None, last=None) -> dict[str, str]:
    """Each host's client port for one round (after the steps `last`, if any)."""
    plans = {name: Plan("where from", [*(last or {}).get(name, []), shell("the client port", PORT, on=name)])
             for name in servers}
    results = run_plans(root, plans, servers, connections=connections)
    return {r.name: r.stdout.strip() for r in results}


def test_every_round_of_a_command_reuses_one_connection_per_host(fleet):
    root, servers = fleet
    pool = Connections()
    first = ports(root, servers, pool)
    assert all(first.values()) and ports(root, servers, pool) == first
    alone = ports(root, servers)                          # no pool: a connection of its own
    assert all(alone[name] != first[name] for name in servers)
    pool.close()
    again = ports(root, servers, pool)                    # closed: opened afresh
    assert all(again[name] != first[name] for name in servers)
    pool.close()


def test_a_failed_step_keeps_the_connection_a_broken_off_plan_does_not(fleet):
    root, servers = fleet
    pool = Connections()
    first = ports(root, servers, pool)
    failed = run_plans(root, {"host1": Plan("fail", [shell("fail", "exit 3", on="host1")])}, servers,
                       connections=pool)
    assert failed[0].exit_code == 3 and ports(root, servers, pool)["host1"] == first["host1"]
    broken = run_plans(root, {"host1": Plan("put", [put("into no folder", "/nonexistent/x", "x", on="host1")])},
                       servers, connections=pool)
    assert broken[0].error and not broken[0].ok            # SFTP raised: the connection's state is unknown
    after = ports(root, servers, pool)
    assert after["host1"] != first["host1"] and after["host2"] == first["host2"]
    pool.close()


def test_a_connection_idle_longer_than_persist_is_opened_again(fleet):
    root, servers = fleet
    pool = Connections(persist=0)
    first = ports(root, servers, pool)
    assert all(p != first[name] for name, p in ports(root, servers, pool).items())
    pool.close()


def test_warmed_connections_serve_the_rounds_and_a_failed_warm_up_is_reported_by_the_round(fleet):
    root, servers = fleet
    pool = Connections()
    pool.warm(root, servers, list(servers))
    first = ports(root, servers, pool)
    assert all(first.values()) and ports(root, servers, pool) == first
    pool.close()
    (root / ".nself" / "known_hosts").write_text("")         # host keys unknown now: nothing may connect
    pool.warm(root, servers, list(servers))
    refused = run_plans(root, {"host1": Plan("where from", [shell("the client port", PORT, on="host1")])}, servers,
                        connections=pool)
    assert refused[0].error_code == 7 and "host key" in refused[0].error, refused[0]
    pool.close()
