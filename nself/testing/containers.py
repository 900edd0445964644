"""Real containers for deploy tests: podman configured to work here, on this machine and inside
networked sshd test hosts, and a tiny HTTP app image built without any registry.

Why each setting (design.md, "Real parts for deploy and sync"): crun refuses this machine's
hybrid cgroups, so `runtime = "runc"`; podman's default limits fail with "setrlimit
RLIMIT_NOFILE", so explicit nofile/nproc ulimits; no systemd, so `cgroupfs` and a `file`
events logger. Inside a networked host /var/lib is an overlay (podman's overlay driver refuses
to stack on it) and `ip netns exec` remounted /sys (no cgroup mounts): storage goes to the
host's own folder and the cgroup hierarchies are mounted again under a tmpfs.
"""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

BUSYBOX = "/bin/busybox"
APP_PORT = 8080

# busybox httpd ignores SIGTERM; as PID 1 a shell that exits on TERM stops at once (no
# catatonit for `--init` on this machine kind).
_ENTRYPOINT = 'trap "exit 0" TERM INT; httpd -f -p {port} -h /www & wait'


def storage_conf(folder: Path) -> str:
    return (f'[storage]\ndriver = "overlay"\ngraphroot = "{folder}/storage"\nrunroot = "{folder}/run"\n'
            '[storage.options.overlay]\nmountopt = "nodev"\n')


def containers_conf(folder: Path) -> str:
    return ('[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
            'log_driver = "k8s-file"\n'
            f'[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
            f'events_logfile_path = "{folder}/events.log"\nimage_copy_tmp_dir = "{folder}/tmp"\n'
            f'tmp_dir = "{folder}/libpod-tmp"\n')


def local_env(folder: Path) -> dict[str, str]:
    """Variables that give podman on this machine its own storage under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tmp").mkdir(exist_ok=True)
    (folder / "storage.conf").write_text(storage_conf(folder))
    (folder / "containers.conf").write_text(containers_conf(folder))
    return {"CONTAINERS_STORAGE_CONF": str(folder / "storage.conf"),
            "CONTAINERS_CONF": str(folder / "containers.conf"), "TMPDIR": str(folder / "tmp")}


def reset_local(env: dict[str, str]) -> None:
    """Remove what `local_env`'s podman stored (its overlay folder stays a mount point otherwise)."""
    import os

    subprocess.run(["podman", "system", "reset", "--force"], env={**os.environ, **env}, capture_output=True,
                   timeout=120)
    overlay = Path(env["CONTAINERS_STORAGE_CONF"]).parent / "storage" / "overlay"
    subprocess.run(["umount", str(overlay)], capture_output=True, timeout=30)


def host_setup_script(folder: Path) -> str:
    """A script run once inside a networked test host (over SSH): podman's configuration in the
    host's private /etc, its storage under `folder`, the cgroup hierarchies mounted again."""
    hierarchies = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                   if line.split(" - ")[1].startswith(("cgroup ", "cgroup2 "))]
    mounts = []
    for point in hierarchies:
        kind, options = _cgroup_mount(point)
        mounts.append(f"mkdir -p {point} && mount -t {kind} -o {options} {kind} {point}")
    files = {"/etc/containers/storage.conf": storage_conf(folder),
             "/etc/containers/containers.conf": containers_conf(folder)}
    writes = [f"printf %s {shlex.quote(text)} > {path}" for path, text in files.items()]
    return " && ".join([f"mkdir -p {folder}/tmp /etc/containers",
                        "mountpoint -q /sys/fs/cgroup || mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup",
                        *[f"(mountpoint -q {p} || ({m}))" for p, m in zip(hierarchies, mounts)
                          if p != "/sys/fs/cgroup"],
                        *writes])


def _cgroup_mount(point: str) -> tuple[str, str]:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, tail = line.partition(" - ")
        if fields.split()[4] == point:
            kind, _, options = tail.split()[:3]
            return kind, ",".join(o for o in options.split(",") if o != "rw") or "rw"
    raise LookupError(point)


def write_app(context: Path, version: str, port: int = APP_PORT, healthy: bool = True) -> Path:
    """A build context for a tiny HTTP app: FROM scratch + a static busybox serving `version`
    at / and `ok` at /health (left out when not `healthy`) on `port`. Builds with
    `podman build --isolation chroot` (nself's deploy.build), no registry needed."""
    (context / "www").mkdir(parents=True, exist_ok=True)
    shutil.copy(BUSYBOX, context / "busybox")
    (context / "www" / "index.html").write_text(f"{version}\n")
    health = context / "www" / "health"
    if healthy:
        health.write_text("ok\n")
    else:
        health.unlink(missing_ok=True)
    script = json.dumps(_ENTRYPOINT.format(port=port))
    (context / "Containerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
        f"COPY www /www\nEXPOSE {port}\nCMD [\"/bin/sh\", \"-c\", {script}]\n")
    return context


def start_podman_hosts(folder: Path, count: int):
    """`count` networked sshd hosts, each able to run podman, podman-compose and nginx."""
    import sys

    from nself.testing.sshd import start_hosts

    hosts = start_hosts(folder, count, networked=True)
    compose = Path(sys.executable).parent / "podman-compose"
    wrapper = f"#!/bin/sh\nexec {compose} \"$@\"\n"
    try:
        for host in hosts:
            script = (host_setup_script(host.folder / "podman") +
                      f" && printf %s {shlex.quote(wrapper)} > /usr/local/bin/podman-compose"
                      " && chmod +x /usr/local/bin/podman-compose")
            ssh(host, script)
    except BaseException:
        stop_podman_hosts(hosts)
        raise
    return hosts


def ssh(host, command: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """A command on a test host with the system ssh client (test set-up, not nself's path)."""
    argv = ["ssh", "-i", str(host.user_key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-p", str(host.port), f"root@{host.ip}", command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check)


def stop_podman_hosts(hosts) -> None:
    """Containers removed, then every process left in each host's network namespace (nginx,
    conmon) ended, then the host removed: processes started over SSH outlive sshd."""
    for host in hosts:
        try:
            ssh(host, "podman rm -af -t 0 >/dev/null 2>&1; podman volume prune -f >/dev/null 2>&1; true",
                timeout=120, check=False)
        except subprocess.TimeoutExpired:
            pass
        if host.netns:
            pids = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                subprocess.run(["kill", "-9", pid], capture_output=True)
        host.remove()
