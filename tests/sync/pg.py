"""Real PostgreSQL 15 clusters for sync tests: one on this machine's loopback, and one inside
each networked sshd test host (its own /var/lib, its own 127.0.0.1). initdb refuses root, so
the clusters run as the `postgres` user; fsync is off (test data, a shared machine)."""
from __future__ import annotations

import shlex
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def _start_script(folder: str, port: int, password: str) -> str:
    q = shlex.quote
    data, log = f"{folder}/data", f"{folder}/log"
    return "\n".join([
        "set -e",
        # absolute paths: /usr/local/bin is a private, empty tmpfs on isolated test hosts
        "bin=$(ls -d /usr/lib/postgresql/15/bin)",
        f"mkdir -p {q(folder)} && chmod 0755 {q(folder)} && chown postgres {q(folder)}",
        f"printf '%s\\n' {q(password)} > {q(folder)}/pw && chown postgres {q(folder)}/pw",
        f'runuser -u postgres -- "$bin/initdb" -D ' f"{q(data)} -U postgres -E UTF8 --locale=C.UTF-8 "
        "--auth-local=trust "
        f"--auth-host=scram-sha-256 --pwfile={q(folder)}/pw > {q(folder)}/initdb.log",
        f"rm -f {q(folder)}/pw",
        f'runuser -u postgres -- "$bin/pg_ctl" -D 'f"{q(data)} -l {q(log)} -w -o "
        + q(f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off "
            "-c synchronous_commit=off")
        + " start > /dev/null",
    ])


@dataclass
class Cluster:
    """A running cluster. `sh(script)` runs a shell script where the cluster runs."""

    port: int
    folder: str
    password: str
    runner: object           # script → CompletedProcess

    def sh(self, script: str, check: bool = True, input: bytes | None = None) -> str:
        done = self.runner(script, input)
        if check and done.returncode:
            raise AssertionError(f"exit {done.returncode}: {done.stderr.decode()[-2000:]}")
        return done.stdout.decode()

    def sql(self, sql: str, db: str = "app") -> str:
        """psql -At as the superuser over the cluster's own socket."""
        return self.sh(f"cd / && runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 -h {self.folder} -p {self.port} "
                       f"-d {db} -c {shlex.quote(sql)}").strip()

    def stop(self) -> None:
        self.sh(f"runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D {self.folder}/data -m immediate -w stop",
                check=False)


def local_runner(script: str, input: bytes | None = None):
    return subprocess.run(["bash", "-c", script], input=input, capture_output=True, timeout=600)


def host_runner(host):
    """Run scripts on an sshd test host (the test's own key; the host is the test's own)."""
    def run(script: str, input: bytes | None = None):
        argv = ["ssh", "-T", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-i", str(host.user_key), "-p", str(host.port), f"root@{host.address}",
                f"bash -c {shlex.quote(script)}"]
        return subprocess.run(argv, input=input, capture_output=True, timeout=600)
    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_local(password: str) -> Cluster:
    folder = tempfile.mkdtemp(prefix="nself-pg-", dir="/var/tmp")
    Path(folder).chmod(0o755)
    cluster = Cluster(free_port(), folder, password, local_runner)
    cluster.sh(_start_script(folder, cluster.port, password))
    cluster.sql("create database app", db="postgres")
    return cluster


def start_on_host(host, password: str) -> Cluster:
    """A cluster inside a networked test host, on its 127.0.0.1:5432, data under its own /var/lib."""
    folder = f"/var/lib/nself-pg-{host.name}"
    cluster = Cluster(5432, folder, password, host_runner(host))
    cluster.sh(_start_script(folder, 5432, password))
    cluster.sql("create database app", db="postgres")
    return cluster


SCHEMA = """
create table users (id int primary key, email text not null unique, name text, phone text, plan text);
create table orders (id int primary key, user_id int not null references users(id), amount numeric(10,2),
                     note text);
"""


def fill(cluster: Cluster, users: int, orders: int, note_bytes: int = 40) -> None:
    """A schema with personal columns and a foreign key, filled with `users`/`orders` rows.
    Notes are random text (pgbench-style data compresses ~50x; this does not)."""
    cluster.sql(SCHEMA + f"""
insert into users select g, 'user' || g || '@corp.example', 'Person ' || g, '+1555' || lpad(g::text, 7, '0'),
  (array['free','pro'])[1 + g % 2] from generate_series(1, {users}) g;
insert into orders select g, 1 + g % {users}, (g % 1000) / 10.0,
  (select string_agg(md5(random()::text || i || g), '') from generate_series(1, {max(1, note_bytes // 32)}) i)
  from generate_series(1, {orders}) g;""")


def summary(cluster: Cluster) -> dict:
    """rows and an order-independent checksum per table, computed by the test itself."""
    out = {}
    for table in ("users", "orders"):
        out[table] = cluster.sql(f"select count(*), coalesce(sum(hashtext(t::text)::bigint), 0) from {table} t")
    return out
