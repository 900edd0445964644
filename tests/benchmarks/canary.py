"""Benchmark: one canary step and the blue-green switch on 8 podman hosts (issue #12's targets:
a step on 8 hosts ≤ 1.5× one host; every host on the new colour ≤ 1 s after
`nself deploy.blue-green.switch` starts). Prints the numbers; `inv bench` runs it, or alone:
`python tests/benchmarks/canary.py [--rounds N]`.

The hosts run r1 with r2 staged beside it (`deploy.blue-green`). Measured in one run:
- the floor: `true` through `run_plans` on 8 hosts and on one, over new connections (cold) and
  over connections already open (warm, one `Connections`);
- one step, `SshDriver.canary_weight` (the split config sent, `nginx -t` on every host, then
  swapped and reloaded): cold, a new driver per step (connections opened in the step, as a
  `deploy.canary.promote` command does), and warm, one driver for every round (as a walking
  `deploy.canary --auto` holds its connections);
- the switch: from starting the router step, and from starting the command, until every host
  answers r2 and none r1 after; and where the command's time goes (process start with its
  imports, project load, the state read with the first connection, lock taken and freed).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
IMPORTS = "import nself.cli, nself.tasks.bluegreen, nself.deploy.ssh, nself.deploy.bluegreen, fabric"


def numbers(rounds: int) -> dict[str, float]:
    from nself.testing.containers import local_env, reset_local, start_podman_hosts, stop_podman_hosts, write_app

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "canary"
        root.mkdir()
        (root / "compose.yaml").write_text("services:\n  web:\n    build: ./app\n    ports: ['8090:8080']\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
        env.update(local_env(Path(tmp) / "podman"))
        hosts = start_podman_hosts(Path(tmp) / "hosts", 8)

        def call(*args: str) -> float:
            start = time.perf_counter()
            subprocess.run([str(BIN / "nself"), *args], cwd=root, env=env, check=True, capture_output=True)
            return time.perf_counter() - start
        try:
            eight = f"environments:\n  eight:\n    hosts: [{', '.join(h.name for h in hosts)}]\n    path: /var/lib/cb\n"
            (root / "nself.yml").write_text(eight)
            for host in hosts:
                call("cloud.servers.add", host.name, "--host", host.ip, "--key", str(host.user_key), "--trust-new")
            for release in ("r1", "r2"):
                write_app(root / "app", release)
                call("deploy.build", "eight", "--release", release)
            call("deploy.to", "eight", "--release", "r1", "--skip-build")
            # `one` is host1 of the same deploy (a deploy.to would refuse two environments on one path)
            (root / "nself.yml").write_text(eight + "  one:\n    hosts: [host1]\n    path: /var/lib/cb\n")
            call("deploy.blue-green", "eight", "--release", "r2", "--skip-build")
            out = {**_steps(root, rounds), **_switch(root, hosts, call, env)}
            return out
        finally:
            stop_podman_hosts(hosts)
            reset_local(env)


def _driver(root: Path, env: str):
    from nself.deploy.drivers import driver_for
    from nself.project import load_project
    from nself.remote import inventory
    from nself.ui import Output

    return driver_for(load_project(root, env=env), Output(), inventory.load(root))


def _steps(root: Path, rounds: int) -> dict[str, float]:
    from nself.remote import inventory

    servers = inventory.load(root)
    return {**_steps_on(root, "one", servers, rounds), **_steps_on(root, "eight", servers, rounds)}


def _steps_on(root: Path, name: str, servers: dict, rounds: int) -> dict[str, float]:
    """The floor and the step on environment `name`, cold and warm."""
    from nself.plan import Plan, shell
    from nself.remote.executor import Connections, run_plans

    warm, pool = _driver(root, name), Connections()
    plans = {h: Plan("floor", [shell("nothing", "true", on=h)]) for h in warm.hosts}
    run_plans(root, plans, servers, connections=pool)
    out = {f"floor cold {name}": _median(lambda: run_plans(root, plans, servers), rounds),
           f"floor warm {name}": _median(lambda: run_plans(root, plans, servers, connections=pool), rounds)}
    pool.close()
    weights = iter(range(rounds * 4))     # 10, 20, 10, …: every step changes the config
    warm.canary_weight(None, 10)
    out[f"step cold {name}"] = _median(lambda: _driver(root, name).canary_weight(None, 10 + next(weights) % 2 * 10),
                                       rounds)
    out[f"step warm {name}"] = _median(lambda: warm.canary_weight(None, 10 + next(weights) % 2 * 10), rounds)
    warm.canary_weight(None, 0)
    return out


def _switch(root: Path, hosts, call, env: dict) -> dict[str, float]:
    router, command, whole = [], [], []
    for _ in range(3):
        driver = _driver(root, "eight")
        router.append(_until_new(hosts, lambda d=driver: d.canary_weight(None, 100)))
        driver.canary_weight(None, 0)
        command.append(_until_new(hosts, lambda: whole.append(call("deploy.blue-green.switch", "eight"))))
        call("deploy.blue-green.rollback", "eight")
        call("deploy.blue-green", "eight", "--release", "r2", "--skip-build")
    started = _median(lambda: subprocess.run([sys.executable, "-c", IMPORTS], env=env, check=True), 3)
    loaded = _median(lambda: _driver(root, "eight"), 3)
    state = _median(lambda: _driver(root, "eight").canary_load(), 3)
    driver = _driver(root, "eight")
    driver.canary_load()

    def lock():
        taken = driver.lock()
        taken.acquire({"who": "bench", "since": "-", "what": "bench", "release": "r2"})
        taken.release()
    return {"switch router": statistics.median(router), "switch command": statistics.median(command),
            "switch whole": statistics.median(whole), "switch start": started, "switch load": loaded,
            "switch state": state, "switch lock": _median(lock, 3)}


def _median(action, rounds: int) -> float:
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def _until_new(hosts, action) -> float:
    """Seconds from starting `action` until every host answered r2 with no r1 after (polled
    round robin, a new connection per request, for 0.5 s after `action` returned)."""
    seen, halt = {}, threading.Event()

    def poll():
        while not halt.is_set():
            for host in hosts:
                with urllib.request.urlopen(f"http://{host.ip}:8090/", timeout=3) as response:
                    if response.read().decode().strip() == "r2":
                        seen.setdefault(host.name, time.perf_counter())
                    else:
                        seen.pop(host.name, None)
    poller = threading.Thread(target=poll, daemon=True)
    start = time.perf_counter()
    poller.start()
    action()
    time.sleep(0.5)
    halt.set()
    poller.join(10)
    return max(seen.values()) - start if len(seen) == len(hosts) else float("inf")


def lines(c: dict[str, float]) -> list[str]:
    def ratio(kind: str) -> str:
        one, eight = c[f"{kind} one"], c[f"{kind} eight"]
        return f"{one:.2f} s, 8 hosts {eight:.2f} s ({eight / one:.2f}x)"
    return [f"canary   one split step (send, nginx -t everywhere, then swap and reload; target <= 1.5x): "
            f"new connections: one host {ratio('step cold')}; open connections: one host {ratio('step warm')}",
            f"         floor of the SSH path (`true`): new connections: one host {ratio('floor cold')}; "
            f"open connections: one host {ratio('floor warm')}",
            f"switch   blue-green on 8 hosts, until every host answers the new colour: {c['switch router']:.2f} s from "
            f"the router step, {c['switch command']:.2f} s from starting deploy.blue-green.switch (target <= 1 s); "
            f"the command {c['switch whole']:.2f} s",
            f"         where it goes: process start and imports {c['switch start']:.2f} s, project load "
            f"{c['switch load']:.2f} s, state read (first connection) {c['switch state']:.2f} s, lock taken and "
            f"freed {c['switch lock']:.2f} s, the router step (new connections) {c['step cold eight']:.2f} s"]


def met(c: dict[str, float]) -> bool:
    return c["step cold eight"] <= 1.5 * c["step cold one"] and c["switch command"] <= 1.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    c = numbers(parser.parse_args().rounds)
    print("\n".join(lines(c)))
    return 0 if met(c) else 1


if __name__ == "__main__":
    sys.exit(main())
