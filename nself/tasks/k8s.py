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

ns = Collection("k8s", generate, context_ns)
ns.configure({"k8s": {"output": "k8s"}})
