"""k8s: turn the compose project into Kubernetes manifests (and, later, run them)."""
from __future__ import annotations

from invoke import Collection, task

from nself import runtime

_HELP = {
    "file": "compose file(s) to load instead of the project's (repeatable)",
    "profile": "compose profile to enable (repeatable; '*' enables all)",
    "output": "where to write: a folder (default k8s), or with --plain a file (default stdout)",
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
    if not plain:  # the configured folder; --plain defaults to stdout
        output = output or c.config.get("k8s", {}).get("output")
    project = runtime.load(c, files=file, profiles=profile)
    options = Options(output=output, namespace=namespace, include_secrets=include_secrets,
                      plain=plain, split=split, strict=strict, force=force,
                      network_policies=None if network_policies else False)
    report = run(project, options)
    text = report.pop("text", None)
    if text is not None and not out.json_mode:
        out.stdout.write(text if include_secrets else out.redact(text))
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
    if text is not None:
        report["text"] = text if include_secrets else out.redact(text)
    out.emit(report, render=render)


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
    from pathlib import Path

    from nself.k8s import operations as ops

    out = runtime.output(c)
    opts = runtime.options(c)
    project, tgt = _target(c, namespace, context, kubeconfig)
    objects = ops.render(project, tgt.namespace, Path(project.root / dir) if dir else None)
    secret_objects, missing = ops.secrets(project, tgt.namespace)
    for name in missing:
        out.warn(f"secret {name} has no value in the env files: left as it is in the cluster")
    report = ops.apply(tgt, objects, secret_objects, prune=prune, dry_run=opts.dry_run, wait=wait,
                       timeout=int(timeout), progress=out.verbose)
    report["requests"] = tgt.cluster.requests
    out.emit(report, render=lambda d: out.say(
        f"{'would apply' if d['dry_run'] else 'applied'} {len(d['applied'])} objects to {d['namespace']}"
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

ns = Collection("k8s", generate, apply, status, scale, delete, rollback, context_ns, rollout_ns)
ns.configure({"k8s": {"output": "k8s"}})
