"""cloud: servers (inventory, status, exec, ssh, logs, reboot)."""
from __future__ import annotations

from invoke import Collection, task

from nself import runtime

_SELECT = {"hosts": "server names, comma separated (repeatable)",
           "roles": "servers with these roles, comma separated (repeatable)"}


def _root(c):
    from pathlib import Path

    from nself.errors import ConfigError
    from nself.project import find_root

    root = runtime.options(c).root or find_root()
    if root is None:
        raise ConfigError("not inside an nself project", hint="cd into a project (nself new NAME)")
    return Path(root)


@task(positional=["name"], iterable=["roles"], help={
    "name": "server name (lowercase, digits, '-')", "host": "address or DNS name", "port": "SSH port",
    "user": "SSH user", "key": "private key file", "roles": "roles, comma separated (repeatable)",
    "jump": "reach it through this inventory server (ProxyJump)",
    "sudo": "the user runs commands with sudo", "trust_new": "record the host key it offers now "
    "(trust on first use: compare the fingerprint out of band)", "force": "replace an existing entry"})
def add(c, name, host, port=22, user="root", key=None, roles=None, jump=None, sudo=False, trust_new=False,
        force=False):
    """Add a server to the inventory with its host key."""
    from nself.errors import Exit, NselfError
    from nself.remote import connection, inventory

    out = runtime.output(c)
    root = _root(c)
    servers = inventory.load(root)
    inventory.check_name(name)
    if name in servers and not force:
        raise NselfError(f"a server named {name!r} is in the inventory", code=Exit.GENERAL,
                         hint="pass --force to replace it, or choose another name")
    server = inventory.Server(name, host, int(port), user, key,
                              tuple(r for item in roles or [] for r in item.split(",") if r), jump, sudo)
    fingerprint = None
    if trust_new:
        fingerprint = connection.trust(root, server, servers)
    else:
        keys = connection.known_hosts(root)
        if keys.lookup(connection._host_id(server)) is None:
            raise NselfError(f"the host key of {host}:{port} is not known", code=Exit.PERMISSION,
                             hint="pass --trust-new to record the key it offers (check its fingerprint), "
                                  "or add it to ~/.ssh/known_hosts")
    servers[name] = server
    inventory.save(root, servers)
    out.emit({"server": name, **server.to_dict(), "host_key": fingerprint},
             render=lambda d: out.say(f"added {name}" + (f" (host key {fingerprint})" if fingerprint else "")))


@task(positional=["name"], help={"name": "server name"})
def remove(c, name):
    """Remove a server from the inventory."""
    from nself.remote import inventory

    out = runtime.output(c)
    root = _root(c)
    servers = inventory.load(root)
    inventory.get(servers, name)
    del servers[name]
    inventory.save(root, servers)
    out.emit({"removed": name}, render=lambda d: out.say(f"removed {name}"))


@task(name="list", default=True)
def list_servers(c):
    """List the servers of the inventory."""
    from nself.remote import inventory

    out = runtime.output(c)
    servers = inventory.load(_root(c))
    rows = [{"name": s.name, **s.to_dict(), "port": s.port, "user": s.user} for s in servers.values()]
    out.emit(rows, render=lambda d: out.table(
        ["name", "host", "port", "user", "roles", "provider"],
        [[r["name"], r["host"], r["port"], r["user"], ",".join(r.get("roles", [])), r.get("provider", "")]
         for r in d]))


@task(iterable=["hosts", "roles"], help={**_SELECT, "parallel": "at most this many at once"})
def status(c, hosts=None, roles=None, parallel=8):
    """Show reachability, uptime, load, disk, memory and container runtime."""
    from nself.remote import executor, inventory, operations

    out = runtime.output(c)
    root = _root(c)
    servers = inventory.load(root)
    results = executor.run_command(root, inventory.select(servers, hosts, roles), operations.STATUS,
                                   parallel=int(parallel), inventory=servers)
    rows = [{"host": r.name, "reachable": r.error is None, **(operations.parse_status(r.stdout) if r.ok else {}),
             "error": r.error} for r in results]
    out.emit(rows, render=lambda d: out.table(
        ["host", "reachable", "uptime", "load", "disk", "memory", "runtime"],
        [[r["host"], "yes" if r["reachable"] else f"no: {r['error']}", r.get("uptime", ""), r.get("load", ""),
          r.get("disk", ""), r.get("memory", ""), r.get("runtime", "")] for r in d]))
    error = executor.failure(results)
    if error:
        raise error


@task(iterable=["hosts", "roles"], help={**_SELECT, "parallel": "at most this many hosts at once",
                                         "cmd": "the command (or give it after `--`)",
                                         "fail_fast": "stop starting new hosts after a failure",
                                         "timeout": "seconds per host (0: none)"})
def exec(c, hosts=None, roles=None, parallel=8, cmd=None, fail_fast=False, timeout=0):  # noqa: A001
    """Run a command on servers in parallel: cloud.servers.exec -- CMD."""
    import shlex

    from nself.errors import UsageError
    from nself.remote import executor, inventory

    out = runtime.output(c)
    words = runtime.options(c).remainder
    command = shlex.join(words) if words else cmd
    if not command:
        raise UsageError("which command?", hint="nself cloud.servers.exec --roles web -- uptime")
    root = _root(c)
    servers = inventory.load(root)
    chosen = inventory.select(servers, hosts, roles)
    if runtime.options(c).dry_run:
        out.emit({"plan": [{"host": s.name, "command": command} for s in chosen]},
                 render=lambda d: [out.say(f"would run on {s.name}: {command}") for s in chosen])
        return
    results = executor.run_command(root, chosen, command, parallel=int(parallel), fail_fast=fail_fast,
                                   echo=None if out.json_mode else out.say, inventory=servers,
                                   timeout=int(timeout) or None)
    out.emit([r.to_dict() for r in results], render=lambda d: out.table(
        ["host", "exit", "seconds", "error"],
        [[r["host"], "" if r["exit_code"] is None else r["exit_code"], f"{r['duration']:.2f}",
          r["error"] or ""] for r in d]))
    error = executor.failure(results)
    if error:
        raise error


@task(positional=["name"], help={"name": "server name"})
def ssh(c, name):
    """Open an interactive SSH session (host keys checked strictly)."""
    import shutil
    import subprocess

    from nself.errors import Exit, NselfError
    from nself.remote import inventory, operations

    out = runtime.output(c)
    root = _root(c)
    argv = operations.ssh_argv(root, inventory.get(inventory.load(root), name),
                               list(runtime.options(c).remainder) or None)
    if runtime.options(c).dry_run:
        out.emit({"plan": [argv]}, render=lambda d: out.say("would run: " + " ".join(argv)))
        return
    binary = shutil.which("ssh")
    if not binary:
        raise NselfError("the ssh client is not installed", code=Exit.NOT_FOUND, hint="install openssh-client")
    code = subprocess.call([binary, *argv[1:]])
    if code:
        raise NselfError(f"ssh exited {code}", code=Exit.NETWORK if code == 255 else Exit.GENERAL,
                         hint="see its message above")


@task(positional=["name"], help={"name": "server name", "service": "container to read (default: the journal)",
                                 "follow": "keep streaming until Ctrl-C", "lines": "how many lines"})
def logs(c, name, service=None, follow=False, lines=200):
    """Show a server's journal or a container's logs."""
    from nself.remote import executor, inventory, operations

    out = runtime.output(c)
    root = _root(c)
    servers = inventory.load(root)
    try:
        results = executor.run_command(root, [inventory.get(servers, name)],
                                       operations.logs_command(service, follow, int(lines)),
                                       echo=None if out.json_mode else out.say, inventory=servers)
    except KeyboardInterrupt:
        return
    if out.json_mode:
        out.emit(results[0].to_dict())
    error = executor.failure(results)
    if error:
        raise error


logs.optional_positionals = ("service",)


@task(positional=["name"], help={"name": "server name", "timeout": "seconds to wait for it to come back"})
def reboot(c, name, timeout=300):
    """Reboot a server and wait until it answers SSH again (asks unless --yes)."""
    from nself.remote import inventory, operations

    out = runtime.output(c)
    root = _root(c)
    servers = inventory.load(root)
    server = inventory.get(servers, name)
    if runtime.options(c).dry_run:
        out.emit({"plan": [{"host": name, "command": "reboot", "then": "wait for SSH"}]},
                 render=lambda d: out.say(f"would reboot {name} and wait for SSH"))
        return
    if not runtime.confirm(c, f"Reboot {name} ({server.host})?"):
        out.say("left as it is")
        return
    seconds = operations.reboot(root, server, servers, int(timeout))
    out.emit({"server": name, "back_after": round(seconds, 1)},
             render=lambda d: out.say(f"{name} is back after {d['back_after']}s"))


servers_ns = Collection("servers", add, remove, list_servers, status, exec, ssh, logs, reboot)
ns = Collection("cloud", servers_ns)
ns.configure({"cloud": {}})
