"""Real sshd test hosts: throwaway host and user keys, one sshd per host.

Plain hosts listen on their own port on 127.0.0.1. Isolated hosts run in their own mount
namespace (/etc and /var/lib overlaid, /usr/local/bin and /usr/local/sbin private), so what
they install (k3s, users, sudoers) touches nothing else, and `reboot` on them restarts only
their sshd. Networked hosts also get their own network namespace and address (a veth pair
on 10.213.N.0/30 that the test makes and deletes).

Every host is a fresh server to the user logging in: sshd runs in its own mount namespace where
root's ~/.bashrc is Debian's default one (bash reads ~/.bashrc for every SSH command; a
developer machine's may start pyenv or similar, 0.3–0.5 s per command, which no server has).
"""
from __future__ import annotations

import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
NETWORK_LOCK = Path("/run/lock/nself-test-networks.lock")


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
        script = self._namespace_script() if self.isolated else f'{self._fresh_shell()} && exec "$@"'
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *sshd]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, start_new_session=True,
                                        stderr=open(self.folder / "sshd.log", "ab"))
        self.wait_up()

    def _fresh_shell(self) -> str:
        """Root's ~/.bashrc replaced (in this host's mount namespace only) by Debian's default,
        which does nothing for a non-interactive shell."""
        skel, bashrc = Path("/etc/skel/.bashrc"), Path(pwd.getpwnam("root").pw_dir) / ".bashrc"
        own = self.folder / "bashrc"
        own.write_text(skel.read_text() if skel.is_file() else "")
        return f"{{ [ ! -f {bashrc} ] || mount --bind {own} {bashrc}; }}"

    def _namespace_script(self) -> str:
        steps = [self._fresh_shell()]
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
            subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, timeout=30)

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
    """A network namespace joined to this one by a veth pair: (namespace, host address).
    The subnet is a 10.213.N.0/30 no link uses yet, chosen and taken under a lock file, so
    concurrent test runs never pick the same one; a half-made network is removed again."""
    NETWORK_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(NETWORK_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        number = _free_subnet()
        netns, outside = f"nself-{name}-{os.getpid()}-{number}", f"nsv{number}a"
        try:
            _make_network(netns, outside, f"nsv{number}b", f"10.213.{number}")
        except subprocess.CalledProcessError:
            _remove_network(netns, outside)
            raise
    return netns, f"10.213.{number}.2"


def _free_subnet() -> int:
    """The lowest N in 0..249 whose 10.213.N.0/30 no address, route or nsvN link uses."""
    def ip(*args: str) -> str:
        return subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30).stdout

    taken = {int(n) for n in re.findall(r"\b10\.213\.(\d+)\.", ip("-o", "-4", "addr", "show") + ip("-4", "route"))}
    taken |= {int(n) for n in re.findall(r"\bnsv(\d+)[ab]\b", ip("-o", "link", "show"))}
    free = [n for n in range(250) if n not in taken]
    if not free:
        raise RuntimeError("no free 10.213.N.0/30 test subnet: remove leftover nself-* network namespaces")
    return free[0]


def _make_network(netns: str, outside: str, inside: str, subnet: str) -> None:
    commands = [["ip", "netns", "add", netns],
                ["ip", "link", "add", outside, "type", "veth", "peer", "name", inside],
                ["ip", "link", "set", inside, "netns", netns],
                ["ip", "addr", "add", f"{subnet}.1/30", "dev", outside],
                ["ip", "link", "set", outside, "up"],
                ["ip", "netns", "exec", netns, "ip", "addr", "add", f"{subnet}.2/30", "dev", inside],
                ["ip", "netns", "exec", netns, "ip", "link", "set", inside, "up"],
                ["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"]]
    for command in commands:
        subprocess.run(command, check=True, capture_output=True, timeout=30)


def _remove_network(netns: str, outside: str) -> None:
    """Deleting the namespace deletes the veth inside it and so its peer; the peer is deleted
    too in case it never moved in."""
    subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=30)
    subprocess.run(["ip", "link", "del", outside], capture_output=True, timeout=30)


def start_hosts(folder: Path, count: int, user_key: Path | None = None, isolated: bool = False,
                networked: bool = False) -> list[Host]:
    """`count` sshd hosts sharing one user key (a test's deploy key)."""
    folder.mkdir(parents=True, exist_ok=True)
    if user_key is None:
        user_key = folder / "id_ed25519"
        _keygen(user_key)
    hosts: list[Host] = []
    try:
        for index in range(count):
            hosts.append(_start_host(folder, f"host{index + 1}", user_key, isolated, networked))
    except BaseException:
        for host in hosts:        # a namespace left behind would hold its subnet and name
            host.remove()
        raise
    return hosts


def _start_host(folder: Path, name: str, user_key: Path, isolated: bool, networked: bool) -> Host:
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
    try:
        host.start()
    except BaseException:
        host.remove()
        raise
    return host
