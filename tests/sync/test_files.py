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


def test_between_two_hosts_it_says_it_is_not_built(world, project, nself):
    result = nself(["sync.files", "staging", "production", "--force-production"], cwd=project)
    assert result.code == 2 and "not built" in result.err and "sync.files staging local" in result.err


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
