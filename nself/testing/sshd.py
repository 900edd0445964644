"""Real sshd test hosts on 127.0.0.1: throwaway host and user keys, one sshd per host on its
own port, started with `sshd -D -e -f CONFIG` (StrictModes no, UsePAM no)."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@dataclass
class Host:
    name: str
    port: int
    folder: Path
    host_key: Path
    user_key: Path
    process: subprocess.Popen | None = None
    isolated: bool = False      # own mount namespace: /etc and /var/lib overlaid, /usr/local/bin private

    @property
    def address(self) -> str:
        return "127.0.0.1"

    def start(self) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)   # sshd's privilege separation directory
        argv = [SSHD, "-D", "-e", "-f", str(self.folder / "sshd_config")]
        if self.isolated:
            # What this host installs (k3s, sudoers…) lands in its own layers, not on the machine.
            layers = []
            for target in ("/etc", "/var/lib"):
                layer = target.strip("/").replace("/", "_")
                upper, work = self.folder / "layers" / layer, self.folder / "work" / layer
                upper.mkdir(parents=True, exist_ok=True)
                work.mkdir(parents=True, exist_ok=True)
                layers.append(f"mount -t overlay overlay -o lowerdir={target},upperdir={upper},workdir={work} {target}")
            script = " && ".join([*layers, "mount -t tmpfs tmpfs /usr/local/bin", 'exec "$@"'])
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                        stderr=open(self.folder / "sshd.log", "ab"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd for {self.name} did not start: {(self.folder / 'sshd.log').read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

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


def start_hosts(folder: Path, count: int, user_key: Path | None = None, isolated: bool = False) -> list[Host]:
    """`count` sshd hosts sharing one user key (a test's deploy key); `isolated` hosts get
    their own mount namespace (installs on them touch nothing else)."""
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
        port = _free_port()
        (home / "sshd_config").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {home}/sshd.pid\n"
            # The second file lets a test add users on an isolated host (sshd reads it as the user).
            f"AuthorizedKeysFile {authorized} /etc/nself-test-keys/%u\nStrictModes no\nUsePAM no\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "Subsystem sftp internal-sftp\nMaxStartups 100\nLogLevel ERROR\n")
        host = Host(name, port, home, host_key, user_key, isolated=isolated)
        host.start()
        hosts.append(host)
    return hosts
