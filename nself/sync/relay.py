"""Files from one host straight to another, through this machine's memory (pure builders).

rsync runs on the target host as the receiver, so `--backup-dir` snapshots, `--itemize-changes`
and `--delete` work as for any other sync. It reaches the source through a reverse tunnel of
this machine's SSH connection to the target (`ssh -R 127.0.0.1:PORT:SOURCE:22`): the bytes
stream source → here → target without touching this disk, and the two hosts need not reach
each other (staging and production in different networks is the usual case). Chosen over a
direct host-to-host rsync because that needs a route and a firewall rule between them, which
nself cannot check beforehand; the cost is this machine's bandwidth.

Trust, both ways strict:
- the target checks the source's host key against the project's `.nself/known_hosts`, sent on
  the command's stdin into a 0600 temporary file on the target (removed when rsync ends), with
  `HostKeyAlias` naming the source as that file does (the tunnel's address is 127.0.0.1);
- the target logs in to the source with the source's key from the inventory, held by a
  short-lived `ssh-agent` that only this command's connection forwards (`ssh-agent -t`: gone when
  the command ends, or after the deadline) and that holds nothing else. Without an inventory key
  the user's own agent is forwarded. Root on the target could use the forwarded key while the
  sync runs: that is the price of agent forwarding, said in docs/sync.md.

The tunnel's port on the target is derived from the sync id (`ExitOnForwardFailure`: a port in
use fails the step, naming it; the next sync picks another).
"""
from __future__ import annotations

import hashlib
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from nself.errors import Exit, NselfError
from nself.plan import LOCAL, Step
from nself.remote.inventory import Server
from nself.sync.stream import ssh_argv

AGENT_LIFETIME = 6 * 3600          # seconds; the copy's own deadline is the same


def tunnel_port(sync_id: str) -> int:
    """A port in 20000–49999 on the target's loopback for this sync's tunnel."""
    return 20000 + int(hashlib.sha256(sync_id.encode()).hexdigest()[:8], 16) % 30000


def host_key_alias(server: Server) -> str:
    """How known_hosts names the server (OpenSSH's form: `host`, or `[host]:port`)."""
    return server.host if server.port == 22 else f"[{server.host}]:{server.port}"


def copy_step(root: Path, source: Server, target: Server, servers: Mapping[str, Server], rsync: Sequence[str],
              src_dir: str, dst_dir: str, sync_id: str, known_hosts: str, summary: str, timeout: float) -> Step:
    """One local step: `ssh-agent … ssh -A -R … TARGET 'rsync RSYNC -e ssh… 127.0.0.1:SRC DST'`.
    `rsync` is the argv's options (no -e, no locations); `known_hosts` the project's file."""
    if source.jump:
        from nself.deploy.core import NotSupported

        raise NotSupported(f"{source.name} is reached through a jump host: a host-to-host copy from it is not "
                           "built", "pull the files here, then push them")
    port = tunnel_port(sync_id)
    # rsync splits -e itself (honouring quotes); the target's shell expands "$k" inside the "…"
    inner = " ".join(shlex.quote(word) for word in [
        "ssh", "-T", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=$k",
        "-o", f"HostKeyAlias={host_key_alias(source)}", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
        "-p", str(port), "-l", source.user])
    receive = shlex.join([*rsync, *(["--rsync-path", "sudo -n rsync"] if source.sudo else []),
                          f"127.0.0.1:{src_dir}", dst_dir])
    elevate = 'sudo -n env SSH_AUTH_SOCK="$SSH_AUTH_SOCK" ' if target.sudo else ""
    # the known_hosts file lives as long as rsync; "$k" is expanded by the target's shell
    remote = (f'k=$(umask 077 && mktemp) && cat > "$k" && {elevate}rsync -e "{inner}" {receive}; '
              'rc=$?; rm -f "$k"; exit $rc')
    ssh = ssh_argv(root, target, servers)
    tunnel = ["-o", "ForwardAgent=yes", "-o", "ExitOnForwardFailure=yes",
              "-R", f"127.0.0.1:{port}:{source.host}:{source.port}"]
    command = [*ssh[:-1], *tunnel, ssh[-1], remote]
    if source.key:
        key = os.path.expanduser(source.key)
        script = f"ssh-add -q {shlex.quote(key)} < /dev/null && exec {shlex.join(command)}"
        argv = ["ssh-agent", "-t", str(AGENT_LIFETIME), "sh", "-c", script]
    else:
        argv = command
    return Step(summary, "run", tuple(argv), LOCAL, data=known_hosts, error_code=Exit.NETWORK, timeout=timeout)


def tunnel_failure(stderr: str, sync_id: str) -> NselfError | None:
    """The error of a tunnel that could not open on the target (its port in use)."""
    if "remote port forwarding failed" not in stderr:
        return None
    return NselfError(f"the target's port {tunnel_port(sync_id)} for the tunnel is in use", code=Exit.NETWORK,
                      hint="run the sync again: a new sync picks another port")
