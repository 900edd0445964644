"""Benchmarks for the foundation's performance targets (prints numbers; `inv bench`).

1. `nself --list` against bare `inv --list` over a one-task tasks.py, interleaved
   in the same run (target: ratio ≤ 1.3).
2. Loading the full nself stack in-process: 25 services, env cascade, nself.yml
   (target: ≤ 50 ms).
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
sys.path.insert(0, str(HERE.parent))
from conftest import STACK, copy_tree  # noqa: E402

BIN = Path(sys.executable).parent


def startup(rounds: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "tasks.py").write_text("from invoke import task\n\n\n@task\ndef hello(c):\n"
                                       "    \"\"\"Say hello.\"\"\"\n")
        (root / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NSELF_", "INVOKE_"))}
        timings = {"inv": [], "nself": []}
        for _ in range(rounds):
            for name in timings:  # interleaved, so load on the machine hits both alike
                start = time.perf_counter()
                out = subprocess.run([str(BIN / name), "--list"], cwd=root, env=env,
                                     capture_output=True, text=True, check=True).stdout
                timings[name].append(time.perf_counter() - start)
                assert "hello" in out, out
        return statistics.median(timings["inv"]), statistics.median(timings["nself"])


def project_load(rounds: int) -> tuple[float, float]:
    from nself.project import load_project

    with tempfile.TemporaryDirectory() as tmp:
        root = copy_tree(STACK, Path(tmp) / "acme")
        shutil.copy(HERE.parent.parent / "docs" / "examples" / "acme" / "nself.yml", root)
        load_project(root, profiles=["*"])          # first load pays for imports and schemas
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            project = load_project(root, profiles=["*"])
            times.append(time.perf_counter() - start)
        assert len(project.services) == 25
        return statistics.median(times) * 1000, min(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    inv, nself = startup(rounds)
    ratio = nself / inv
    print(f"startup  inv --list {inv * 1000:.0f} ms  nself --list {nself * 1000:.0f} ms  "
          f"ratio {ratio:.2f} (target <= 1.30)  median of {rounds}")
    median, best = project_load(rounds)
    print(f"load     nself stack (25 services) median {median:.1f} ms  best {best:.1f} ms "
          f"(target <= 50 ms)")
    return 0 if ratio <= 1.3 and median <= 50 else 1


if __name__ == "__main__":
    sys.exit(main())
