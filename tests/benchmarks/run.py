"""Benchmarks for the performance targets (prints numbers; `inv bench`).

1. `nself --list` against bare `inv --list` over a one-task tasks.py, interleaved
   in the same run (target: ratio ≤ 1.3).
2. Loading the full nself stack in-process: 25 services, env cascade, nself.yml
   (target: ≤ 50 ms).
3. `nself k8s.generate` as a whole process: the nself stack (target ≤ 0.3 s), a
   synthetic 1000-service project (≤ 5 s) and its scaling from 100 (≤ 12×).
4. `nself helm.init` on the nself stack (≤ 0.5 s), and `helm lint`/`helm template`
   of the generated chart.
5. `nself k8s.apply` of the stack's staging overlay to the test API server: time and
   request count; `k8s.status` list calls (constant).
6. `cloud.servers.exec --parallel 8 -- sleep 1` on 8 real sshd hosts against one host
   (target ≤ 1.5×), and the SSH connection set-up time per host.
7. `nself deploy.to` of an unchanged release to 8 podman hosts against one (target ≤ 1.5×).
8. `nself deploy.preview` of the stack on the test API, whole process (target ≤ 2 s;
   deploy_preview.py, also runnable alone).
9. One canary step on ssh hosts (split config sent, `nginx -t`, swapped, reloaded) on 8
   podman hosts against one (target ≤ 1.5×), and the time from starting `nself
   deploy.blue-green.switch` until every host answers with the new colour (target ≤ 1 s;
   canary.py, also runnable alone).
"""
from __future__ import annotations

import argparse
import json
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
from conftest import SPECS, STACK, copy_tree  # noqa: E402

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


def synthetic_compose(count: int) -> str:
    """`count` services: ports, env referencing the previous one, a volume, a healthcheck."""
    lines = ["services:"]
    for i in range(count):
        lines += [f"  svc{i}:", f"    image: example/app:{i % 7}.0", f"    ports: [\"{8000 + i % 1000}\"]",
                  "    environment:", f"      UPSTREAM: http://svc{max(i - 1, 0)}:{8000 + max(i - 1, 0) % 1000}/",
                  f"      LEVEL: info{i}", f"    volumes: [\"data{i}:/data\"]",
                  "    healthcheck: {test: [CMD, curl, -f, 'http://localhost:8000/health']}"]
        if i:
            lines.append(f"    depends_on: [svc{i - 1}]")
    lines.append("volumes:")
    lines += [f"  data{i}: {{}}" for i in range(count)]
    return "\n".join(lines) + "\n"


def generate_time(root: Path, rounds: int) -> float:
    """A fresh tree each time (an unchanged tree is a no-op and would flatter the number)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
    times = []
    for index in range(rounds + 1):
        shutil.rmtree(root / "k8s", ignore_errors=True)
        start = time.perf_counter()
        subprocess.run([str(BIN / "nself"), "k8s.generate", "--quiet", "--force"], cwd=root, env=env,
                       check=True, capture_output=True)
        if index:  # the first run also fills the per-user caches (blueprint, schema check)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def k8s_generate(rounds: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        stack = copy_tree(STACK, Path(tmp) / "acme")
        t_stack = generate_time(stack, rounds)
        sizes = {}
        for count in (100, 1000):
            root = Path(tmp) / f"synthetic{count}"
            root.mkdir()
            (root / "compose.yaml").write_text(synthetic_compose(count))
            sizes[count] = generate_time(root, max(1, rounds // 5))
        return t_stack, sizes[100], sizes[1000]


def run_time(argv: list[str], cwd: Path, rounds: int, stdin: str | None = None) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
    times = []
    for index in range(rounds + 1):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True, input=stdin, text=True)
        if index:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def helm_numbers(rounds: int) -> tuple[float, float, float]:
    import shutil as sh

    from nself.helm.operations import secret_values
    from nself.project import load_project

    helm = sh.which("helm")
    with tempfile.TemporaryDirectory() as tmp:
        stack = copy_tree(STACK, Path(tmp) / "acme")
        t_init = run_time([str(BIN / "nself"), "helm.init", "--force", "--quiet"], stack, rounds)
        chart = str(stack / "charts" / "acme")
        stdin = secret_values(load_project(stack))
        t_lint = run_time([helm, "lint", "--strict", chart, "--values", "-"], stack, rounds, stdin)
        t_template = run_time([helm, "template", "r", chart, "--values", "-"], stack, rounds, stdin)
        return t_init, t_lint, t_template


def apply_numbers() -> tuple[float, int, int, int]:
    """`nself k8s.apply` of the stack's staging overlay to the test API server."""
    from nself.testing.kube import KubeServer

    server = KubeServer()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stack = copy_tree(STACK, Path(tmp) / "acme")
            env = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
            env["KUBECONFIG"] = str(server.kubeconfig(Path(tmp) / "kubeconfig"))
            subprocess.run([str(BIN / "nself"), "k8s.generate", "--quiet"], cwd=stack, env=env, check=True)
            before = server.api.request_count
            start = time.perf_counter()
            out = subprocess.run([str(BIN / "nself"), "k8s.apply", "--env", "staging", "--json"], cwd=stack,
                                 env=env, check=True, capture_output=True, text=True)
            elapsed = time.perf_counter() - start
            objects = len(json.loads(out.stdout)["applied"])
            requests_made = server.api.request_count - before
            before = server.api.request_count
            subprocess.run([str(BIN / "nself"), "k8s.status", "--env", "staging", "--json"], cwd=stack,
                           env=env, check=True, capture_output=True)
            return elapsed, objects, requests_made, server.api.request_count - before
    finally:
        server.stop()


def exec_numbers() -> tuple[float, float, float]:
    """`cloud.servers.exec --parallel 8 -- sleep 1` on 8 sshd hosts vs. on one."""
    from nself.remote.connection import connect, open_checked
    from nself.remote.inventory import load
    from nself.testing.sshd import start_hosts

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "app"
        root.mkdir()
        (root / "compose.yaml").write_text("services: {web: {image: nginx}}\n")
        hosts = start_hosts(Path(tmp) / "hosts", 8)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
        try:
            for host in hosts:
                subprocess.run([str(BIN / "nself"), "cloud.servers.add", host.name, "--host", "127.0.0.1",
                                "--port", str(host.port), "--key", str(host.user_key), "--trust-new"],
                               cwd=root, env=env, check=True, capture_output=True)
            one = run_time([str(BIN / "nself"), "cloud.servers.exec", "--hosts", "host1", "--", "sleep", "1"],
                           root, 2)
            eight = run_time([str(BIN / "nself"), "cloud.servers.exec", "--parallel", "8", "--", "sleep", "1"],
                             root, 2)
            servers = load(root)
            started = time.perf_counter()
            for server in servers.values():
                connection = connect(root, server, servers)
                open_checked(connection, server)
                connection.close()
            setup = (time.perf_counter() - started) / len(servers)
            return one, eight, setup
        finally:
            for host in hosts:
                host.stop()


def deploy_numbers(rounds: int) -> tuple[float, float, float]:
    """An unchanged release deployed again (`nself deploy.to ENV --skip-build`) to 8 podman
    hosts in parallel against one; also the first deploy to the 8 (upload, load, start)."""
    from nself.testing.containers import local_env, reset_local, start_podman_hosts, stop_podman_hosts, write_app

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        write_app(root / "app", "bench")
        (root / "compose.yaml").write_text(
            "services:\n  web:\n    build: ./app\n    ports: ['8090:8080']\n    healthcheck:\n"
            "      test: [CMD, wget, -q, -O, /dev/null, 'http://localhost:8080/health']\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
        env.update(local_env(Path(tmp) / "podman"))
        hosts = start_podman_hosts(Path(tmp) / "hosts", 8)
        try:
            names = ", ".join(h.name for h in hosts)
            (root / "nself.yml").write_text(
                f"environments:\n  eight:\n    hosts: [{names}]\n    path: /var/lib/bench\n"
                "  one:\n    hosts: [host1]\n    path: /var/lib/bench\n")
            for host in hosts:
                subprocess.run([str(BIN / "nself"), "cloud.servers.add", host.name, "--host", host.ip, "--key",
                                str(host.user_key), "--trust-new"], cwd=root, env=env, check=True, capture_output=True)
            subprocess.run([str(BIN / "nself"), "deploy.build", "eight", "--release", "r1"], cwd=root, env=env,
                           check=True, capture_output=True)
            start = time.perf_counter()
            subprocess.run([str(BIN / "nself"), "deploy.to", "eight", "--release", "r1", "--skip-build"], cwd=root,
                           env=env, check=True, capture_output=True)
            first = time.perf_counter() - start
            one = run_time([str(BIN / "nself"), "deploy.to", "one", "--release", "r1", "--skip-build"], root, rounds)
            eight = run_time([str(BIN / "nself"), "deploy.to", "eight", "--release", "r1", "--skip-build"], root,
                             rounds)
            return first, one, eight
        finally:
            stop_podman_hosts(hosts)
            reset_local(env)


def cost_numbers(rounds: int) -> tuple[float, float, float]:
    """costs.compare from the catalog; --live against two fakes answering in 100 ms each,
    once together and once each alone (concurrent asks take the slower one's time, not the sum)."""
    from nself.testing.clouds import DigitalOceanFake, HetznerFake

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "compose.yaml").write_text("services: {web: {image: nginx}}\n")
        catalog = run_time([str(BIN / "nself"), "cloud.costs.compare"], root, rounds)
        fakes = [HetznerFake(SPECS), DigitalOceanFake(SPECS)]
        try:
            for fake in fakes:
                fake.delay = 0.1
            live = {}
            for chosen in (fakes, fakes, fakes[:1], fakes[1:]):   # the first run loads the specs
                env = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}
                for fake in chosen:
                    env.update(fake.env())
                start = time.perf_counter()
                subprocess.run([str(BIN / "nself"), "cloud.costs.compare", "--live"], cwd=root, env=env, check=True,
                               capture_output=True)
                live[len(live)] = time.perf_counter() - start
        finally:
            for fake in fakes:
                fake.stop()
        return catalog, live[1], live[2] + live[3]


def main() -> int:
    # An installed nself has bytecode (pip compiles it); a source checkout under
    # PYTHONDONTWRITEBYTECODE would recompile every module on every run instead.
    import compileall

    import nself

    compileall.compile_dir(Path(nself.__file__).parent, quiet=1)
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
    t_stack, t100, t1000 = k8s_generate(max(3, rounds // 2))
    print(f"k8s      nself k8s.generate: stack {t_stack * 1000:.0f} ms (target <= 300)  "
          f"100 services {t100:.2f} s  1000 services {t1000:.2f} s (target <= 5)  "
          f"t(1000)/t(100) {t1000 / t100:.1f} (target <= 12)")
    t_init, t_lint, t_template = helm_numbers(max(3, rounds // 2))
    print(f"helm     nself helm.init: stack {t_init * 1000:.0f} ms (target <= 500)  "
          f"helm lint --strict {t_lint * 1000:.0f} ms  helm template {t_template * 1000:.0f} ms")
    t_apply, objects, requests_made, status_calls = apply_numbers()
    print(f"apply    nself k8s.apply (stack, staging) {t_apply * 1000:.0f} ms for {objects} objects in "
          f"{requests_made} requests; k8s.status of 24 services: {status_calls} list calls")
    one, eight, setup = exec_numbers()
    print(f"ssh      cloud.servers.exec -- sleep 1: one host {one:.2f} s, 8 hosts --parallel 8 {eight:.2f} s "
          f"({eight / one:.2f}x, target <= 1.5x); connection set-up {setup * 1000:.0f} ms per host")
    first, one_host, eight_hosts = deploy_numbers(max(3, rounds // 4))
    print(f"deploy   unchanged release, nself deploy.to: one host {one_host:.2f} s, 8 hosts {eight_hosts:.2f} s "
          f"({eight_hosts / one_host:.2f}x, target <= 1.5x); first deploy to 8 podman hosts {first:.1f} s")
    import canary

    c = canary.numbers(max(5, rounds // 2))
    print("\n".join(canary.lines(c)))
    import deploy_preview

    preview = deploy_preview.numbers(max(3, rounds // 2))
    print(deploy_preview.line(preview, max(3, rounds // 2)))
    catalog, together, apart = cost_numbers(rounds)
    print(f"costs    cloud.costs.compare (catalog, 26 providers) {catalog * 1000:.0f} ms (target <= 300); "
          f"--live with 2 providers at 100 ms per request: {together:.2f} s together, {apart:.2f} s one by one")
    return 0 if ratio <= 1.3 and median <= 50 and catalog <= 0.3 and eight_hosts <= 1.5 * one_host \
        and preview["median"] <= 2.0 and canary.met(c) else 1


if __name__ == "__main__":
    sys.exit(main())
