"""sync.watch: a real `nself sync.watch local staging` process, real file changes here, the
networked sshd host as the target; SIGINT ends it cleanly."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from nself.sync import history

NSELF = str(Path(sys.executable).parent / "nself")
THERE = "/var/lib/app-host1/uploads"


def _lines(process) -> queue.Queue:
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue, text: str, seen: list, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"no {text!r} within {timeout}s; output so far: {''.join(seen)}")


def test_changes_here_reach_the_host_one_sync_per_batch_and_ctrl_c_stops_it(world, project, nself):
    world.staging.sh(f"rm -rf {THERE} /var/lib/app-host1/.nself/snapshots/files")
    (project / "uploads").mkdir()
    (project / "uploads" / "a.txt").write_text("first\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
    process = subprocess.Popen([NSELF, "sync.watch", "local", "staging", "--debounce", "400"], cwd=project, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    try:
        lines = _lines(process)
        _wait_for(lines, "(Ctrl-C stops)", seen)
        assert world.staging.sh(f"cat {THERE}/a.txt") == "first\n"          # the first sync
        # a burst of changes: one batch, one sync; an excluded file starts none
        (project / "uploads" / "a.txt").write_text("second\n")
        (project / "uploads" / "b.txt").write_text("new\n")
        _wait_for(lines, "changed path(s): syncing", seen)
        _wait_for(lines, "files local → staging: ok", seen)
        assert world.staging.sh(f"cat {THERE}/a.txt {THERE}/b.txt") == "second\nnew\n"
        (project / "uploads" / "debug.log").write_text("excluded\n")
        time.sleep(1.5)
        (project / "uploads" / "b.txt").write_text("third\n")
        _wait_for(lines, "changed path(s): syncing", seen)
        _wait_for(lines, "files local → staging: ok", seen)
        assert world.staging.sh(f"cat {THERE}/b.txt") == "third\n"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        _wait_for(lines, "stopped watching after 3 sync(s)", seen, timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    records = history.records(project, "staging")
    assert [(r["kind"], r["result"]) for r in records] == [("files", "ok")] * 3
    assert len({r["id"] for r in records}) == 3 and all(r["snapshots"]["files"]["path"] for r in records)
    assert world.staging.sh(f"test -e {THERE}/debug.log || echo absent").strip() == "absent"
    # each batch is undone on its own: back to before the last one
    back = nself(["sync.rollback", "staging"], cwd=project)
    assert back.code == 0, back.err
    assert world.staging.sh(f"cat {THERE}/a.txt {THERE}/b.txt") == "second\nnew\n"


def test_watch_refusals(world, project, nself):
    db = nself(["sync.watch", "local", "staging", "--db"], cwd=project)
    assert db.code == 2 and "not built" in db.err
    remote = nself(["sync.watch", "staging", "local"], cwd=project)
    assert remote.code == 2 and "sync.watch local" in remote.err
    missing = nself(["sync.watch", "local", "staging", "--paths", "nowhere"], cwd=project)
    assert missing.code == 2 and "nowhere" in missing.err
    (project / "uploads").mkdir(exist_ok=True)
    dry = nself(["sync.watch", "local", "staging", "--dry-run"], cwd=project)
    assert dry.code == 0 and "rsync" in dry.out and history.records(project) == []
