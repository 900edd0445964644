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


def write_app(context: Path, version: str, port: int = APP_PORT, healthy: bool = True, fail_every: int = 0) -> Path:
    """A build context for a tiny HTTP app: FROM scratch + a static busybox serving `version`
    at / and `ok` at /health (left out when not `healthy`) on `port`. With `fail_every` N,
    / answers every Nth request with a 500 (a CGI script counting requests: busybox httpd runs
    /cgi-bin/index.cgi for a folder without index.html), the canary that analysis must stop.
    Builds with `podman build --isolation chroot` (nself's deploy.build), no registry needed."""
    www = context / "www"
    (www / "cgi-bin").mkdir(parents=True, exist_ok=True)
    shutil.copy(BUSYBOX, context / "busybox")
    index, cgi = www / "index.html", www / "cgi-bin" / "index.cgi"
    if fail_every:
        index.unlink(missing_ok=True)
        cgi.write_text(_FAILING.format(every=fail_every, version=version))
        cgi.chmod(0o755)
    else:
        cgi.unlink(missing_ok=True)
        index.write_text(f"{version}\n")
    health = www / "health"
    if healthy:
        health.write_text("ok\n")
    else:
        health.unlink(missing_ok=True)
    script = json.dumps(_ENTRYPOINT.format(port=port))
    (context / "Containerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
        + ("RUN [\"/bin/busybox\", \"mkdir\", \"-p\", \"/tmp\"]\n" if fail_every else "")
        + f"COPY www /www\nEXPOSE {port}\nCMD [\"/bin/sh\", \"-c\", {script}]\n")
    return context


# Counts requests in /tmp/count; concurrent requests may share a number, so the failing share
# is close to 1/N, not exact.
_FAILING = """#!/bin/sh
n=$(cat /tmp/count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > /tmp/count
if [ $((n % {every})) = 0 ]; then
  printf 'Status: 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nfailing\\n'
else
  printf 'Content-Type: text/plain\\r\\n\\r\\n{version}\\n'
fi
"""


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


# One pass of `reset_podman_host`: every router nginx a test started stopped (their pid files
# are in the project folders, /var/lib/nself-test/<name>/router/nginx.pid), then every container
# and volume removed, then the project folders themselves (a later test reusing a project name
# would otherwise find the earlier one's live slot, releases and history there).
_RESET = ("for pid in /var/lib/nself-test/*/router/nginx.pid; do [ -s \"$pid\" ] && kill $(cat \"$pid\") 2>/dev/null; "
          "done; podman rm -af -t 0 >/dev/null 2>&1; podman volume prune -f >/dev/null 2>&1; "
          "rm -rf /var/lib/nself-test/*; podman ps -a --format '{{.Names}} {{.Status}}'")


def reset_podman_host(host, deadline: float = 60) -> None:
    """`host` back to running nothing, as a new host: first quiet (no podman or podman-compose
    run started over SSH still going, e.g. one of a killed nself, whose sshd session lives on
    and goes on creating containers), then cleaned by `_RESET` until a pass finds no container
    left: `podman rm -af` refuses a container another one depends on (compose `depends_on`:
    the apps' web, which publishes the port) while that one exists, and a container still being
    created can outlive one `rm`. Raises AssertionError naming what is left after `deadline` s."""
    import time

    end, left = time.monotonic() + deadline, []
    while time.monotonic() < end:
        left = _podman_runs(host)
        if not left:
            left = ssh(host, _RESET, check=False).stdout.split("\n")
            left = [line for line in left if line.strip()]
            if not left:
                return
        time.sleep(0.5)
    raise AssertionError(f"{host.name} is not quiet after {deadline} s: {left}")


def _podman_runs(host) -> list[str]:
    """The podman and podman-compose command lines running in `host`'s network namespace (its
    containers' conmon and processes excluded); [] for a host without one."""
    if not host.netns:
        return []
    pids = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True,
                          timeout=30).stdout.split()
    runs = []
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue                                      # ended meanwhile
        names = [Path(arg.decode(errors="replace")).name for arg in argv[:2]]
        if "podman-compose" in names or names[0] == "podman":
            runs.append(" ".join(a.decode(errors="replace") for a in argv if a))
    return runs


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
