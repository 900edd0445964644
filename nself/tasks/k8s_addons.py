"""k8s.ingress and k8s.mesh: ingress controllers and service meshes from their official Helm
charts at pinned versions (`--dry-run` prints the helm commands), and what the cluster runs."""
from __future__ import annotations

from invoke import Collection, task

from nself import runtime

_CLUSTER = {"context": "kube context (default: environments.<env>.context, else the current one)",
            "kubeconfig": "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)"}
_TIMEOUT = "seconds helm waits for each chart's workloads"


def _where(c, context, kubeconfig) -> tuple[str | None, str | None]:
    """(kube context, kubeconfig) for helm: the flags, else the environment's settings."""
    project = runtime.load(c)
    spec = project.settings.env_target(project.env) if project.settings is not None else {}
    return context or spec.get("context"), kubeconfig or spec.get("kubeconfig")


def _cluster(c, context, kubeconfig, namespace=None):
    from nself.k8s.operations import target

    project = runtime.load(c)
    return target(project, namespace=namespace, context=context, kubeconfig=kubeconfig)


def _install(c, plan) -> None:
    from nself.helm.binary import HelmRunner
    from nself.plan import emit

    out = runtime.output(c)
    if runtime.options(c).dry_run:
        emit(out, plan)
        return
    results = plan.run(HelmRunner(), on_step=lambda s: out.verbose(s.summary))
    out.emit({"title": plan.title, "steps": [r.to_dict() for r in results]},
             render=lambda d: out.say(f"{plan.title}: done"))


@task(positional=["controller"], help={**_CLUSTER, "controller": "nginx, traefik, kong, contour or istio-gateway",
                                       "timeout": _TIMEOUT})
def install(c, controller, context=None, kubeconfig=None, timeout=300):
    """Install an ingress controller from its official chart (pinned version)."""
    from nself.k8s import addons

    chosen = addons.choose(addons.CONTROLLERS, controller, "ingress controller")
    _install(c, addons.install_plan(chosen, *_where(c, context, kubeconfig), int(timeout)))


@task(help=_CLUSTER)
def status(c, context=None, kubeconfig=None):
    """Show which ingress controllers run, their readiness and IngressClasses."""
    from nself.k8s import addons

    out = runtime.output(c)
    rows = addons.ingress_status(_cluster(c, context, kubeconfig).cluster)
    out.emit({"controllers": rows}, render=lambda d: out.table(
        ["controller", "namespace", "state", "ready", "ingress class"],
        [[r["controller"], r["namespace"], r["state"],
          ", ".join(f"{w['name']} {w['ready']}/{w['desired']}" for w in r["workloads"]),
          (r["ingress_class"] or "") + (" (default)" if r["default"] else "")] for r in d["controllers"]]))


@task(name="list", help={**_CLUSTER, "namespace": "only this namespace (default: the environment's)",
                         "all_namespaces": "every namespace"})
def list_rules(c, namespace=None, all_namespaces=False, context=None, kubeconfig=None):
    """List the Ingress rules: host, path, service, class, TLS, address."""
    from nself.k8s import addons

    out = runtime.output(c)
    tgt = _cluster(c, context, kubeconfig, namespace)
    rows = addons.ingress_rules(tgt.cluster, None if all_namespaces else tgt.namespace)
    out.emit({"rules": rows}, render=lambda d: out.table(
        ["namespace", "ingress", "class", "host", "path", "service", "tls", "address"],
        [[r["namespace"], r["ingress"], r["class"] or "", r["host"], r["path"], r["service"],
          "yes" if r["tls"] else "", r["address"]] for r in d["rules"]]) if d["rules"] else out.say("no Ingress rules"))


@task(positional=["mesh"], name="install",
      help={**_CLUSTER, "mesh": "istio or linkerd", "timeout": _TIMEOUT,
            "identity_dir": "linkerd: a folder with ca.crt, issuer.crt, issuer.key (its mTLS identity)"})
def mesh_install(c, mesh, identity_dir=None, context=None, kubeconfig=None, timeout=300):
    """Install a service mesh from its official charts (pinned versions)."""
    from pathlib import Path

    from nself.k8s import addons

    chosen = addons.choose(addons.MESHES, mesh, "service mesh")
    _install(c, addons.install_plan(chosen, *_where(c, context, kubeconfig), int(timeout),
                                    Path(identity_dir) if identity_dir else None))


@task(name="status", help={**_CLUSTER, "namespace": "the namespace whose workloads to check (default: the env's)"})
def mesh_status(c, namespace=None, context=None, kubeconfig=None):
    """Show each mesh's control plane and which workloads carry its proxy."""
    from nself.k8s import addons

    out = runtime.output(c)
    tgt = _cluster(c, context, kubeconfig, namespace)
    report = addons.mesh_status(tgt.cluster, tgt.namespace)

    def render(d):
        out.table(["mesh", "namespace", "state", "ready"],
                  [[m["mesh"], m["namespace"], m["state"],
                    ", ".join(f"{w['name']} {w['ready']}/{w['desired']}" for w in m["workloads"])]
                   for m in d["meshes"]])
        out.say(f"injected in {d['namespace']}: " + (", ".join(f"{i['workload']} ({i['mesh']})" for i in d["injected"])
                                                    or "none"))
    out.emit(report, render=render)


@task(positional=["service"], help={**_CLUSTER, "service": "the Deployment/StatefulSet/DaemonSet",
                                    "mesh": "istio or linkerd (default: the one installed)",
                                    "namespace": "namespace (default: the environment's)"})
def inject(c, service, mesh=None, namespace=None, context=None, kubeconfig=None):
    """Add the mesh's proxy to a service's pods (its documented switch)."""
    from nself.k8s import addons
    from nself.plan import LocalRunner, emit

    out = runtime.output(c)
    tgt = _cluster(c, context, kubeconfig, namespace)
    chosen = addons.choose(addons.MESHES, mesh, "service mesh").name if mesh else \
        addons.installed_mesh(addons.mesh_status(tgt.cluster, tgt.namespace))
    kind = addons.find_workload(tgt.cluster, tgt.namespace, service)
    plan = addons.inject_plan(lambda: tgt.cluster, tgt.namespace, kind, service, chosen)
    if runtime.options(c).dry_run:
        emit(out, plan)
        return
    plan.run(LocalRunner())
    out.emit({"service": service, "kind": kind, "namespace": tgt.namespace, "mesh": chosen},
             render=lambda d: out.say(f"{kind} {service}: {chosen} proxy requested; its pods restart with it"))


ingress_ns = Collection("ingress", install, status, list_rules)
mesh_ns = Collection("mesh", mesh_install, mesh_status, inject)
