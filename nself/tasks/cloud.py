"""cloud: servers (inventory, status, exec, ssh, logs, reboot, destroy), providers, provision, costs."""
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


@task(name="list", default=True, help={"refresh": "ask the providers for the state and address of "
                                                      "provisioned servers and update the inventory"})
def list_servers(c, refresh=False):
    """List the servers of the inventory."""
    from nself.remote import inventory

    out = runtime.output(c)
    root = _root(c)
    servers = inventory.load(root)
    states = {}
    if refresh:
        states = _refresh(c, root, servers)
    rows = [{"name": s.name, **s.to_dict(), "port": s.port, "user": s.user,
             **({"state": states[s.name]} if s.name in states else {})} for s in servers.values()]
    out.emit(rows, render=lambda d: out.table(
        ["name", "host", "port", "user", "roles", "provider"] + (["state"] if refresh else []),
        [[r["name"], r["host"], r["port"], r["user"], ",".join(r.get("roles", [])), r.get("provider", "")]
         + ([r.get("state", "")] if refresh else []) for r in d]))


def _refresh(c, root, servers) -> dict[str, str]:
    """Each provider once: the state of its servers; new addresses go into the inventory."""
    import dataclasses

    from nself.remote import inventory

    states, changed = {}, False
    for provider_name in sorted({s.provider for s in servers.values() if s.provider and s.id}):
        live = {x.id: x for x in _provider(c, provider_name).list()}
        for server in [s for s in servers.values() if s.provider == provider_name]:
            found = live.get(server.id)
            states[server.name] = found.status if found else "gone"
            if found and found.ipv4 and found.ipv4 != server.host:
                servers[server.name] = dataclasses.replace(server, host=found.ipv4)
                changed = True
    if changed:
        inventory.save(root, servers)
    return states


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
    from nself.plan import emit
    from nself.remote import executor, inventory

    out = runtime.output(c)
    words = runtime.options(c).remainder
    command = shlex.join(words) if words else cmd
    if not command:
        raise UsageError("which command?", hint="nself cloud.servers.exec --roles web -- uptime")
    root = _root(c)
    servers = inventory.load(root)
    plans = executor.command_plans(inventory.select(servers, hosts, roles), command)
    if runtime.options(c).dry_run:
        emit(out, list(plans.values()))
        return
    results = executor.run_plans(root, plans, servers, parallel=int(parallel), fail_fast=fail_fast,
                                 echo=None if out.json_mode else out.say, timeout=int(timeout) or None)
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
    from nself.plan import Plan, emit, run
    from nself.remote import inventory, operations

    out = runtime.output(c)
    root = _root(c)
    argv = operations.ssh_argv(root, inventory.get(inventory.load(root), name),
                               list(runtime.options(c).remainder) or None)
    if runtime.options(c).dry_run:
        emit(out, Plan(f"open an SSH session on {name}", [run("open an interactive SSH session", *argv)]))
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
    """Reboot a server and wait until it answers SSH again.

    Through the provider's API when nself provisioned it, else over SSH; asks unless --yes."""
    from nself.plan import emit
    from nself.remote import inventory, operations

    out = runtime.output(c)
    root = _root(c)
    servers = inventory.load(root)
    server = inventory.get(servers, name)
    via = f"{server.provider} API" if server.provider and server.id else "ssh"
    through_api = None
    if via != "ssh":
        from nself.providers.plans import reboot_step

        through_api = reboot_step(server.provider, name, server.id, server.region,
                                  lambda: _provider(c, server.provider).reboot(server.id))
    plan = operations.reboot_plan(server, through_api)
    if runtime.options(c).dry_run:
        emit(out, plan)
        return
    if not runtime.confirm(c, f"Reboot {name} ({server.host})?"):
        out.say("left as it is")
        return
    seconds = operations.reboot(root, plan, server, servers, int(timeout))
    out.emit({"server": name, "via": via, "back_after": round(seconds, 1)},
             render=lambda d: out.say(f"{name} is back after {d['back_after']}s"))


@task(positional=["name"], help={"name": "server name in the inventory (or, with --provider, at the provider)",
                                 "provider": "destroy a server the inventory does not know: by its name or id"})
def destroy(c, name, provider=None):
    """Destroy a provisioned server and remove it from the inventory.

    Asks unless --yes."""
    from nself.errors import UsageError
    from nself.plan import LocalRunner, emit
    from nself.providers import operations
    from nself.providers.plans import destroy_plan
    from nself.remote import inventory

    out = runtime.output(c)
    root = _root(c)
    servers = inventory.load(root)
    if name in servers or not provider:
        server = inventory.get(servers, name)
        if not (server.provider and server.id):
            raise UsageError(f"{name} was not provisioned by nself (no provider and id in the inventory)",
                             hint=f"destroy it in its provider's console, then `nself cloud.servers.remove {name}`")
        provider, server_id, host = server.provider, server.id, server.host
    else:
        found = operations.resolve_id(_provider(c, provider), name)
        server_id, host = found.id, found.ipv4 or "no address"
    region = servers[name].region if name in servers else None
    plan = destroy_plan(provider, name, server_id, host, region, lambda: _provider(c, provider).destroy(server_id))
    if runtime.options(c).dry_run:
        emit(out, plan)
        return
    if not runtime.confirm(c, f"Destroy {name} ({provider} {server_id}, {host})? Its disk is lost."):
        out.say("left as it is")
        return
    plan.run(LocalRunner())
    if name in servers:
        del servers[name]
        inventory.save(root, servers)
    out.emit({"destroyed": name, "provider": provider, "id": server_id},
             render=lambda d: out.say(f"destroyed {name}"))


# --- providers ------------------------------------------------------------------------------

def _question(plan) -> str:
    """A one-step plan's sentence as the confirmation question."""
    summary = plan.steps[0].summary
    return f"{summary[:1].upper()}{summary[1:]}?"


def _provider_for_plan(c, name):
    """The driver; in a dry run without credentials None, after saying what cannot be checked."""
    from nself.providers import catalog
    from nself.providers.credentials import MissingCredentials

    try:
        return _provider(c, name)
    except MissingCredentials as exc:
        if not runtime.options(c).dry_run:
            raise
        runtime.output(c).warn(f"{exc.message}: planned offline from nself's price catalog (as of "
                               f"{catalog.as_of(name) or 'unknown'}); the name, the region and the size's "
                               f"availability were not checked with the API ({exc.hint})")
        return None


def _provider(c, name):
    """The provider's driver; its credentials are redacted from every output."""
    from nself.providers import operations

    out = runtime.output(c)
    return operations.connect(name, log=out.debug, secrets=out.add_secrets)


@task(name="list", default=True)
def providers_list(c):
    """List the 26 providers: what nself drives, credentials, managed k8s."""
    from nself.errors import ConfigError
    from nself.providers import credentials, registry

    out = runtime.output(c)

    def found(entry) -> str:
        try:
            return "environment" if credentials.resolve(entry)[1] == "environment" else "file"
        except ConfigError:          # none; a file others can read still stops here (exit 7)
            return ""

    def can(entry) -> list[str]:
        return sorted(registry.driver_class(entry.name).capabilities) if entry.implemented else []

    def k8s(row) -> str:
        if not row["managed_k8s"]:
            return ""
        return row["managed_k8s"] + ("" if "k8s" in row["capabilities"] else " (not built)")

    rows = [{"provider": i.name, "title": i.title, "implemented": i.implemented, "capabilities": can(i),
             "credentials": found(i), "managed_k8s": i.managed_k8s or ""} for i in registry.PROVIDERS.values()]
    out.emit(rows, render=lambda d: out.table(
        ["provider", "title", "provision", "credentials", "managed k8s"],
        [[r["provider"], r["title"], "yes" if r["implemented"] else "not yet", r["credentials"], k8s(r)]
         for r in d]))


@task(positional=["name"], help={"name": "provider name", "no_validate": "save without asking the provider"})
def init(c, name, no_validate=False):
    """Check and store a provider's credentials (mode 0600).

    Saved in ~/.config/nself/credentials.yml. Prompts for each field; without a terminal,
    reads one value per line from stdin."""
    import getpass
    import sys

    from nself.errors import UsageError
    from nself.providers import credentials, operations, registry

    out = runtime.output(c)
    entry = registry.info(name)
    values = {}
    for fieldname, names in entry.credentials:
        prompt = f"{entry.title} {fieldname} ({names[0]}): "
        value = getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline().strip()
        if not value:
            raise UsageError(f"no {fieldname} given", hint=f"paste the value, or set {names[0]} instead")
        values[fieldname] = value
    out.add_secrets(values.values())
    who = None
    if not no_validate and entry.implemented:      # nothing is saved if the provider refuses them
        who = operations.connect(name, log=out.debug, values=values).validate()
    path = credentials.save(name, values)
    out.emit({"provider": name, "saved": str(path), "account": who},
             render=lambda d: out.say(f"saved {entry.title} credentials to {path}" + (f" ({who})" if who else "")))


@task(positional=["name"], help={"name": "provider name"})
def remove_provider(c, name):
    """Forget a provider's stored credentials."""
    from nself.providers import credentials, registry

    out = runtime.output(c)
    registry.info(name)
    credentials.save(name, None)
    out.emit({"provider": name, "removed": True}, render=lambda d: out.say(f"removed {name} credentials"))


@task(name="status")
def providers_status(c):
    """Check the credentials of every provider that has some (concurrently)."""
    from concurrent.futures import ThreadPoolExecutor

    from nself.errors import Exit, NselfError
    from nself.providers import registry

    out = runtime.output(c)

    def check(name):
        try:
            return {"provider": name, "ok": True, "account": _provider(c, name).validate()}
        except NselfError as exc:
            return {"provider": name, "ok": False, "error": exc.message}

    with ThreadPoolExecutor(max_workers=8) as pool:
        rows = list(pool.map(check, registry.implemented()))
    out.emit(rows, render=lambda d: out.table(["provider", "ok", "account / error"],
             [[r["provider"], "yes" if r["ok"] else "no", r.get("account") or r.get("error")] for r in d]))
    if not any(r["ok"] for r in rows):
        raise NselfError("no provider has working credentials", code=Exit.PROVIDER, reported=True,
                         hint="nself cloud.providers.init NAME")


@task(positional=["name"], help={"name": "provider name"})
def regions(c, name):
    """List a provider's regions."""
    out = runtime.output(c)
    rows = [r.to_dict() for r in _provider(c, name).list_regions()]
    out.emit(rows, render=lambda d: out.table(["id", "name", "country", "available"],
             [[r["id"], r["name"], r["country"], "yes" if r["available"] else "no"] for r in d]))


@task(positional=["name"], help={"name": "provider name"})
def sizes(c, name):
    """List a provider's sizes with their monthly prices (from its API)."""
    out = runtime.output(c)
    rows = [s.to_dict() for s in sorted(_provider(c, name).list_sizes(), key=lambda s: (s.monthly or 0, s.vcpu))]
    out.emit(rows, render=lambda d: out.table(["id", "vcpu", "ram GB", "disk GB", "monthly"],
             [[r["id"], r["vcpu"], f"{r['ram_gb']:g}", r["disk_gb"],
               "" if r["monthly"] is None else f"{r['monthly']:.2f} {r['currency']}"] for r in d]))


@task(positional=["provider"], iterable=["roles"], help={
    "provider": "provider name (cloud.providers.list)", "name": "server name (lowercase, digits, '-')",
    "size": "tiny, small, medium, large, xlarge, or the provider's size id", "region": "region id",
    "ssh_key": "public key to install (a private key path means its .pub; default ~/.ssh/id_ed25519.pub)",
    "user_data": "cloud-init file", "image": "image (default: the provider's Ubuntu LTS)",
    "roles": "inventory roles, comma separated", "port": "SSH port the image listens on",
    "user": "SSH user of the image (default: the provider's for its default image: root, or ubuntu at AWS, GCP)",
    "trust_new": "wait for SSH and record the host key it offers (trust on first use)",
    "timeout": "seconds to wait until it runs"})
def provision(c, provider, name, region, size="small", ssh_key=None, user_data=None, image=None, roles=None,
              port=22, user=None, trust_new=False, timeout=600):
    """Create a server at a provider and add it to the inventory.

    Waits until it runs (and, with --trust-new, for SSH); asks unless --yes."""
    import time
    from pathlib import Path

    from nself.errors import Exit, NselfError, UsageError
    from nself.plan import LocalRunner, emit
    from nself.providers import keys, operations, registry
    from nself.providers.base import ProvisionRequest
    from nself.providers.plans import provision_plan
    from nself.remote import connection, inventory
    from nself.remote import operations as remote_ops

    out = runtime.output(c)
    root = _root(c)
    servers = inventory.load(root)
    inventory.check_name(name)
    if name in servers:
        raise NselfError(f"a server named {name!r} is in the inventory", code=Exit.GENERAL,
                         hint="choose another name, or destroy it first (cloud.servers.destroy)")
    driver = _provider_for_plan(c, provider)
    public_key = keys.read_public_key(ssh_key)
    init_text = None
    if user_data:
        try:
            init_text = Path(user_data).read_text()
        except OSError as exc:
            raise UsageError(f"cannot read {user_data}: {exc.strerror}", hint="pass a cloud-init file") from None
    if driver is None:                   # a dry run without credentials: planned from the catalog
        chosen = operations.catalog_size(provider, size, region)
        request = ProvisionRequest(name, region, chosen.id, image or registry.driver_class(provider).image,
                                   public_key, init_text)
        emit(out, provision_plan(provider, request, chosen, keys.md5_fingerprint(public_key), lambda: None))
        return
    operations.check_name(driver, name)
    operations.check_region(driver, region)
    chosen = operations.resolve_size(driver, size, region)
    operations.check_user_data(driver, init_text)
    request = ProvisionRequest(name, region, chosen.id, image or driver.image, public_key, init_text)
    plan = provision_plan(provider, request, chosen, keys.md5_fingerprint(public_key),
                          lambda: operations.create(driver, request, out.verbose))
    if runtime.options(c).dry_run:
        emit(out, plan)
        return
    if not runtime.confirm(c, _question(plan)):
        out.say("left as it is")
        return
    started = time.monotonic()
    created = plan.run(LocalRunner())[0].value
    # In the inventory from the moment it exists, so nothing is lost if the wait is interrupted.
    server = inventory.Server(name, created.ipv4 or "0.0.0.0", int(port), user or driver.ssh_user,
                              keys.private_key_path(ssh_key),
                              roles=tuple(r for item in roles or [] for r in item.split(",") if r),
                              provider=provider, id=created.id, region=region, size=chosen.id)
    servers[name] = server
    inventory.save(root, servers)
    running = operations.wait_running(driver, created, float(timeout), out.say)
    servers[name] = server = inventory.Server(**{**server.__dict__, "host": running.ipv4})
    inventory.save(root, servers)
    fingerprint = None
    if trust_new:
        fingerprint = remote_ops.wait_for_ssh(server, lambda: connection.trust(root, server, servers),
                                              started + float(timeout))
    report = {"provider": provider, "name": name, "region": region, "size": chosen.id, "vcpu": chosen.vcpu,
              "ram_gb": chosen.ram_gb, "monthly": chosen.monthly, "currency": chosen.currency,
              "image": request.image, "ssh_key": keys.md5_fingerprint(public_key)}
    out.emit({**report, "id": running.id, "ipv4": running.ipv4, "ipv6": running.ipv6, "host_key": fingerprint,
              "seconds": round(time.monotonic() - started, 1)},
             render=lambda d: out.say(f"{name} is running at {running.ipv4} ({d['seconds']}s)"
                                      + (f"; host key {fingerprint}" if fingerprint else
                                         "; record its host key with --trust-new on cloud.servers.add")))


# --- costs ------------------------------------------------------------------------------

@task(help={"size": "tiny, small, medium, large or xlarge",
            "live": "ask the providers that nself drives and that have credentials (concurrently)"})
def compare(c, size="medium", live=False):
    """Every provider side by side for one size, cheapest first.

    Each price says where it comes from: the dated catalog, or live."""
    from nself.errors import NselfError, UsageError
    from nself.providers import catalog, credentials, registry
    from nself.providers.base import NORMALISED

    out = runtime.output(c)
    if size not in NORMALISED:
        raise UsageError(f"unknown size {size!r}", hint="use " + ", ".join(NORMALISED))
    fresh = {}
    if live:
        from nself.providers import operations   # imports requests: only when asking the APIs

        names = []
        for name in registry.implemented():
            try:
                credentials.resolve(registry.info(name))
                names.append(name)
            except NselfError:   # no credentials: this provider stays on the catalog
                continue
        fresh = {row["provider"]: row for row in operations.live_sizes(names, size, lambda n: _provider(c, n))}
    rows = catalog.compare(size, fresh)
    out.emit(rows, render=lambda d: out.table(
        ["provider", "size", "vcpu", "ram GB", "monthly", "≈ USD", "price from"],
        [[r["title"], r.get("id", ""), r.get("vcpu", ""), f"{r['ram_gb']:g}" if "ram_gb" in r else "",
          f"{r['monthly']:.2f} {r['currency']}" if "monthly" in r else "", f"{r['usd']:.2f}" if "usd" in r else "",
          r.get("source") or r.get("error")] for r in d], title=f"{size} servers"))


@task
def estimate(c):
    """The monthly cost of the provisioned servers (dated catalog prices)."""
    from nself.providers import catalog
    from nself.remote import inventory

    out = runtime.output(c)
    rows = []
    for server in inventory.load(_root(c)).values():
        if not server.provider:
            continue
        price = next((s for s in catalog.sizes(server.provider) if s.id == server.size), None)
        rows.append({"server": server.name, "provider": server.provider, "size": server.size,
                     "monthly": price.monthly if price else None, "currency": price.currency if price else None,
                     "usd": catalog.in_usd(price.monthly, price.currency) if price else None,
                     "price_from": f"catalog {catalog.as_of(server.provider)}" if price else "unknown size"})
    total = round(sum(r["usd"] or 0 for r in rows), 2)
    out.emit({"servers": rows, "total_usd": total}, render=lambda d: (out.table(
        ["server", "provider", "size", "monthly", "price from"],
        [[r["server"], r["provider"], r["size"], "" if r["monthly"] is None else f"{r['monthly']:.2f} {r['currency']}",
          r["price_from"]] for r in d["servers"]]), out.say(f"total ≈ {total:.2f} USD/month")))


# --- managed Kubernetes ------------------------------------------------------------------

def _k8s_provider(c, name: str):
    """The driver, when nself drives this provider's managed Kubernetes; otherwise exit 8 saying
    what works instead."""
    from nself.providers import registry
    from nself.providers.base import NotSupported

    entry = registry.info(name)
    if entry.implemented and "k8s" in registry.driver_class(name).capabilities:
        return _provider(c, name)
    what = (f"{entry.title} has no managed Kubernetes" if not entry.managed_k8s
            else f"{entry.managed_k8s} ({entry.title}) is not built in nself yet")
    raise NotSupported(what, "run k3s on your own servers: nself cloud.provision … then "
                             "nself k8s.k3s.install --host NAME and k8s.k3s.kubeconfig --host NAME; "
                             "managed Kubernetes in nself: " + ", ".join(
                                 n for n in registry.implemented() if "k8s" in registry.driver_class(n).capabilities))


def _merge_kubeconfig(c, provider, cluster, context, kubeconfig) -> str:
    from nself.k8s import kubeconfig as kc

    name = context or f"{provider.name}-{cluster.name}"
    entries = kc.entries(provider.k8s_kubeconfig(cluster.id), name)
    runtime.output(c).add_secrets(v for v in entries["user"]["user"].values() if isinstance(v, str))
    kc.merge(kc.path(kubeconfig), entries)
    return name


@task(name="versions", positional=["provider"], help={"provider": "provider name"})
def k8s_versions(c, provider):
    """List the Kubernetes versions a provider offers, newest first."""
    out = runtime.output(c)
    versions = _k8s_provider(c, provider).k8s_versions()
    out.emit(versions, render=lambda d: [out.say(v) for v in d])


@task(name="list", positional=["provider"], help={"provider": "provider name"})
def k8s_list(c, provider):
    """List a provider's managed Kubernetes clusters."""
    out = runtime.output(c)
    rows = [k.to_dict() for k in _k8s_provider(c, provider).k8s_list()]
    out.emit(rows, render=lambda d: out.table(["id", "name", "status", "region", "version", "nodes"],
             [[r["id"], r["name"], r["status"], r["region"], r["version"], r["nodes"]] for r in d]))


@task(name="create", positional=["provider"], help={
    "provider": "provider name", "name": "cluster name", "region": "region id",
    "size": "node size: tiny … xlarge, or the provider's size id", "nodes": "how many nodes",
    "version": "Kubernetes version (cloud.k8s.versions), or latest",
    "context": "kubeconfig context name (default: <provider>-<name>)", "kubeconfig": "kubeconfig file to merge into",
    "timeout": "seconds to wait until it runs",
    "cluster_role": "aws: IAM role (name or ARN) for the control plane (default: nself-eks-cluster, made if missing)",
    "node_role": "aws: IAM role (name or ARN) for the nodes (default: nself-eks-node, made if missing)"})
def k8s_create(c, provider, name, region, size="medium", nodes=3, version="latest", context=None, kubeconfig=None,
               timeout=1800, cluster_role="", node_role=""):
    """Create a managed Kubernetes cluster and merge its kubeconfig.

    Waits until it runs; the context is <provider>-<name>. Asks unless --yes."""
    from nself.errors import UsageError
    from nself.plan import LocalRunner, emit
    from nself.providers import operations
    from nself.providers.base import ClusterRequest
    from nself.providers.plans import cluster_create_plan

    out = runtime.output(c)
    if (cluster_role or node_role) and provider != "aws":
        raise UsageError("--cluster-role and --node-role are for EKS (aws)", hint="leave them out")
    driver = _k8s_provider(c, provider)
    operations.check_name(driver, name)
    operations.check_region(driver, region)
    chosen = operations.resolve_size(driver, size, region)
    versions = driver.k8s_versions()
    if version != "latest" and version not in versions:
        raise UsageError(f"{driver.title} offers no Kubernetes {version!r}",
                         hint="versions: " + ", ".join(versions[:6]) + ", or latest")
    request = ClusterRequest(name, region, version, chosen.id, int(nodes), cluster_role, node_role)
    plan = cluster_create_plan(provider, request, chosen, lambda: driver.k8s_create(request))
    if runtime.options(c).dry_run:
        emit(out, plan)
        return
    if not runtime.confirm(c, _question(plan)):
        out.say("left as it is")
        return
    created = plan.run(LocalRunner())[0].value
    running = operations.wait_cluster(driver, created, float(timeout), out.say)
    context_name = _merge_kubeconfig(c, driver, running, context, kubeconfig)
    out.emit({**running.to_dict(), "context": context_name},
             render=lambda d: out.say(f"{name} is running; context {context_name} (now current)"))


@task(name="delete", positional=["provider", "name"], help={"provider": "provider name",
                                                           "name": "cluster name or id"})
def k8s_delete(c, provider, name):
    """Delete a managed Kubernetes cluster (asks unless --yes)."""
    from nself.plan import LocalRunner, emit
    from nself.providers import operations
    from nself.providers.plans import cluster_delete_plan

    out = runtime.output(c)
    driver = _k8s_provider(c, provider)
    cluster = operations.resolve_cluster(driver, name)
    plan = cluster_delete_plan(provider, cluster, lambda: driver.k8s_delete(cluster.id))
    if runtime.options(c).dry_run:
        emit(out, plan)
        return
    if not runtime.confirm(c, f"Delete {driver.title} cluster {cluster.name} ({cluster.id}) and its nodes?"):
        out.say("left as it is")
        return
    plan.run(LocalRunner())
    out.emit({"deleted": cluster.id, "name": cluster.name, "provider": provider},
             render=lambda d: out.say(f"deleted {cluster.name}"))


@task(name="kubeconfig", positional=["provider", "name"], help={
    "provider": "provider name", "name": "cluster name or id",
    "context": "context name (default: <provider>-<name>)", "kubeconfig": "kubeconfig file to merge into"})
def k8s_kubeconfig(c, provider, name, context=None, kubeconfig=None):
    """Fetch a managed cluster's kubeconfig and merge it as a context."""
    from nself.providers import operations

    out = runtime.output(c)
    driver = _k8s_provider(c, provider)
    cluster = operations.resolve_cluster(driver, name)
    context_name = _merge_kubeconfig(c, driver, cluster, context, kubeconfig)
    out.emit({"context": context_name, "cluster": cluster.id},
             render=lambda d: out.say(f"context {context_name} (now current)"))


@task(name="token", positional=["provider", "cluster"], help={
    "provider": "provider name (aws)", "cluster": "cluster id (<region>/<name>, as cloud.k8s.list shows)"})
def k8s_token(c, provider, cluster):
    """Print a fresh cluster token for a kubeconfig exec entry.

    EKS tokens are valid for 15 minutes; kubectl and nself ask again when one expires."""
    import json
    import sys

    driver = _provider(c, provider)
    # The credential plugin protocol: the ExecCredential alone on stdout, whatever --json says.
    sys.stdout.write(json.dumps(driver.k8s_token(cluster)) + "\n")


servers_ns = Collection("servers", add, remove, list_servers, status, exec, ssh, logs, reboot, destroy)
providers_ns = Collection("providers", providers_list, init, providers_status, regions, sizes)
providers_ns.add_task(remove_provider, name="remove")
costs_ns = Collection("costs", compare, estimate)
k8s_ns = Collection("k8s", k8s_versions, k8s_list, k8s_create, k8s_delete, k8s_kubeconfig, k8s_token)
ns = Collection("cloud", servers_ns, providers_ns, costs_ns, k8s_ns, provision)
ns.configure({"cloud": {}})
