"""sync.files with rsync over SSH between this machine and a networked sshd test host
(whose /var/lib is its own: the test hosts share /srv, /tmp and /home)."""
from __future__ import annotations

import hashlib
from pathlib import Path

from nself.sync import history

HOST_ROOT = "/var/lib/app-host1"


def _tree(folder: Path, count: int) -> None:
    for index in range(count):
        path = folder / f"d{index % 50:02d}" / f"f{index:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"file {index}\n" * (1 + index % 7))


def _digest_here(folder: Path, skip: str = "") -> str:
    lines = sorted(f"{hashlib.md5(p.read_bytes()).hexdigest()}  ./{p.relative_to(folder)}"
                   for p in folder.rglob("*") if p.is_file() and p.name != skip)
    return "\n".join(lines)


def _digest_there(world, folder: str) -> str:
    return world.staging.sh(f"cd {folder} && find . -type f -exec md5sum {{}} +").strip()


def _sorted(text: str) -> str:
    return "\n".join(sorted(text.splitlines()))


def test_a_tree_goes_to_a_host_once_then_nothing_moves_and_delete_only_when_asked(world, project, nself):
    world.staging.sh(f"rm -rf {HOST_ROOT}/uploads {HOST_ROOT}/.nself/snapshots/files")
    _tree(project / "uploads", 10_000)
    (project / "uploads" / "debug.log").write_text("excluded by sync.exclude\n")
    first = nself(["sync.files", "local", "staging", "--json"], cwd=project)
    assert first.code == 0, first.err
    assert first.json()["transferred"] == 10_000
    assert _sorted(_digest_there(world, f"{HOST_ROOT}/uploads")) == \
        _sorted(_digest_here(project / "uploads", skip="debug.log"))
    assert world.staging.sh(f"test -e {HOST_ROOT}/uploads/debug.log || echo absent").strip() == "absent"
    again = nself(["sync.files", "local", "staging", "--json"], cwd=project)
    assert again.code == 0 and again.json()["transferred"] == 0
    # a file removed here stays there without --delete, goes with it
    (project / "uploads" / "d00" / "f00000.txt").unlink()
    nself(["sync.files", "local", "staging"], cwd=project)
    assert world.staging.sh(f"test -e {HOST_ROOT}/uploads/d00/f00000.txt && echo kept").strip() == "kept"
    deleted = nself(["sync.files", "local", "staging", "--delete"], cwd=project)
    assert deleted.code == 0, deleted.err
    assert world.staging.sh(f"test -e {HOST_ROOT}/uploads/d00/f00000.txt || echo gone").strip() == "gone"
    # rollback puts the tree back as it was before that sync (the snapshot on the host)
    back = nself(["sync.rollback", "staging"], cwd=project)
    assert back.code == 0, back.err
    assert world.staging.sh(f"test -e {HOST_ROOT}/uploads/d00/f00000.txt && echo back").strip() == "back"
    assert world.staging.sh(f"find {HOST_ROOT}/uploads -type f | wc -l").strip() == "10000"


def test_files_come_home_and_rollback_restores_the_local_tree(world, project, nself):
    world.staging.sh(f"rm -rf {HOST_ROOT}/uploads && mkdir -p {HOST_ROOT}/uploads/a && "
                     f"echo remote > {HOST_ROOT}/uploads/a/one.txt")
    (project / "uploads" / "a").mkdir(parents=True)
    (project / "uploads" / "a" / "one.txt").write_text("local\n")
    (project / "uploads" / "mine.txt").write_text("only here\n")
    dry = nself(["sync.files", "staging", "local", "--dry-run"], cwd=project)
    assert dry.code == 0 and "rsync -a --stats --itemize-changes --mkpath" in dry.out and "'--exclude=*.log'" in dry.out
    assert (project / "uploads" / "a" / "one.txt").read_text() == "local\n"
    done = nself(["sync.files", "staging", "local", "--delete"], cwd=project)
    assert done.code == 0, done.err
    assert (project / "uploads" / "a" / "one.txt").read_text() == "remote\n"
    assert not (project / "uploads" / "mine.txt").exists()
    record = history.records(project, "local")[-1]
    assert record["kind"] == "files" and record["snapshots"]["files"]["paths"] == ["uploads"]
    back = nself(["sync.rollback", "local"], cwd=project)
    assert back.code == 0, back.err
    assert (project / "uploads" / "a" / "one.txt").read_text() == "local\n"
    assert (project / "uploads" / "mine.txt").read_text() == "only here\n"


def _digest_on(world, env: str, folder: str) -> str:
    return _sorted(world.cluster(env).sh(f"cd {folder} && find . -type f -exec md5sum {{}} +"))


def test_host_to_host_streams_through_here_though_the_hosts_cannot_reach_each_other(world, project, nself):
    """staging (host1) → production (host2): rsync on host2 through a tunnel of this machine's
    connection; host1's key checked on host2, snapshot and rollback on host2."""
    there = "/var/lib/app-host2"
    host1 = world.hosts[0].address
    world.staging.sh(f"rm -rf {HOST_ROOT}/uploads && mkdir -p {HOST_ROOT}/uploads/a && cd {HOST_ROOT}/uploads && "
                     "for i in $(seq 1 300); do echo staging $i > a/f$i.txt; done && echo skip > a/x.log")
    world.production.sh(f"rm -rf {there}/uploads {there}/.nself/snapshots && mkdir -p {there}/uploads/a && "
                        f"echo production > {there}/uploads/a/f1.txt && echo mine > {there}/uploads/own.txt")
    # no route from host2 to host1: the copy cannot be a direct one
    cut = world.production.sh(f"timeout 3 bash -c 'echo > /dev/tcp/{host1}/22' 2>&1 || echo unreachable")
    assert "unreachable" in cut
    dry = nself(["sync.files", "staging", "production", "--force-production", "--dry-run"], cwd=project)
    assert dry.code == 0 and "ssh-agent -t" in dry.out and f":{host1}:22" in dry.out
    assert world.production.sh(f"cat {there}/uploads/a/f1.txt").strip() == "production"
    done = nself(["sync.files", "staging", "production", "--force-production", "--json"], cwd=project)
    assert done.code == 0, done.err
    assert done.json()["transferred"] == 300
    source = [line for line in _digest_on(world, "staging", f"{HOST_ROOT}/uploads/a").splitlines()
              if "x.log" not in line]
    assert _digest_on(world, "production", f"{there}/uploads/a").splitlines() == source
    assert world.production.sh(f"cat {there}/uploads/own.txt").strip() == "mine"       # no --delete
    again = nself(["sync.files", "staging", "production", "--force-production", "--json"], cwd=project)
    assert again.code == 0 and again.json()["transferred"] == 0
    back = nself(["sync.rollback", "production", "--force-production", "--to", done.json()["id"]], cwd=project)
    assert back.code == 0, back.err
    assert world.production.sh(f"cat {there}/uploads/a/f1.txt").strip() == "production"
    assert world.production.sh(f"ls {there}/uploads/a").split() == ["f1.txt"]


def test_host_to_host_refuses_a_source_whose_key_the_project_does_not_know(world, project, nself):
    there = "/var/lib/app-host2"
    host1 = world.hosts[0].address
    world.production.sh(f"rm -rf {there}/uploads && mkdir -p {there}/uploads && echo kept > {there}/uploads/k.txt")
    known = project / ".nself" / "known_hosts"
    known.write_text("".join(line + "\n" for line in known.read_text().splitlines()
                             if not line.startswith(host1 + " ")))
    refused = nself(["sync.files", "staging", "production", "--force-production"], cwd=project)
    assert refused.code == 7 and "host1" in refused.err and "unknown" in refused.err, refused.err
    assert world.production.sh(f"ls {there}/uploads").split() == ["k.txt"]


def test_an_unreachable_host_and_an_absolute_path_are_refused_before_anything_changes(world, project, nself):
    import json

    from tests.sync import pg

    (project / "uploads").mkdir(exist_ok=True)
    (project / "uploads" / "keep.txt").write_text("mine\n")
    outside = nself(["sync.files", "staging", "local", "--paths", "/etc"], cwd=project)
    assert outside.code == 2 and "/etc" in outside.err and "inside" in outside.err
    known = (project / ".nself" / "known_hosts")
    known.write_text("")
    unknown = nself(["sync.files", "staging", "local"], cwd=project)
    assert unknown.code == 7, unknown.err
    known.write_text((world.root / ".nself" / "known_hosts").read_text())
    servers = (project / ".nself" / "servers.yml").read_text()
    (project / ".nself" / "servers.yml").write_text(servers.replace(world.hosts[0].address, "127.0.0.1")
                                                    .replace("port: 22", f"port: {pg.free_port()}"))
    unreachable = nself(["sync.files", "staging", "local"], cwd=project)
    assert unreachable.code == 6, unreachable.err
    assert (project / "uploads" / "keep.txt").read_text() == "mine\n"
    assert not (project / ".nself" / "state" / "snapshots").exists()
    assert [json.loads(x)["result"] for x in (project / ".nself" / "state" / "sync.log").read_text().splitlines()] \
        == ["failed", "failed"]


def test_a_sync_that_only_added_files_rolls_back_though_rsync_made_no_snapshot_folder(world, project, nself):
    """rsync creates --backup-dir only when it replaces something: a first sync (or a watch
    batch) that only adds files has no snapshot folder, and its rollback must still remove them."""
    world.staging.sh(f"rm -rf {HOST_ROOT}/uploads {HOST_ROOT}/.nself/snapshots/files "
                     f"&& mkdir -p {HOST_ROOT}/uploads && echo theirs > {HOST_ROOT}/uploads/own.txt")
    _tree(project / "uploads", 20)
    done = nself(["sync.files", "local", "staging", "--json"], cwd=project)
    assert done.code == 0 and done.json()["transferred"] == 20, done.err
    snapshot = history.records(project, "staging")[-1]["snapshots"]["files"]["path"]
    assert world.staging.sh(f"test -e {snapshot} || echo none").strip() == "none"
    back = nself(["sync.rollback", "staging", "--yes"], cwd=project)
    assert back.code == 0, back.err
    assert world.staging.sh(f"cd {HOST_ROOT}/uploads && find . -type f").split() == ["./own.txt"]
    assert history.records(project, "staging")[-1]["result"] == "ok"


def test_pull_with_json_prints_one_document_for_its_database_and_files_syncs(world, project, nself):
    world.staging.sh(f"rm -rf {HOST_ROOT}/uploads && mkdir -p {HOST_ROOT}/uploads"
                     f" && echo one > {HOST_ROOT}/uploads/one.txt")
    pulled = nself(["sync.pull", "staging", "--json"], cwd=project)
    assert pulled.code == 0, pulled.err
    syncs = pulled.json()["syncs"]
    assert [(s["kind"], s["result"]) for s in syncs] == [("db", "ok"), ("files", "ok")]
    assert syncs[0]["id"] == syncs[1]["id"] and (project / "uploads" / "one.txt").read_text() == "one\n"
