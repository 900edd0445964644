"""Byte streams between machines: one local pipeline, `ssh A 'pg_dump …' | ssh B 'pg_restore …'`.

Steps that run on one host go through nself's SSH executor (`nself.remote.executor`). A dump
is binary and must flow from one machine to another without landing on disk; Fabric's `run`
decodes output as text and buffers it, so the stream runs in OpenSSH's client instead, under
the same rules as nself's connections: the project's `.nself/known_hosts` and
`~/.ssh/known_hosts`, strict host keys, no prompts (BatchMode), the inventory's user, port,
key and jump host, a connect deadline. `sudo` servers get `sudo -n` (passwordless sudo is
needed for streamed steps). ssh exits 255 when it cannot connect: nself checks every host
through the executor first, so that case is reported as exit 6/7 before anything changes.
"""
from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path

from nself.plan import LOCAL
from nself.remote.connection import CONNECT_TIMEOUT
from nself.remote.inventory import KNOWN_HOSTS, Server


def ssh_argv(root: Path, server: Server, servers: Mapping[str, Server]) -> list[str]:
    """`ssh …options… user@host`: the OpenSSH client with nself's connection rules."""
    known = f"{root / KNOWN_HOSTS} {Path.home() / '.ssh' / 'known_hosts'}"
    argv = ["ssh", "-T", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={known}", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
            "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-o", "LogLevel=ERROR",
            "-p", str(server.port), "-l", server.user]
    if server.key:
        argv += ["-i", os.path.expanduser(server.key), "-o", "IdentitiesOnly=yes"]
    if server.jump and server.jump in servers:
        jump = servers[server.jump]
        argv += ["-o", "ProxyCommand=" + shlex.join([*ssh_argv(root, jump, servers), "-W", "%h:%p", jump.host])]
    return [*argv, server.host]


def on_machine(root: Path, where: str, fragment: str, servers: Mapping[str, Server]) -> str:
    """A shell fragment that runs `fragment` where it belongs: as is locally, through ssh on a host."""
    if where == LOCAL:
        return fragment
    server = servers[where]
    remote = f"sudo -n sh -c {shlex.quote(fragment)}" if server.sudo else fragment
    return f"{shlex.join(ssh_argv(root, server, servers))} {shlex.quote(remote)}"


def pipeline(*fragments: str) -> tuple[str, ...]:
    """The argv of a local pipeline that fails when any part fails (bash's pipefail)."""
    return ("bash", "-o", "pipefail", "-c", " | ".join(fragments))


# OpenSSH's words for a failed connection (its client prints them on stderr) → nself's exit codes
_KEY_UNKNOWN = ("Host key verification failed", "No ED25519 host key is known", "host key is known for")
_KEY_CHANGED = "REMOTE HOST IDENTIFICATION HAS CHANGED"
_REFUSED_KEY = "Permission denied (publickey"
_UNREACHABLE = ("Connection refused", "Connection timed out", "No route to host", "Could not resolve hostname",
                "Network is unreachable", "Connection closed by", "Connection reset by")


def ssh_failure(server: Server, stderr: str):
    """The NselfError a command that ran through OpenSSH's client failed with, read from its
    stderr, with the same codes and hints as nself's own connections (exit 7 for a host key
    or a refused key, 6 for an unreachable host); None when ssh itself did not fail."""
    from nself.errors import Exit, NselfError
    from nself.remote.connection import changed_key, unreachable

    if _KEY_CHANGED in stderr:
        return changed_key(server)
    if any(words in stderr for words in _KEY_UNKNOWN):
        return NselfError(f"{server.name}: the host key of {server.host}:{server.port} is unknown",
                          code=Exit.PERMISSION,
                          hint=f"check it out of band, then `nself cloud.servers.add {server.name} "
                               f"--host {server.host} --port {server.port} --trust-new`")
    if _REFUSED_KEY in stderr:
        return NselfError(f"{server.name}: {server.user}@{server.host} refused the key", code=Exit.PERMISSION,
                          hint="check the user and the key (--key) in .nself/servers.yml")
    reason = next((words for words in _UNREACHABLE if words in stderr), None)
    return unreachable(server, ConnectionError(0, reason)) if reason else None
