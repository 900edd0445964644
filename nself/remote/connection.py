"""SSH connections with strict host key checking (Fabric trusts unknown keys by default;
nself does not).

Known keys come from the project's `.nself/known_hosts` (committed) and `~/.ssh/known_hosts`
(read, never written). An unknown or changed key is exit 7 with the fix; an unreachable
host exit 6; trust-on-first-use happens only when asked (`--trust-new`).
"""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from nself.errors import Exit, NselfError
from nself.files import write_atomic
from nself.remote.inventory import KNOWN_HOSTS, Server

CONNECT_TIMEOUT = 10
# paramiko's transport thread logs its own traceback for a failed handshake (a non-SSH banner, a
# reset); nself reports the failure itself, with the exit code and the fix.
_PARAMIKO_LOG = logging.getLogger("paramiko")
_PARAMIKO_LOG.addHandler(logging.NullHandler())
_PARAMIKO_LOG.propagate = False


def _host_id(server: Server) -> str:
    return server.host if server.port == 22 else f"[{server.host}]:{server.port}"


def known_hosts(root: Path):
    import paramiko

    keys = paramiko.HostKeys()
    for path in (Path.home() / ".ssh" / "known_hosts", root / KNOWN_HOSTS):
        if path.is_file():
            keys.load(str(path))
    return keys


def scan(server: Server, root: Path | None = None, servers: dict[str, Server] | None = None):
    """The host's key, as offered on connect (for --trust-new); through the jump host if any."""
    import paramiko

    if server.jump and root is not None:
        bastion = connect(root, _jump(server, servers), servers)
        open_checked(bastion, _jump(server, servers))
        try:
            sock = bastion.transport.open_channel("direct-tcpip", (server.host, server.port), ("127.0.0.1", 0))
        except (paramiko.SSHException, OSError) as exc:
            raise unreachable(server, exc) from None
    else:
        try:
            sock = socket.create_connection((server.host, server.port), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise unreachable(server, exc) from None
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=CONNECT_TIMEOUT)
        return transport.get_remote_server_key()
    except paramiko.SSHException as exc:
        raise NselfError(f"{server.name}: no SSH server answered at {server.host}:{server.port} ({exc})",
                         code=Exit.NETWORK, hint="check the host and port") from None
    finally:
        transport.close()


def trust(root: Path, server: Server, servers: dict[str, Server] | None = None) -> str:
    """Record the host's key in .nself/known_hosts (refusing to replace a different one)."""
    import paramiko

    key = scan(server, root, servers)
    keys = known_hosts(root)
    known = keys.lookup(_host_id(server))
    if known is not None and key.get_name() in known and known[key.get_name()] != key:
        raise changed_key(server)
    path = root / KNOWN_HOSTS
    path.parent.mkdir(parents=True, exist_ok=True)
    project_keys = paramiko.HostKeys()
    if path.is_file():
        project_keys.load(str(path))
    project_keys.add(_host_id(server), key.get_name(), key)
    lines = [f"{host} {kind} {k.get_base64()}" for host, entries in sorted(project_keys.items())
             for kind, k in sorted(entries.items())]
    write_atomic(path, ("\n".join(lines) + "\n").encode())
    return f"{key.get_name()} SHA256:{_fingerprint(key)}"


def _fingerprint(key) -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def connect(root: Path, server: Server, servers: dict[str, Server] | None = None, *,
            sudo_password: str | None = None):
    """A Fabric Connection that refuses unknown and changed host keys."""
    import paramiko
    from fabric import Config, Connection

    connect_kwargs: dict = {"banner_timeout": CONNECT_TIMEOUT,
                            "auth_timeout": CONNECT_TIMEOUT}
    if server.key:
        connect_kwargs["key_filename"] = os.path.expanduser(server.key)
        connect_kwargs["look_for_keys"] = False
    gateway = None
    if server.jump:   # opened first, so a failure names the jump host
        jump = _jump(server, servers)
        gateway = connect(root, jump, servers)
        open_checked(gateway, jump)
    # sudo answers its prompt from NSELF_SUDO_PASSWORD (no TTY needed: CI, scripts).
    sudo_password = sudo_password or os.environ.get("NSELF_SUDO_PASSWORD")
    overrides = {"sudo": {"password": sudo_password}} if sudo_password else {}
    connection = Connection(server.host, user=server.user, port=server.port, gateway=gateway,
                            connect_kwargs=connect_kwargs, connect_timeout=CONNECT_TIMEOUT,
                            config=Config(overrides=overrides))
    client = connection.client
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    keys = known_hosts(root)
    for host, entries in keys.items():
        for kind, key in entries.items():
            client.get_host_keys().add(host, kind, key)
    return connection


def _jump(server: Server, servers: dict[str, Server] | None) -> Server:
    if not servers or server.jump not in servers:
        raise NselfError(f"{server.name}: jump host {server.jump!r} is not in the inventory",
                         code=Exit.CONFIG, hint="add it with `nself cloud.servers.add`")
    return servers[server.jump]


def open_checked(connection, server: Server) -> None:
    """Open the connection now, turning paramiko's failures into nself's exit codes."""
    import paramiko

    try:
        connection.open()
    except paramiko.BadHostKeyException:
        raise changed_key(server) from None
    except paramiko.SSHException as exc:
        text = str(exc)
        if "not found in known_hosts" in text:
            raise NselfError(f"{server.name}: the host key of {server.host}:{server.port} is unknown",
                             code=Exit.PERMISSION,
                             hint=f"check it out of band, then `nself cloud.servers.add {server.name} "
                                  f"--host {server.host} --port {server.port} --trust-new`") from None
        if isinstance(exc, paramiko.AuthenticationException):
            raise NselfError(f"{server.name}: {server.user}@{server.host} refused the key", code=Exit.PERMISSION,
                             hint="check the user and the key (--key) in .nself/servers.yml") from None
        raise NselfError(f"{server.name}: SSH failed: {text}", code=Exit.NETWORK,
                         hint="check that sshd runs on the host") from None
    except (OSError, EOFError) as exc:
        raise unreachable(server, exc) from None


def unreachable(server: Server, exc: Exception) -> NselfError:
    reason = getattr(exc, "strerror", None) or type(exc).__name__
    return NselfError(f"{server.name}: {server.host}:{server.port} is unreachable ({reason})",
                      code=Exit.NETWORK, hint="check the address, the port, firewalls and that the host is up")


def changed_key(server: Server) -> NselfError:
    return NselfError(f"{server.name}: the host key of {server.host}:{server.port} CHANGED",
                      code=Exit.PERMISSION,
                      hint="someone may be intercepting the connection; if the host was rebuilt, "
                           "remove its line from .nself/known_hosts and add it again with --trust-new")


def is_known(root: Path, server: Server) -> bool:
    """Whether the project's or the user's known_hosts holds a key for the server's address."""
    return known_hosts(root).lookup(_host_id(server)) is not None
