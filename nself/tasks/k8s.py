"""k8s: turn the compose project into Kubernetes manifests (and, later, run them)."""
from __future__ import annotations

from invoke import Collection, task

from nself import runtime
from nself.tasks import k8s_addons as addons

_HELP = {
    "file": "compose file(s) to load instead of the project's (repeatable)",
    "profile": "compose profile to enable (repeatable; '*' enables all)",
    "output": "where to write: a folder (default: kubernetes.generate.output, else k8s), or with "
              "--plain a file (default stdout)",
    "namespace": "namespace for --env (default: environments.<env>.namespace or <project>-<env>)",
    "include_secrets": "write secret values into the output (careful: keep it out of git)",
    "plain": "one multi-document YAML stream for --env instead of a kustomize tree",
    "split": "one file per object for --env instead of a kustomize tree",
    "strict": "treat warnings as errors (exit 3)",
    "force": "overwrite generated files even if you edited them",
    "network_policies": "one NetworkPolicy per compose network (--no-network-policies: none)",
}


@task(iterable=["file", "profile"], help=_HELP)
def generate(c, file=None, profile=None, output=None, namespace=None, include_secrets=False,
             plain=False, split=False, strict=False, force=False, network_policies=True):
    """Generate Kubernetes manifests (kustomize base + overlays) from compose."""
    from nself.k8s.generate import Options, generate as run

    out = runtime.output(c)
    project = runtime.load(c, files=file, profiles=profile)
    options = Options(output=output, namespace=namespace, include_secrets=include_secrets,
                      plain=plain, split=split, strict=strict, force=force,
                      network_policies=None if network_policies else False)
    report = run(project, options)
    text = report.pop("text", None)
    if text is not None and not out.json_mode:
        out.stdout.write(text)  # secret values are in it only with --include-secrets
        _warn_summary(out, report)
        return

    def render(doc):
        if doc["mode"] == "plain":
            out.say(f"wrote {doc['objects']} objects for {doc['environment']} to {doc['output']}")
        else:
            out.say(f"{doc['output']}: {len(doc['written'])} written, {len(doc['unchanged'])} "
                    f"unchanged, {len(doc['removed'])} removed ({doc['objects']} objects for "
                    f"{doc['environment']}, namespace {doc['namespace']})")
        _warn_summary(out, doc)
    if text is None:
        out.emit(report, render=render)
        return
    report = out.redact(report)  # warnings may quote values; the manifests hold none
    with out.verbatim():
        out.emit({**report, "text": text}, render=render)


def _warn_summary(out, doc) -> None:
    from nself.tasks.config import grouped

    warnings = doc["warnings"]
    if not warnings:
        return
    lines = grouped(warnings)
    for line in lines if out.verbosity in ("verbose", "debug") else lines[:10]:
        out.warn(line)
    if len(lines) > 10 and out.verbosity not in ("verbose", "debug"):
        out.warn(f"… {len(lines) - 10} more kinds of warning (--verbose shows all, --json lists them)")


_KUBECONFIG = "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)"


@task(default=True, help={"kubeconfig": _KUBECONFIG})
def show(c, kubeconfig=None):
    """Show the current kube context."""
    from nself.k8s import kubeconfig as kc

    out = runtime.output(c)
    current = next((x for x in kc.contexts(kc.load(kc.path(kubeconfig))) if x["current"]), None)
    out.emit(current or {}, render=lambda d: out.say(
        f"{d['name']} (cluster {d['cluster']}, namespace {d['namespace']})" if d else "no current context"))


@task(name="list", help={"kubeconfig": _KUBECONFIG})
def list_contexts(c, kubeconfig=None):
    """List the kube contexts."""
    from nself.k8s import kubeconfig as kc

    out = runtime.output(c)
    rows = kc.contexts(kc.load(kc.path(kubeconfig)))
    out.emit(rows, render=lambda d: out.table(
        ["", "context", "cluster", "user", "namespace"],
        [["*" if r["current"] else "", r["name"], r["cluster"], r["user"], r["namespace"]] for r in d]))


@task(positional=["name"], help={"name": "context to switch to", "kubeconfig": _KUBECONFIG})
def use(c, name, kubeconfig=None):
    """Switch the current kube context."""
    from nself.k8s import kubeconfig as kc

    out = runtime.output(c)
    out.emit(kc.use(kc.path(kubeconfig), name), render=lambda d: out.say(f"now using {d['current']}"))


@task(help={"name": "context name", "server": "API server URL, e.g. https://203.0.113.10:6443",
            "token_env": "environment variable holding the bearer token (never a flag: it would "
                         "show in the shell history and process list)",
            "namespace": "default namespace of the context",
            "certificate_authority": "CA certificate file of the cluster",
            "insecure": "skip TLS verification (test clusters only)",
            "use": "switch to it", "force": "replace an existing context of that name",
            "kubeconfig": _KUBECONFIG})
def add(c, name, server, token_env=None, namespace=None, certificate_authority=None, insecure=False,
        use=False, force=False, kubeconfig=None):  # noqa: A002
    """Add a kube context (cluster, user, context) to the kubeconfig."""
    import os

    from nself.errors import UsageError
    from nself.k8s import kubeconfig as kc

    token = None
    if token_env:
        token = os.environ.get(token_env)
        if not token:
            raise UsageError(f"${token_env} is empty or unset", hint=f"export {token_env}=… first")
    out = runtime.output(c)
    out.add_secrets([token] if token else [])
    report = kc.add(kc.path(kubeconfig), name, server, token=token, namespace=namespace,
                    certificate_authority=certificate_authority, insecure=insecure, use_it=use, force=force)
    out.emit(report, render=lambda d: out.say(f"added {d['added']} (current: {d['current']})"))


@task(name="delete", positional=["name"], help={"name": "context to delete", "kubeconfig": _KUBECONFIG})
def delete_context(c, name, kubeconfig=None):
    """Delete a kube context (asks unless --yes)."""
    from nself.k8s import kubeconfig as kc

    out = runtime.output(c)
    if not runtime.confirm(c, f"Delete context {name}?"):
        out.say("left as it is")
        return
    out.emit(kc.delete(kc.path(kubeconfig), name), render=lambda d: out.say(f"deleted {d['deleted']}"))


context_ns = Collection("context", show, list_contexts, use, add, delete_context)

_CLUSTER = {"context": "kube context (default: environments.<env>.context, else the current one)",
            "namespace": "namespace (default: the environment's)",
            "kubeconfig": _KUBECONFIG}


def _dry(c, plan) -> bool:
    """Under --dry-run: print the plan (or emit it with --json) and say so."""
    from nself.plan import emit

    if runtime.options(c).dry_run:
        emit(runtime.output(c), plan)
        return True
    return False


def _target(c, namespace=None, context=None, kubeconfig=None):
    from nself.k8s.operations import target

    project = runtime.load(c)
    return project, target(project, namespace=namespace, context=context, kubeconfig=kubeconfig)


@task(help={**_CLUSTER, "dir": "apply this folder (a kustomize overlay or plain manifests) instead of "
                               "k8s/overlays/<env>",
            "wait": "follow the rollouts (watch API) until everything is ready",
            "timeout": "seconds to wait with --wait",
            "prune": "delete objects nself applied to this environment before that are gone now"})
def apply(c, dir=None, wait=False, timeout=300, prune=False, namespace=None, context=None,  # noqa: A002
          kubeconfig=None):
    """Apply --env to the cluster: Secrets from the env files, then objects."""
    import functools
    from pathlib import Path

    from nself.k8s import operations as ops

    out = runtime.output(c)
    project = runtime.load(c)
    namespace = namespace or project.namespace
    # The cluster is reached only when a step runs (or --prune asks what is there): a dry run
    # without --prune needs no cluster at all.
    connect = functools.cache(lambda: ops.target(project, namespace=namespace, context=context,
                                                 kubeconfig=kubeconfig))
    objects = ops.render(project, namespace, Path(project.root / dir) if dir else None)
    secret_objects, missing = ops.secrets(project, namespace)
    for name in missing:
        out.warn(f"secret {name} has no value in the env files: left as it is in the cluster")
    plan = ops.apply_plan(namespace, objects, secret_objects, lambda: connect().cluster,
                          ops.pruning(connect()) if prune else [])
    if _dry(c, plan):
        return
    report = {"namespace": namespace, **ops.apply(plan, progress=out.verbose), "dry_run": False}
    tgt = connect()
    if wait:
        report["ready"] = ops.wait_ready(tgt, {o["metadata"]["name"] for o in objects if o["kind"] in ops.WORKLOADS},
                                         int(timeout))
    report["requests"] = tgt.cluster.requests
    out.emit(report, render=lambda d: out.say(
        f"applied {len(d['applied'])} objects to {d['namespace']}"
        + (f", pruned {len(d['pruned'])}" if d["pruned"] else "")
        + (", all ready" if d.get("ready") is not None else "")))


@task(help={**_CLUSTER, "service": "only this service", "watch": "keep watching until Ctrl-C"})
def status(c, service=None, watch=False, namespace=None, context=None, kubeconfig=None):
    """Show desired/ready/updated/available per service."""
    from nself.k8s import operations as ops

    out = runtime.output(c)
    _, tgt = _target(c, namespace, context, kubeconfig)

    def show(rows):
        out.table(["service", "kind", "desired", "ready", "updated", "available", "images"],
                  [[r["service"], r["kind"], r["desired"], r["ready"], r["updated"], r["available"],
                    " ".join(r["images"])] for r in rows])
    rows = ops.status(tgt, service)
    if not watch:
        out.emit(rows, render=show)
        return
    from nself.k8s.resources import BY_KIND

    (out.event if out.json_mode else show)(rows)
    try:
        while True:
            for _ in tgt.cluster.watch(BY_KIND[("apps/v1", "Deployment")], tgt.namespace,
                                       selector=tgt.selector, timeout=60):
                (out.event if out.json_mode else show)(ops.status(tgt, service))
    except KeyboardInterrupt:
        return


status.optional_positionals = ("service",)


@task(positional=["service", "replicas"], help={**_CLUSTER, "service": "service to scale",
                                                "replicas": "pod count (0 allowed)"})
def scale(c, service, replicas, namespace=None, context=None, kubeconfig=None):
    """Scale a service to N replicas."""
    from nself.errors import UsageError
    from nself.k8s import operations as ops

    if not str(replicas).isdigit():
        raise UsageError(f"replicas must be 0 or more, not {replicas!r}", hint=f"nself k8s.scale {service} 3")
    out = runtime.output(c)
    _, tgt = _target(c, namespace, context, kubeconfig)
    report = ops.scale(tgt, service, int(replicas), runtime.options(c).dry_run)
    out.emit(report, render=lambda d: out.say(f"{d['service']}: {d['was']} → {d['replicas']} replicas"))


@task(help=_CLUSTER)
def delete(c, namespace=None, context=None, kubeconfig=None):
    """Delete what nself applied for --env (asks unless --yes)."""
    from nself.k8s import operations as ops

    out = runtime.output(c)
    project, tgt = _target(c, namespace, context, kubeconfig)
    dry = runtime.options(c).dry_run
    if not dry and not runtime.confirm(c, f"Delete {project.name}'s {project.env} objects from "
                                          f"{tgt.namespace}?"):
        out.say("left as it is")
        return
    deleted = ops.delete(tgt, dry)
    out.emit({"deleted": deleted, "dry_run": dry},
             render=lambda d: out.say(f"{'would delete' if dry else 'deleted'} {len(deleted)} objects"))


@task(help={**_CLUSTER, "service": "service to roll back", "to": "revision (default: the previous one)",
            "all": "every Deployment of the environment"})
def rollback(c, service=None, to=0, all=False, namespace=None, context=None, kubeconfig=None):  # noqa: A002
    """Roll a service (or --all) back to a revision."""
    from nself.errors import UsageError
    from nself.k8s import operations as ops

    out = runtime.output(c)
    _, tgt = _target(c, namespace, context, kubeconfig)
    if not service and not all:
        raise UsageError("which service?", hint="nself k8s.rollback SERVICE [--to N], or --all")
    names = [r["service"] for r in ops.status(tgt) if r["kind"] == "Deployment"] if all else [service]
    reports = [ops.rollback(tgt, name, int(to) or None, runtime.options(c).dry_run) for name in names]
    out.emit(reports, render=lambda d: [out.say(f"{r['service']}: revision {r['from']} → {r['to']}")
                                        for r in d])


rollback.optional_positionals = ("service",)


@task(help={**_CLUSTER, "service": "only this service's pods", "all_namespaces": "every namespace",
            "wide": "show node, IP and images", "watch": "keep watching until Ctrl-C"})
def pods(c, service=None, all_namespaces=False, wide=False, watch=False, namespace=None, context=None,
         kubeconfig=None):
    """List pods (of a service)."""
    from nself.k8s import operations as ops
    from nself.k8s.resources import BY_KIND

    out = runtime.output(c)
    _, tgt = _target(c, namespace, context, kubeconfig)
    columns = ["name", "ready", "status", "restarts"] + (["node", "ip", "images"] if wide else [])
    if all_namespaces:
        columns = ["namespace", *columns]

    def show(rows):
        out.table(columns, [[r[k] if k != "images" else " ".join(r[k]) for k in columns] for r in rows])
    rows = ops.pods(tgt, service, all_namespaces)
    if not watch:
        out.emit(rows, render=show)
        return
    (out.event if out.json_mode else show)(rows)
    try:
        while True:
            for _ in tgt.cluster.watch(BY_KIND[("v1", "Pod")], None if all_namespaces else tgt.namespace,
                                       timeout=60):
                (out.event if out.json_mode else show)(ops.pods(tgt, service, all_namespaces))
    except KeyboardInterrupt:
        return


pods.optional_positionals = ("service",)


@task(help={**_CLUSTER, "service": "only this service's events", "watch": "keep watching until Ctrl-C"})
def events(c, service=None, watch=False, namespace=None, context=None, kubeconfig=None):
    """Show recent events (of a service)."""
    from nself.k8s import operations as ops
    from nself.k8s.resources import BY_KIND

    out = runtime.output(c)
    _, tgt = _target(c, namespace, context, kubeconfig)

    def show(rows):
        out.table(["time", "type", "reason", "object", "message"],
                  [[r["time"], r["type"], r["reason"], r["object"], r["message"]] for r in rows])
    if not watch:
        out.emit(ops.events(tgt, service), render=show)
        return
    try:
        while True:
            for event in tgt.cluster.watch(BY_KIND[("v1", "Event")], tgt.namespace, timeout=60):
                obj = event.get("object", {})
                involved = obj.get("involvedObject", {}).get("name", "")
                if service and not (involved == service or involved.startswith(f"{service}-")):
                    continue
                row = {"type": obj.get("type"), "reason": obj.get("reason"),
                       "object": f"{obj.get('involvedObject', {}).get('kind')}/{involved}",
                       "message": obj.get("message")}
                out.event(row) if out.json_mode else out.say(
                    f"{row['type']:8} {row['reason']:16} {row['object']:32} {row['message']}")
    except KeyboardInterrupt:
        return


events.optional_positionals = ("service",)


@task(positional=["kind", "name"], help={**_CLUSTER, "kind": "deployment, pod, service, …",
                                         "name": "object name"})
def describe(c, kind, name, namespace=None, context=None, kubeconfig=None):
    """Describe an object and its events."""
    import yaml

    from nself.k8s import operations as ops

    out = runtime.output(c)
    _, tgt = _target(c, namespace, context, kubeconfig)
    doc = ops.describe(tgt, kind, name)

    def render(d):
        out.say(yaml.safe_dump(d["object"], sort_keys=False).rstrip())
        out.say("events:" if d["events"] else "events: none")
        for e in d["events"]:
            out.say(f"  {e['time']} {e['type']} {e['reason']}: {e['message']}")
    out.emit(doc, render=render)


@task(positional=["service"], help={**_CLUSTER, "service": "service whose pod to read",
                                    "follow": "keep streaming until Ctrl-C", "tail": "last N lines",
                                    "previous": "the previous (crashed) container",
                                    "all": "every container of the pod", "since": "e.g. 10m, 1h",
                                    "container": "this container"})
def logs(c, service, follow=False, tail=-1, previous=False, all=False, since=None, container=None,  # noqa: A002
         namespace=None, context=None, kubeconfig=None):
    """Show a service's pod logs."""
    from nself.k8s import operations as ops

    out = runtime.output(c)
    _, tgt = _target(c, namespace, context, kubeconfig)
    pod = ops.pod_for(tgt, service)
    containers = [container]
    if all:
        from nself.k8s.resources import BY_KIND

        spec = tgt.cluster.get(BY_KIND[("v1", "Pod")], tgt.namespace, pod)["spec"]
        containers = [x["name"] for x in spec.get("initContainers", []) + spec["containers"]]
    try:
        for name in containers:
            query = ops.log_query(name, int(tail), previous, since, follow and len(containers) == 1)
            result = ops.logs(tgt, pod, query)
            prefix = f"[{name}] " if all else ""
            if isinstance(result, str):
                for line in result.splitlines():
                    out.say(prefix + line)
            else:
                for line in result:
                    out.stdout.write(out.redact(prefix + line))
                    out.stdout.flush()
    except KeyboardInterrupt:
        return


def _kubectl(c, argv: list[str], interactive: bool = False) -> None:
    import shutil
    import subprocess

    from nself.errors import Exit, NselfError
    from nself.plan import Plan, run

    if _dry(c, Plan("run kubectl", [run("run kubectl (interactive)" if interactive else "run kubectl", *argv)])):
        return
    binary = shutil.which("kubectl")
    if not binary:
        raise NselfError("kubectl is needed for exec, shell and port-forward", code=Exit.NOT_FOUND,
                         hint="install kubectl (https://kubernetes.io/docs/tasks/tools/)")
    code = subprocess.call([binary, *argv[1:]]) if interactive else \
        subprocess.run([binary, *argv[1:]]).returncode
    if code:
        raise NselfError(f"kubectl exited {code}", code=Exit.KUBERNETES if code != 130 else 130,
                         hint="see its message above")


@task(positional=["service"], help={**_CLUSTER, "service": "service whose pod to run in",
                                    "cmd": "the command (or give it after `--`)",
                                    "it": "interactive, with a terminal", "container": "this container"})
def exec(c, service, cmd=None, it=False, container=None, namespace=None, context=None, kubeconfig=None):  # noqa: A001
    """Run a command in a service's pod: nself k8s.exec SERVICE -- CMD."""
    from nself.errors import UsageError
    from nself.k8s import operations as ops

    import shlex

    command = list(runtime.options(c).remainder) or (shlex.split(cmd) if cmd else [])
    if not command:
        raise UsageError("which command?", hint=f"nself k8s.exec {service} -- psql -U postgres")
    project, tgt = _target(c, namespace, context, kubeconfig)
    pod = ops.pod_for(tgt, service)
    argv = ["exec", *(["-it"] if it else []), pod, *(["-c", container] if container else []), "--", *command]
    _kubectl(c, ops.kubectl_command(tgt.namespace, _context(project, context), *argv), interactive=it)


@task(positional=["service"], help={**_CLUSTER, "service": "service whose pod to open",
                                    "container": "this container", "shell": "the shell to start"})
def shell(c, service, container=None, shell="sh", namespace=None, context=None, kubeconfig=None):
    """Open an interactive shell in a service's pod."""
    from nself.k8s import operations as ops

    project, tgt = _target(c, namespace, context, kubeconfig)
    pod = ops.pod_for(tgt, service)
    argv = ["exec", "-it", pod, *(["-c", container] if container else []), "--", shell]
    _kubectl(c, ops.kubectl_command(tgt.namespace, _context(project, context), *argv), interactive=True)


@task(name="port-forward", help={**_CLUSTER, "service": "service to reach",
                                 "ports": "LOCAL[:REMOTE] (default: the service's first port)",
                                 "all": "every service's ports, on the same local numbers"})
def port_forward(c, service=None, ports=None, all=False, namespace=None, context=None, kubeconfig=None):  # noqa: A002
    """Forward local ports to a service (or --all)."""
    from nself.errors import UsageError
    from nself.k8s import operations as ops
    from nself.k8s.resources import BY_KIND

    project, tgt = _target(c, namespace, context, kubeconfig)
    services = tgt.cluster.list(BY_KIND[("v1", "Service")], tgt.namespace, tgt.selector)
    if all:
        pairs = [(s["metadata"]["name"], f"{p['port']}") for s in services for p in s["spec"].get("ports", [])[:1]]
    elif service:
        found = next((s for s in services if s["metadata"]["name"] == service), None)
        if found is None and not ports:
            raise UsageError(f"{service} has no Service to forward to", hint="pass LOCAL:REMOTE ports")
        pairs = [(service, ports or str(found["spec"]["ports"][0]["port"]))]
    else:
        raise UsageError("which service?", hint="nself k8s.port-forward postgres 5432, or --all")
    # kubectl forwards one target per process: one process per service, stopped together.
    commands = [ops.kubectl_command(tgt.namespace, _context(project, context), "port-forward",
                                    f"service/{name}", port) for name, port in pairs]
    _kubectl_all(c, commands)


port_forward.optional_positionals = ("service", "ports")


def _kubectl_all(c, commands: list[list[str]]) -> None:
    import shutil
    import subprocess

    from nself.errors import Exit, NselfError
    from nself.plan import Plan, run

    steps = [run(f"forward {argv[-2]} {argv[-1]}", *argv) for argv in commands]
    if _dry(c, Plan("forward ports (one kubectl each, stopped together)", steps)):
        return
    binary = shutil.which("kubectl")
    if not binary:
        raise NselfError("kubectl is needed for port-forward", code=Exit.NOT_FOUND,
                         hint="install kubectl (https://kubernetes.io/docs/tasks/tools/)")
    processes = [subprocess.Popen([binary, *argv[1:]]) for argv in commands]
    try:
        codes = [p.wait() for p in processes]
    except KeyboardInterrupt:
        for p in processes:
            p.terminate()
        return
    if any(codes):
        raise NselfError("kubectl port-forward stopped with an error", code=Exit.KUBERNETES,
                         hint="see its message above")


def _context(project, context):
    return context or project.settings.env_target(project.env).get("context")


def _rollout_task(action: str, doc: str):
    def run(c, service=None, namespace=None, context=None, kubeconfig=None):
        import datetime

        from nself.errors import UsageError
        from nself.k8s import operations as ops

        out = runtime.output(c)
        _, tgt = _target(c, namespace, context, kubeconfig)
        if action == "status":
            rows = ops.status(tgt, service)
            out.emit(rows, render=lambda d: [out.say(
                f"{r['service']}: {'ready' if r['ready_state'] else 'rolling out'} "
                f"({r['ready']}/{r['desired']})") for r in d])
            return
        if not service:
            raise UsageError(f"which service to {action}?", hint=f"nself k8s.rollout.{action} SERVICE")
        if action == "restart":
            now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            report = ops.restart(tgt, service, now)
        elif action in ("pause", "resume"):
            report = ops.pause(tgt, service, action == "pause")
        elif action == "history":
            rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in ops.history(tgt, service)]
            out.emit(rows, render=lambda d: out.table(["revision", "replicaset", "images", "restarted"],
                                                      [[r["revision"], r["replicaset"], " ".join(r["images"]),
                                                        r["change"]] for r in d]))
            return
        else:  # undo
            report = ops.rollback(tgt, service, None, runtime.options(c).dry_run)
        out.emit(report, render=lambda d: out.say(f"{service}: {action} done"))

    run.__doc__ = doc   # before `task()`: Invoke reads the help from the body's docstring
    made = task(name=action, help={**_CLUSTER, "service": "service name"})(run)
    made.optional_positionals = ("service",)
    return made


rollout_ns = Collection("rollout", *(
    _rollout_task(action, doc) for action, doc in (
        ("status", "Show whether services finished rolling out."),
        ("restart", "Restart a service's pods (a new rollout)."),
        ("pause", "Pause a Deployment's rollout."),
        ("resume", "Resume a paused Deployment."),
        ("history", "List a Deployment's revisions."),
        ("undo", "Go back to the previous revision."))))
rollout_ns.default = "status"

# -- k3s over SSH -------------------------------------------------------------------------------------
def _k3s_host(c, name):
    from nself.remote import inventory
    from nself.tasks.cloud import _root

    root = _root(c)
    servers = inventory.load(root)
    return root, servers, inventory.get(servers, name)


def _installer(c) -> str:
    return c.config.get("k8s", {}).get("k3s_installer") or "https://get.k3s.io"


def _run_steps(root, servers, title, *steps):
    """Some steps of a plan, all on one server, through the one SSH path; their stdout."""
    from nself.plan import Plan
    from nself.remote.executor import run_on

    return [r.stdout for r in run_on(root, servers, Plan(title, list(steps)))]


@task(help={"host": "inventory server to install on", "server": "install a server (the default)",
            "agent": "install an agent (see k8s.k3s.join to join one to a server)",
            "version": "k3s version, e.g. v1.31.4+k3s1 (default: the stable channel)"})
def install(c, host, server=False, agent=False, version=None):
    """Install k3s on a server of the inventory (a no-op if it is there)."""
    from nself.errors import UsageError
    from nself.remote import k3s

    if server and agent:
        raise UsageError("--server and --agent contradict each other", hint="pass one of them")
    out = runtime.output(c)
    root, servers, target = _k3s_host(c, host)
    plan = k3s.install_plan(host, target.host, _installer(c), "agent" if agent else "server", version)
    if _dry(c, plan):
        return
    check, setup = plan.steps
    present = _run_steps(root, servers, plan.title, check)[0].strip()
    if present:
        out.emit({"host": host, "installed": False, "version": present},
                 render=lambda d: out.say(f"{host}: k3s is already installed ({present}); nothing to do"))
        return
    _run_steps(root, servers, plan.title, setup)
    out.emit({"host": host, "installed": True}, render=lambda d: out.say(f"{host}: k3s installed"))


@task(positional=["server_name"], help={"server_name": "the k3s server to join",
                                        "host": "inventory server that becomes an agent",
                                        "version": "k3s version (default: the stable channel)"})
def join(c, server_name, host, version=None):
    """Join a server of the inventory to a k3s server as an agent."""
    import dataclasses

    from nself.remote import k3s

    out = runtime.output(c)
    root, servers, agent = _k3s_host(c, host)
    _, _, leader = _k3s_host(c, server_name)
    plan = k3s.join_plan(server_name, leader.host, host, _installer(c), version)
    if _dry(c, plan):
        return
    read_token, check, folder, token_file, setup = plan.steps
    if _run_steps(root, servers, plan.title, check)[0].strip():
        out.emit({"host": host, "joined": False},
                 render=lambda d: out.say(f"{host}: k3s is already installed there; nothing to do"))
        return
    token = _run_steps(root, servers, plan.title, read_token)[0].strip()
    out.add_secrets([token])
    _run_steps(root, servers, plan.title, folder, dataclasses.replace(token_file, data=token + "\n"), setup)
    url = f"https://{leader.host}:6443"
    out.emit({"host": host, "joined": server_name, "server_url": url},
             render=lambda d: out.say(f"{host} joined {server_name} ({url})"))


@task(help={"host": "the k3s server", "context": "context name (default: k3s-<host>)",
            "kubeconfig": _KUBECONFIG})
def kubeconfig(c, host, context=None, kubeconfig=None):
    """Fetch a k3s server's kubeconfig and merge it in as a named context."""
    from nself.k8s import kubeconfig as kc
    from nself.remote import k3s

    out = runtime.output(c)
    root, servers, target = _k3s_host(c, host)
    name = context or f"k3s-{host}"
    path = kc.path(kubeconfig)
    plan = k3s.kubeconfig_plan(host, name, str(path))
    if _dry(c, plan):
        return
    text = _run_steps(root, servers, plan.title, plan.steps[0])[0]
    entries = k3s.kubeconfig_for(text, target.host, name)
    out.add_secrets([v for v in entries["user"]["user"].values() if isinstance(v, str)])
    kc.merge(path, entries)                           # the plan's second step
    out.emit({"context": name, "server": entries["cluster"]["cluster"]["server"]},
             render=lambda d: out.say(f"context {name} → {d['server']} (now current)"))


@task(help={"host": "inventory server", "version": "the k3s version to move to",
            "agent": "the host is an agent"})
def upgrade(c, host, version, agent=False):
    """Upgrade k3s on a server of the inventory to a version."""
    from nself.remote import k3s

    out = runtime.output(c)
    root, servers, target = _k3s_host(c, host)
    plan = k3s.upgrade_plan(host, target.host, _installer(c), "agent" if agent else "server", version)
    if _dry(c, plan):
        return
    _run_steps(root, servers, plan.title, *plan.steps)
    out.emit({"host": host, "version": version}, render=lambda d: out.say(f"{host}: k3s {version}"))


@task(help={"host": "inventory server"})
def uninstall(c, host):
    """Uninstall k3s from a server of the inventory (asks unless --yes)."""
    from nself.remote import k3s

    out = runtime.output(c)
    root, servers, _ = _k3s_host(c, host)
    plan = k3s.uninstall_plan(host)
    if _dry(c, plan):
        return
    if not runtime.confirm(c, f"Uninstall k3s from {host}?"):
        out.say("left as it is")
        return
    said = _run_steps(root, servers, plan.title, *plan.steps)[0].strip()
    out.emit({"host": host, "output": said}, render=lambda d: out.say(f"{host}: {said or 'k3s uninstalled'}"))


k3s_ns = Collection("k3s", install, join, kubeconfig, upgrade, uninstall)

ns = Collection("k8s", generate, apply, status, pods, events, describe, logs, exec, shell, port_forward,
                scale, delete, rollback, context_ns, rollout_ns, k3s_ns, addons.ingress_ns, addons.mesh_ns)
# Task defaults only: how manifests are generated lives in nself.yml's kubernetes.generate.
ns.configure({"k8s": {"k3s_installer": "https://get.k3s.io"}})
