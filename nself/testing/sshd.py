"""Real sshd test hosts: throwaway host and user keys, one sshd per host.

Plain hosts listen on their own port on 127.0.0.1. Isolated hosts run in their own mount
namespace (/etc and /var/lib overlaid, /usr/local/bin and /usr/local/sbin private), so what
they install (k3s, users, sudoers) touches nothing else, and `reboot` on them restarts only
their sshd. Networked hosts also get their own network namespace and address (a veth pair
on 10.213.N.0/30 that the test makes and deletes).
"""
from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
_NETWORKS = itertools.count(os.getpid() % 200)


@dataclass
class Host:
    name: str
    port: int
    folder: Path
    host_key: Path
    user_key: Path
    process: subprocess.Popen | None = None
    isolated: bool = False
    netns: str | None = None         # network namespace name (networked hosts)
    ip: str = "127.0.0.1"

    @property
    def address(self) -> str:
        return self.ip

    def start(self) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)   # sshd's privilege separation directory
        (self.folder / "stopped").unlink(missing_ok=True)
        sshd = [SSHD, "-D", "-e", "-f", str(self.folder / "sshd_config")]
        argv = sshd
        if self.isolated:
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", self._namespace_script(), "sh",
                    *sshd]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, start_new_session=True,
                                        stderr=open(self.folder / "sshd.log", "ab"))
        self.wait_up()

    def _namespace_script(self) -> str:
        steps = []
        for target in ("/etc", "/var/lib"):
            layer = target.strip("/").replace("/", "_")
            upper, work = self.folder / "layers" / layer, self.folder / "work" / layer
            upper.mkdir(parents=True, exist_ok=True)
            work.mkdir(parents=True, exist_ok=True)
            steps.append(f"mount -t overlay overlay -o lowerdir={target},upperdir={upper},workdir={work} {target}")
        steps += ["mount -t tmpfs tmpfs /usr/local/bin", "mount -t tmpfs tmpfs /usr/local/sbin",
                  # `reboot` on this host: its sshd stops, and the loop below starts it again
                  f"printf '#!/bin/sh\\nkill $(cat {self.folder}/sshd.pid)\\n' > /usr/local/sbin/reboot",
                  "chmod +x /usr/local/sbin/reboot",
                  f'while :; do "$@"; [ -e {self.folder}/stopped ] && break; sleep 1; done']
        return " && ".join(steps)

    def wait_up(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.ip, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd for {self.name} did not start: {(self.folder / 'sshd.log').read_text()}")

    def stop(self) -> None:
        (self.folder / "stopped").touch()
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self.process.wait(10)

    def remove(self) -> None:
        self.stop()
        if self.netns:
            subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)

    def new_host_key(self) -> None:
        """The host was 'rebuilt': a new host key (for changed-key tests)."""
        self.stop()
        self.host_key.unlink()
        Path(f"{self.host_key}.pub").unlink()
        _keygen(self.host_key)
        self.start()


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _network(name: str) -> tuple[str, str]:
    """A network namespace joined to this one by a veth pair: (namespace, host address)."""
    number = next(_NETWORKS) % 250
    netns = f"nself-{name}-{os.getpid()}"
    outside, inside = f"nsv{os.getpid() % 10000}{number}a", f"nsv{os.getpid() % 10000}{number}b"
    subnet = f"10.213.{number}"
    commands = [["ip", "netns", "add", netns],
                ["ip", "link", "add", outside, "type", "veth", "peer", "name", inside],
                ["ip", "link", "set", inside, "netns", netns],
                ["ip", "addr", "add", f"{subnet}.1/30", "dev", outside],
                ["ip", "link", "set", outside, "up"],
                ["ip", "netns", "exec", netns, "ip", "addr", "add", f"{subnet}.2/30", "dev", inside],
                ["ip", "netns", "exec", netns, "ip", "link", "set", inside, "up"],
                ["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"]]
    for command in commands:
        subprocess.run(command, check=True, capture_output=True)
    return netns, f"{subnet}.2"


def start_hosts(folder: Path, count: int, user_key: Path | None = None, isolated: bool = False,
                networked: bool = False) -> list[Host]:
    """`count` sshd hosts sharing one user key (a test's deploy key)."""
    folder.mkdir(parents=True, exist_ok=True)
    if user_key is None:
        user_key = folder / "id_ed25519"
        _keygen(user_key)
    hosts = []
    for index in range(count):
        name = f"host{index + 1}"
        home = folder / name
        home.mkdir()
        host_key = home / "ssh_host_ed25519_key"
        _keygen(host_key)
        authorized = home / "authorized_keys"
        authorized.write_text(Path(f"{user_key}.pub").read_text())
        netns, ip, port = None, "127.0.0.1", _free_port()
        if networked:
            netns, ip = _network(name)
            port = 22
        (home / "sshd_config").write_text(
            f"Port {port}\nListenAddress {ip}\nHostKey {host_key}\nPidFile {home}/sshd.pid\n"
            # The second file lets a test add users on an isolated host (sshd reads it as the user).
            f"AuthorizedKeysFile {authorized} /etc/nself-test-keys/%u\nStrictModes no\nUsePAM no\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "Subsystem sftp internal-sftp\nMaxStartups 100\nLogLevel ERROR\n")
        host = Host(name, port, home, host_key, user_key, isolated=isolated or networked, netns=netns, ip=ip)
        host.start()
        hosts.append(host)
    return hosts
