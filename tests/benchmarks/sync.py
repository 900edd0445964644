"""Benchmarks of sync (prints numbers): `python tests/benchmarks/sync.py [--mb 200] [--rounds 2]`.

1. A ~200 MB database (random text: it does not compress away) from PostgreSQL 15 in a
   networked sshd host into a cluster on this machine, and into a cluster in a second host:
   `nself sync.db` (whole process: checks, snapshot of the target, stream, counts) against a raw
   `ssh A pg_dump -Fc | [ssh B] pg_restore` measured in the same run, alternating, into an empty
   target each time (target: nself's throughput >= 0.8x the raw pipe's).
2. Re-sync of an unchanged 10,000-file tree from a host with `nself sync.files` (whole
   process; target <= 1 s), printed beside the floors of the same run: a bare `rsync -a` of the
   same tree over ssh, `ssh HOST true` (one SSH handshake) and `nself --list` (Python + Invoke +
   nself's namespace). nself's modules are byte-compiled first, as an installed package's are
   (this machine sets PYTHONDONTWRITEBYTECODE, which would otherwise compile them on every run).

`--only files` skips the database part (no PostgreSQL clusters).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
from tests.sync import pg  # noqa: E402
from tests.sync.conftest import COMPOSE, PASSWORDS, settings  # noqa: E402

BIN = Path(sys.executable).parent
ENV = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}


def _project(folder: Path, local: pg.Cluster, hosts) -> Path:
    from nself.remote import inventory
    from nself.remote.connection import trust
    from nself.remote.inventory import Server
    from tests.conftest import make_project

    root = make_project(folder / "app", COMPOSE, {
        "nself.yml": settings(), ".env": "POSTGRES_DB=app\nPOSTGRES_USER=postgres\n",
        ".env.dev": f"POSTGRES_PORT={local.port}\nPOSTGRES_PASSWORD={PASSWORDS['local']}\n",
        ".env.staging": f"POSTGRES_PASSWORD='{PASSWORDS['staging']}'\n",
        ".env.production": f"POSTGRES_PASSWORD={PASSWORDS['production']}\n"})
    servers = {h.name: Server(h.name, h.address, h.port, "root", str(h.user_key)) for h in hosts}
    inventory.save(root, servers)
    for server in servers.values():
        trust(root, server, servers)
    return root


def _empty(cluster: pg.Cluster) -> None:
    cluster.sql("drop database if exists app with (force)", db="postgres")
    cluster.sql("create database app", db="postgres")
    cluster.sql("checkpoint", db="postgres")


def _timed(argv, cwd: Path | None = None, shell: bool = False) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=ENV, check=True, capture_output=True, shell=shell, executable="/bin/bash"
                   if shell else None)
    return time.perf_counter() - started


def _raw(root: Path, host, target: pg.Cluster, target_host) -> str:
    """The baseline pipe, with the same pg_restore options nself uses (passwords by PGPASSWORD
    in the benchmark's own environment, which is fine for a throwaway cluster)."""
    import shlex

    ssh = (f"ssh -T -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
           f"-i {host.user_key}")
    dump = f"{ssh} root@{host.address} " + shlex.quote(
        f"PGPASSWORD={shlex.quote(PASSWORDS['staging'])} pg_dump -w -h 127.0.0.1 -U postgres -Fc -d app")
    restore = (f"pg_restore -w -h 127.0.0.1 -p {target.port} -U postgres --clean --if-exists --no-owner "
               "--no-privileges --single-transaction -d app")
    if target_host is None:
        return f"set -o pipefail; {dump} | PGPASSWORD={shlex.quote(PASSWORDS['local'])} {restore}"
    return f"set -o pipefail; {dump} | {ssh} root@{target_host.address} " + shlex.quote(
        f"PGPASSWORD={shlex.quote(PASSWORDS['production'])} {restore}")


def db_numbers(root: Path, world: dict, mb: int, rounds: int) -> None:
    staging = world["staging"]
    orders = mb * 1024 * 1024 // 700
    pg.fill(staging, max(1000, orders // 3), orders, note_bytes=640)
    size = int(staging.sql("select pg_database_size('app')")) / 1e6
    for target, argv in (("local", ["sync.db", "staging", "local"]),
                         ("production", ["sync.db", "staging", "production", "--force-production"])):
        cluster, target_host = world[target], world["hosts"][1] if target == "production" else None
        raw, ours = [], []
        try:
            for _ in range(rounds):
                _empty(cluster)
                raw.append(_timed(_raw(root, world["hosts"][0], cluster, target_host), shell=True))
                _empty(cluster)
                ours.append(_timed([str(BIN / "nself"), *argv], cwd=root))
        except subprocess.CalledProcessError as exc:
            print(f"db       staging → {target}: not measured ({exc.stderr.decode().strip()[:200]})")
            continue
        r, o = statistics.median(raw), statistics.median(ours)
        print(f"db       staging → {target}: {size:.0f} MB database; raw pipe {r:.2f} s ({size / r:.1f} MB/s), "
              f"nself sync.db {o:.2f} s ({size / o:.1f} MB/s); throughput ratio {r / o:.2f} (target >= 0.8); "
              f"median of {rounds}")


def files_numbers(root: Path, world: dict, rounds: int) -> None:
    world["staging"].sh("rm -rf /var/lib/app-host1/uploads && mkdir -p /var/lib/app-host1/uploads && cd "
                        "/var/lib/app-host1/uploads && for d in $(seq 0 49); do mkdir d$d; for f in $(seq 0 199); do "
                        "echo file $d $f > d$d/f$f.txt; done; done")
    first = _timed([str(BIN / "nself"), "sync.files", "staging", "local"], cwd=root)
    host = world["hosts"][0]
    ssh = f"ssh -T -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -i {host.user_key}"
    commands = {"nself": [str(BIN / "nself"), "sync.files", "staging", "local"],
                "rsync": f"rsync -a -e '{ssh}' root@{host.address}:/var/lib/app-host1/uploads/ {root}/uploads/",
                "ssh": f"{ssh} root@{host.address} true", "list": [str(BIN / "nself"), "--list"]}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):      # alternating, so the machine's load hits all alike
        for name, argv in commands.items():
            times[name].append(_timed(argv, cwd=root, shell=isinstance(argv, str)))
    m = {name: statistics.median(values) for name, values in times.items()}
    print(f"files    sync.files staging → local, 10,000 files: first {first:.2f} s, unchanged re-sync "
          f"{m['nself']:.2f} s (target <= 1 s); floors of the same run: bare rsync of the same tree "
          f"{m['rsync']:.2f} s, ssh HOST true {m['ssh']:.2f} s, nself --list {m['list']:.2f} s; "
          f"median of {rounds}")


def main() -> int:
    from nself.testing.sshd import start_hosts

    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", choices=["db", "files"])
    args = parser.parse_args()
    import compileall

    compileall.compile_dir(str(HERE.parent.parent / "nself"), quiet=1)
    folder = Path(tempfile.mkdtemp(prefix="nself-bench-sync-"))
    hosts = start_hosts(folder / "hosts", 2, networked=True)
    clusters = []
    try:
        if args.only == "files":     # the hosts' shells only, no PostgreSQL
            local, staging, production = (pg.Cluster(pg.free_port(), "", "", runner)
                                          for runner in (pg.local_runner, *map(pg.host_runner, hosts)))
        else:
            local = pg.start_local(PASSWORDS["local"])
            clusters.append(local)
            staging, production = (pg.start_on_host(h, PASSWORDS[e]) for h, e in zip(hosts, ("staging", "production")))
            clusters += [staging, production]
        world = {"local": local, "staging": staging, "production": production, "hosts": hosts}
        root = _project(folder, local, hosts)
        if args.only != "files":
            db_numbers(root, world, args.mb, args.rounds)
        if args.only != "db":
            files_numbers(root, world, max(3, args.rounds))
    finally:
        for cluster in clusters:
            cluster.stop()
        for host in hosts:
            host.remove()
        shutil.rmtree(clusters[0].folder if clusters else folder, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
