"""helm: a real chart from the compose project, and the helm command family."""
from __future__ import annotations

import json

from invoke import Collection, task

from nself import runtime

_ENV = "environment comes from --env (values.yaml + values-<env>.yaml)"


def _plan_or_run(c, *steps, title=None):
    """--dry-run prints the plan; otherwise run it and return each step's stdout."""
    from nself.helm.binary import HelmRunner
    from nself.plan import Plan, emit

    out = runtime.output(c)
    plan = Plan(title or steps[0].summary, list(steps))
    if runtime.options(c).dry_run:
        emit(out, plan)
        return None
    results = plan.run(HelmRunner(), on_step=lambda step: out.verbose(f"running: {step.display()}"))
    return [r.stdout for r in results]


def _target(c, **kw):
    from nself.helm.operations import target

    project = runtime.load(c)
    return project, target(project, **kw)


@task(help={"from_k8s": "build the chart from existing manifests in this folder instead of compose",
            "name": "chart name (default: helm.chart.name in nself.yml, else the project name)",
            "output": "folder that holds the charts (default charts)",
            "force": "overwrite chart files even if you edited them"})
def init(c, from_k8s=None, name=None, output="charts", force=False):
    """Create the Helm chart from the compose project (or from manifests)."""
    out = runtime.output(c)
    project = runtime.load(c)
    if from_k8s:
        from nself.helm.from_k8s import init_from_manifests

        report = init_from_manifests(project, project.root / from_k8s, name=name, output=output,
                                     force=force)
    else:
        from nself.helm.init import InitOptions
        from nself.helm.init import init as run

        report = run(project, InitOptions(name=name, output=output, force=force))
    out.emit(report, render=lambda d: out.say(
        f"{d['output']}: {len(d['written'])} written, {len(d['unchanged'])} unchanged, "
        f"{len(d['removed'])} removed"))


@task(iterable=["values"], help={"strict": "fail on lint warnings too",
                                 "values": "extra values file (repeatable); " + _ENV})
def lint(c, strict=False, values=None):
    """Lint the chart with helm (secret values supplied from the env files)."""
    from nself.helm import binary
    from nself.helm.operations import secret_values

    project, tgt = _target(c, extra_values=tuple(values or ()))
    step = binary.lint(tgt.chart_arg, tgt.values, strict, secret_values(project))
    results = _plan_or_run(c, step)
    if results is not None:
        runtime.output(c).say(results[0].rstrip())


@task(iterable=["set"], help={"set": "override a value, KEY=VALUE (repeatable)",
                              "output_dir": "write the rendered files here instead of stdout",
                              "name": "release name (default: helm.release, else the chart name)",
                              "namespace": "namespace (default: the environment's)"})
def template(c, set=None, output_dir=None, name=None, namespace=None):  # noqa: A002 - helm's flag
    """Render the chart for --env (manifests on stdout unless --output-dir)."""
    from nself.helm import binary
    from nself.helm.operations import secret_values

    project, tgt = _target(c, name=name, namespace=namespace)
    step = binary.template(tgt.release, tgt.chart_arg, tgt.namespace, tgt.values, set or (),
                          secret_values(project), output_dir)
    results = _plan_or_run(c, step)
    if results is not None:
        out = runtime.output(c)
        if out.json_mode:
            out.emit({"release": tgt.release, "namespace": tgt.namespace, "manifests": results[0]})
        else:
            out.stdout.write(out.redact(results[0]))


_INSTALL_HELP = {
    "name": "release name (default: helm.release in nself.yml, else the chart name)",
    "namespace": "namespace (default: the environment's)",
    "context": "kube context (default: environments.<env>.context)",
    "wait": "wait until the release is ready",
    "timeout": "seconds to wait",
    "atomic": "roll back if it fails (Helm 4: --rollback-on-failure)",
    "set": "override a value, KEY=VALUE (repeatable)",
}


@task(iterable=["set"], help=_INSTALL_HELP)
def install(c, name=None, namespace=None, context=None, wait=False, timeout=None, atomic=False, set=None):  # noqa: A002
    """Install the chart as a release for --env."""
    from nself.helm import binary
    from nself.helm.operations import secret_values

    project, tgt = _target(c, name=name, namespace=namespace, context=context)
    step = binary.install(tgt.release, tgt.chart_arg, tgt.namespace, tgt.values, set or (),
                         secret_values(project), wait=wait, timeout=timeout, atomic=atomic,
                         context=tgt.context)
    _report(c, _plan_or_run(c, step), f"installed {tgt.release} in {tgt.namespace}")


@task(iterable=["set"], help={**_INSTALL_HELP, "reuse_values": "keep the release's current values",
                              "reset_values": "reset to the chart's values",
                              "install": "install the release if it does not exist"})
def upgrade(c, name=None, namespace=None, context=None, wait=False, timeout=None, atomic=False,
            set=None, reuse_values=False, reset_values=False, install=False):  # noqa: A002
    """Upgrade the release for --env."""
    from nself.errors import UsageError
    from nself.helm import binary
    from nself.helm.operations import secret_values

    if reuse_values and reset_values:
        raise UsageError("--reuse-values and --reset-values contradict each other",
                         hint="pass one of them")
    project, tgt = _target(c, name=name, namespace=namespace, context=context)
    step = binary.install(tgt.release, tgt.chart_arg, tgt.namespace, tgt.values, set or (),
                         secret_values(project), wait=wait, timeout=timeout, atomic=atomic,
                         upgrade=True, install=install, reuse_values=reuse_values,
                         reset_values=reset_values, context=tgt.context)
    _report(c, _plan_or_run(c, step), f"upgraded {tgt.release} in {tgt.namespace}")


@task(help={"revision": "revision to roll back to (default: the previous one)",
            "name": _INSTALL_HELP["name"], "namespace": _INSTALL_HELP["namespace"],
            "context": _INSTALL_HELP["context"]})
def rollback(c, revision=0, name=None, namespace=None, context=None):
    """Roll the release back to a revision."""
    from nself.helm import binary

    _, tgt = _target(c, name=name, namespace=namespace, context=context)
    step = binary.rollback(tgt.release, tgt.namespace, int(revision) or None, context=tgt.context)
    _report(c, _plan_or_run(c, step), f"rolled {tgt.release} back")


rollback.optional_positionals = ("revision",)


@task(help={"keep_history": "keep the release history", "name": _INSTALL_HELP["name"],
            "namespace": _INSTALL_HELP["namespace"], "context": _INSTALL_HELP["context"]})
def uninstall(c, keep_history=False, name=None, namespace=None, context=None):
    """Uninstall the release (asks unless --yes)."""
    from nself.helm import binary

    _, tgt = _target(c, name=name, namespace=namespace, context=context)
    step = binary.uninstall(tgt.release, tgt.namespace, keep_history, context=tgt.context)
    if not runtime.options(c).dry_run and not runtime.confirm(
            c, f"Uninstall release {tgt.release} from {tgt.namespace}?"):
        runtime.output(c).say("left as it is")
        return
    _report(c, _plan_or_run(c, step), f"uninstalled {tgt.release}")


@task(name="list", help={"all": "include failed and pending releases",
                         "all_namespaces": "every namespace",
                         "namespace": _INSTALL_HELP["namespace"], "context": _INSTALL_HELP["context"]})
def list_(c, all=False, all_namespaces=False, namespace=None, context=None):  # noqa: A002
    """List releases."""
    from nself.helm import binary

    _, tgt = _target(c, namespace=namespace, context=context)
    step = binary.list_releases(tgt.namespace, all, all_namespaces, context=tgt.context)
    results = _plan_or_run(c, step)
    if results is not None:
        releases = json.loads(results[0] or "[]")
        out = runtime.output(c)
        out.emit(releases, render=lambda d: out.table(
            ["name", "namespace", "revision", "status", "chart", "app version"],
            [[r.get("name"), r.get("namespace"), r.get("revision"), r.get("status"), r.get("chart"),
              r.get("app_version")] for r in d]))


@task(help={"name": _INSTALL_HELP["name"], "namespace": _INSTALL_HELP["namespace"],
            "context": _INSTALL_HELP["context"]})
def status(c, name=None, namespace=None, context=None):
    """Show the release's status."""
    from nself.helm import binary

    _, tgt = _target(c, name=name, namespace=namespace, context=context)
    results = _plan_or_run(c, binary.status(tgt.release, tgt.namespace, context=tgt.context))
    if results is not None:
        doc = json.loads(results[0])
        out = runtime.output(c)
        out.emit(doc, render=lambda d: out.say(
            f"{d.get('name')}: {d.get('info', {}).get('status')} (revision {d.get('version')}, "
            f"namespace {d.get('namespace')})"))


@task(help={"max": "at most this many revisions", "name": _INSTALL_HELP["name"],
            "namespace": _INSTALL_HELP["namespace"], "context": _INSTALL_HELP["context"]})
def history(c, max=0, name=None, namespace=None, context=None):  # noqa: A002 - helm's flag
    """Show the release's revisions."""
    from nself.helm import binary

    _, tgt = _target(c, name=name, namespace=namespace, context=context)
    results = _plan_or_run(c, binary.history(tgt.release, tgt.namespace, int(max) or None,
                                              context=tgt.context))
    if results is not None:
        revisions = json.loads(results[0] or "[]")
        out = runtime.output(c)
        out.emit(revisions, render=lambda d: out.table(
            ["revision", "updated", "status", "chart", "description"],
            [[r.get("revision"), r.get("updated"), r.get("status"), r.get("chart"),
              r.get("description")] for r in d]))


@task(help={"version": "chart version (default: Chart.yaml's)",
            "app_version": "app version (default: Chart.yaml's)",
            "destination": "folder for the .tgz (default dist)"})
def package(c, version=None, app_version=None, destination="dist"):
    """Package the chart into a .tgz archive."""
    from nself.helm import binary

    project, tgt = _target(c)
    dest = project.root / destination
    if not runtime.options(c).dry_run:
        dest.mkdir(parents=True, exist_ok=True)
    step = binary.package(tgt.chart_arg, str(dest), version, app_version)
    results = _plan_or_run(c, step)
    if results is not None:
        archive = results[0].strip().rsplit(": ", 1)[-1]
        out = runtime.output(c)
        out.emit({"archive": archive}, render=lambda d: out.say(f"packaged {d['archive']}"))


def _report(c, results, message):
    if results is None:
        return
    out = runtime.output(c)
    out.emit({"result": message, "output": results[0]},
             render=lambda d: out.say(d["result"]))




# -- values ---------------------------------------------------------------------------------------
@task(default=True, help={"all": "the values merged for --env (values.yaml + values-<env>.yaml)"})
def show(c, all=False):  # noqa: A002 - the product plan's flag
    """Show the chart's values (or the computed values for --env)."""
    import yaml

    from nself.helm.values import merged

    _, tgt = _target(c)
    docs = [yaml.safe_load(open(path)) or {} for path in (tgt.values if all else tgt.values[:1])]
    values = merged(docs)
    out = runtime.output(c)
    out.emit(values, render=lambda d: out.say(yaml.safe_dump(d, sort_keys=False).rstrip()))


@task(help={"force": "overwrite values files even if you edited them"})
def generate(c, force=False):
    """Regenerate the values files from compose, nself.yml and the env files."""
    from nself.helm.init import InitOptions
    from nself.helm.init import init as run

    out = runtime.output(c)
    report = run(runtime.load(c), InitOptions(force=force))
    changed = [p for p in report["written"] if p.startswith("values")]
    out.emit({**report, "values_changed": changed},
             render=lambda d: out.say("values changed: " + (", ".join(changed) or "none")))


values_ns = Collection("values", show, generate)


# -- repositories -----------------------------------------------------------------------------------
@task(positional=["name", "url"], help={"name": "repository name", "url": "repository URL"})
def add(c, name, url):
    """Add a chart repository."""
    from nself.helm import binary

    _report(c, _plan_or_run(c, binary.repo("add", name, url)), f"added repository {name}")


@task(name="list", default=True)
def repo_list(c):
    """List chart repositories."""
    from nself.helm import binary

    results = _plan_or_run(c, binary.repo("list"))
    if results is not None:
        repos = json.loads(results[0] or "[]")
        out = runtime.output(c)
        out.emit(repos, render=lambda d: out.table(["name", "url"], [[r["name"], r["url"]] for r in d]))


@task
def update(c):
    """Refresh the index of every chart repository."""
    from nself.helm import binary

    _report(c, _plan_or_run(c, binary.repo("update")), "repositories updated")


@task(positional=["name"], help={"name": "repository name"})
def remove(c, name):
    """Remove a chart repository."""
    from nself.helm import binary

    _report(c, _plan_or_run(c, binary.repo("remove", name)), f"removed repository {name}")


repo_ns = Collection("repo", add, repo_list, update, remove)


@task(help={"registry": "oci://host/path, or an http(s) chart repository with an upload API "
                        "(default: helm.registry in nself.yml)",
            "plain_http": "talk plain HTTP to an OCI registry (local registries)",
            "version": "chart version to package (default: Chart.yaml's)"})
def push(c, registry=None, plain_http=False, version=None):
    """Package the chart and push it to a registry or chart repository."""
    from nself.errors import UsageError
    from nself.helm import binary
    from nself.helm.operations import archive_name
    from nself.helm.publish import upload_step

    project, tgt = _target(c)
    registry = registry or project.settings.section("helm", "registry") or \
        project.settings.section("helm", "chart", "registry")
    if not registry:
        raise UsageError("no registry to push to",
                         hint="pass --registry oci://host/charts, or set helm.registry in nself.yml")
    dist = project.root / "dist"
    archive = str(dist / archive_name(tgt.chart, version))
    steps = [binary.package(tgt.chart_arg, str(dist), version)]
    if registry.startswith("oci://"):
        steps.append(binary.push(archive, registry, plain_http))
    elif registry.startswith(("http://", "https://")):
        steps.append(upload_step(archive, registry))
    else:
        raise UsageError(f"unsupported registry {registry!r}",
                         hint="use oci://host/path or an http(s):// chart repository")
    if not runtime.options(c).dry_run:
        dist.mkdir(exist_ok=True)
    if _plan_or_run(c, *steps, title=f"push {tgt.chart.name} to {registry}") is None:
        return
    out = runtime.output(c)
    out.emit({"archive": archive, "registry": registry},
             render=lambda d: out.say(f"pushed {d['archive']} to {d['registry']}"))


ns = Collection("helm", init, lint, template, install, upgrade, rollback, uninstall, list_,
                status, history, package, push, values_ns, repo_ns)
ns.configure({"helm": {}})
