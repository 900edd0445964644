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


ns = Collection("k8s", generate)
ns.configure({"k8s": {"output": "k8s"}})
