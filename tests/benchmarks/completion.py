"""Shell completion speed (target: ≤ 150 ms per completion, warm cache), printed as numbers.

Runs the installed `nself --complete -- …` as a whole process, the way a shell does, in a copy
of the nself stack (25 services) with a project tasks.py and an inventory of 20 servers:
completions of groups, flags, environments, services, servers and providers. Also the first
completion after a change to nself.yml (the cache is rebuilt by loading the collection once).

    python tests/benchmarks/completion.py [--rounds 20]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from conftest import STACK, copy_tree  # noqa: E402

NSELF = Path(sys.executable).parent / "nself"
CASES = {
    "top level": ["con"],
    "group tasks": ["cloud", "servers", ""],
    "task flags": ["k8s.logs", "--"],
    "environments": ["--env", ""],
    "services": ["k8s.logs", ""],
    "servers": ["cloud.servers.ssh", ""],
    "providers": ["cloud.provision", ""],
    "project task": ["seed", ""],
}
TASKS = '''from invoke import task
from nself.tasks import namespace


@task(help={"service": "which service"})
def seed(c, service):
    """Load demo data into SERVICE."""


seed.positional = ["service"]
ns = namespace()
ns.add_task(seed)
'''


def project(base: Path) -> Path:
    root = copy_tree(STACK, base / "acme")
    (root / "tasks.py").write_text(TASKS)
    (root / ".nself").mkdir(exist_ok=True)
    (root / ".nself" / "servers.yml").write_text("servers:\n" + "".join(
        f"  web{i}: {{host: 127.0.0.{i + 1}}}\n" for i in range(20)))
    return root


def complete(root: Path, words: list[str]) -> tuple[float, float, list[str]]:
    """Wall and CPU (user + sys) seconds of one completion, and its candidates."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run([str(NSELF), "--complete", "--", "nself", *words], cwd=root,
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = project(Path(tmp))
        (root / "nself.yml").write_text("project: {name: acme}\n")
        cold, _, _ = complete(root, ["con"])
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {args.rounds} rounds each")
        print(f"cold (cache built from the collection): {cold * 1000:.0f} ms")
        worst = 0.0
        for name, words in CASES.items():
            walls, cpus, found = [], [], []
            for _ in range(args.rounds):
                wall, cpu, found = complete(root, words)
                walls.append(wall)
                cpus.append(cpu)
            median = statistics.median(walls)
            worst = max(worst, median)
            print(f"{name:14} median {median * 1000:5.0f} ms  p90 {sorted(walls)[int(0.9 * len(walls))] * 1000:5.0f} ms"
                  f"  cpu {statistics.median(cpus) * 1000:4.0f} ms  ({len(found)} candidates, e.g. {found[:3]})")
        (root / "nself.yml").write_text("project: {name: acme}\nenvironments: {qa: {}}\n")
        rebuilt, _, found = complete(root, ["--env", ""])
        print(f"after editing nself.yml: {rebuilt * 1000:.0f} ms, environments {found}")
        print(f"worst median {worst * 1000:.0f} ms (target ≤ 150 ms): {'ok' if worst <= 0.150 else 'OVER'}")


if __name__ == "__main__":
    main()
