"""Ingress controllers and service meshes on a cluster (product plan §2.5, §2.6): installed from
their projects' own Helm charts at pinned versions, looked at through the Kubernetes API.

`CONTROLLERS` and `MESHES` are the tables: which charts (repository, chart, version, release,
namespace) make each one, the IngressClass a controller serves, the namespace its workloads run
in. Install plans are `helm upgrade --install` steps (idempotent; Helm 3 or 4 through
`nself.helm.binary`), built purely so `--dry-run` prints them. Status reads Deployments and
DaemonSets in those namespaces and the IngressClasses; `inject` is one merge patch of a
workload's pod template with the mesh's documented switch, which rolls its pods:

- Istio: the pod label `sidecar.istio.io/inject: "true"` (istio.io, "Installing the sidecar":
  the label takes precedence over the namespace's `istio-injection`).
- Linkerd: the pod annotation `linkerd.io/inject: enabled` (linkerd.io, "Automatic proxy injection").

Chart versions are pinned here and moved by a change to this table, never resolved at run time.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from nself.errors import Exit, NselfError, UsageError
from nself.helm import binary
from nself.k8s.resources import BY_KIND
from nself.plan import Plan, Step


@dataclass(frozen=True)
class Chart:
    release: str
    repo: str                  # a chart repository URL, or "" when `chart` is an oci:// reference
    chart: str
    version: str
    namespace: str
    sets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Addon:
    name: str
    title: str
    namespace: str             # where its workloads run
    charts: tuple[Chart, ...]
    ingress_class: str = ""    # the IngressClass a controller serves


_ISTIO_REPO, _ISTIO = "https://istio-release.storage.googleapis.com/charts", "1.24.3"
_ISTIO_BASE = Chart("istio-base", _ISTIO_REPO, "base", _ISTIO, "istio-system", ("defaultRevision=default",))
_ISTIOD = Chart("istiod", _ISTIO_REPO, "istiod", _ISTIO, "istio-system")
_LINKERD = "https://helm.linkerd.io/stable"

CONTROLLERS = {a.name: a for a in (
    Addon("nginx", "ingress-nginx (Kubernetes project)", "ingress-nginx",
          (Chart("ingress-nginx", "https://kubernetes.github.io/ingress-nginx", "ingress-nginx", "4.14.1",
                 "ingress-nginx"),), "nginx"),
    Addon("traefik", "Traefik Proxy", "traefik",
          (Chart("traefik", "https://traefik.github.io/charts", "traefik", "37.3.0", "traefik"),), "traefik"),
    Addon("kong", "Kong Ingress Controller", "kong",
          (Chart("kong", "https://charts.konghq.com", "ingress", "0.11.1", "kong"),), "kong"),
    Addon("contour", "Contour (the chart Contour's getting-started guide names)", "projectcontour",
          (Chart("contour", "", "oci://registry-1.docker.io/bitnamicharts/contour", "19.3.3", "projectcontour"),),
          "contour"),
    Addon("istio-gateway", "Istio ingress gateway", "istio-ingress",
          (_ISTIO_BASE, _ISTIOD, Chart("istio-ingress", _ISTIO_REPO, "gateway", _ISTIO, "istio-ingress")), "istio"),
)}
MESHES = {a.name: a for a in (
    Addon("istio", "Istio", "istio-system", (_ISTIO_BASE, _ISTIOD)),
    Addon("linkerd", "Linkerd (stable)", "linkerd",
          (Chart("linkerd-crds", _LINKERD, "linkerd-crds", "1.8.0", "linkerd"),
           Chart("linkerd-control-plane", _LINKERD, "linkerd-control-plane", "1.16.11", "linkerd"))),
)}
# Linkerd's Helm install needs the identity certificates it cannot make itself (linkerd.io,
# "Installing Linkerd with Helm"): these files in --identity-dir, passed as --set-file.
LINKERD_IDENTITY = {"identityTrustAnchorsPEM": "ca.crt", "identity.issuer.tls.crtPEM": "issuer.crt",
                    "identity.issuer.tls.keyPEM": "issuer.key"}
INJECT = {"istio": ("labels", "sidecar.istio.io/inject", "true"),
          "linkerd": ("annotations", "linkerd.io/inject", "enabled")}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def choose(table: dict[str, Addon], name: str, what: str) -> Addon:
    """The table's entry, or exit 2 with a did-you-mean."""
    if name in table:
        return table[name]
    import difflib

    close = difflib.get_close_matches(name, table, n=1)
    raise UsageError(f"unknown {what} {name!r}", hint=(f"did you mean {close[0]}? " if close else "")
                     + f"{what}s: " + ", ".join(table))


def install_plan(addon: Addon, context: str | None, kubeconfig: str | None, timeout: int,
                 identity: Path | None = None) -> Plan:
    """One `helm upgrade --install … --repo R --version V --wait` per chart, in order."""
    steps = []
    for chart in addon.charts:
        step = binary.install(chart.release, chart.chart, chart.namespace, (), chart.sets, None, wait=True,
                              timeout=timeout, upgrade=True, context=context)
        where = (["--repo", chart.repo] if chart.repo else []) + ["--version", chart.version]
        extra = _identity_args(identity) if chart.chart == "linkerd-control-plane" else []
        extra += ["--kubeconfig", kubeconfig] if kubeconfig else []
        steps.append(replace(step, argv=(*step.argv, *where, *extra), error_code=Exit.KUBERNETES))
    return Plan(f"install {addon.title} ({', '.join(f'{c.chart} {c.version}' for c in addon.charts)})", steps)


def _identity_args(folder: Path | None) -> list[str]:
    if folder is None:
        raise UsageError("Linkerd needs its identity certificates: pass --identity-dir",
                         hint="a folder with ca.crt, issuer.crt and issuer.key (linkerd.io: \"Generating your own "
                              "mTLS root certificates\", e.g. with `step certificate create`)")
    missing = [f for f in LINKERD_IDENTITY.values() if not (folder / f).is_file()]
    if missing:
        raise UsageError(f"{folder} lacks {', '.join(missing)}", hint="Linkerd needs ca.crt, issuer.crt and issuer.key")
    args = []
    for key, name in LINKERD_IDENTITY.items():
        args += ["--set-file", f"{key}={folder / name}"]
    return args


def _workloads(cluster, namespace: str) -> list[dict]:
    rows = []
    for kind in ("Deployment", "DaemonSet"):
        for obj in cluster.list(BY_KIND[("apps/v1", kind)], namespace):
            status = obj.get("status") or {}
            desired = status.get("desiredNumberScheduled") if kind == "DaemonSet" \
                else (obj.get("spec") or {}).get("replicas", 1)
            ready = status.get("numberReady" if kind == "DaemonSet" else "readyReplicas") or 0
            rows.append({"kind": kind, "name": obj["metadata"]["name"], "ready": ready, "desired": desired or 0})
    return rows


def _state(workloads: list[dict]) -> str:
    if not workloads:
        return "not installed"
    return "ready" if all(w["ready"] >= w["desired"] for w in workloads) else "not ready"


def ingress_status(cluster) -> list[dict]:
    """Per known controller: its workloads, their readiness, and whether its IngressClass exists
    (and is the cluster's default)."""
    classes = {c["metadata"]["name"]: c for c in cluster.list(BY_KIND[("networking.k8s.io/v1", "IngressClass")], None)}
    rows = []
    for addon in CONTROLLERS.values():
        workloads = _workloads(cluster, addon.namespace)
        ingress_class = classes.get(addon.ingress_class)
        default = ((ingress_class or {}).get("metadata", {}).get("annotations") or {}).get(
            "ingressclass.kubernetes.io/is-default-class") == "true"
        rows.append({"controller": addon.name, "namespace": addon.namespace, "state": _state(workloads),
                     "workloads": workloads, "ingress_class": addon.ingress_class if ingress_class else None,
                     "default": default})
    return rows


def ingress_rules(cluster, namespace: str | None) -> list[dict]:
    """One row per Ingress rule path (namespace None: every namespace)."""
    rows = []
    for ing in cluster.list(BY_KIND[("networking.k8s.io/v1", "Ingress")], namespace):
        meta, spec = ing["metadata"], ing.get("spec") or {}
        ingress_class = spec.get("ingressClassName") \
            or (meta.get("annotations") or {}).get("kubernetes.io/ingress.class")
        tls = {h for t in spec.get("tls") or () for h in t.get("hosts") or ()}
        address = ", ".join(e.get("ip") or e.get("hostname", "") for e in
                            ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ())
        for rule in spec.get("rules") or ():
            for path in (rule.get("http") or {}).get("paths") or ():
                service = (path.get("backend") or {}).get("service") or {}
                port = service.get("port") or {}
                rows.append({"namespace": meta["namespace"], "ingress": meta["name"], "class": ingress_class,
                             "host": rule.get("host", "*"), "path": path.get("path", "/"),
                             "service": f"{service.get('name', '?')}:{port.get('number') or port.get('name', '?')}",
                             "tls": rule.get("host") in tls, "address": address})
    return sorted(rows, key=lambda r: (r["namespace"], r["ingress"], r["host"], r["path"]))


def mesh_status(cluster, namespace: str) -> dict:
    """Each mesh's control plane, and which workloads of `namespace` ask for its proxy."""
    meshes = [{"mesh": m.name, "namespace": m.namespace, "state": _state(w), "workloads": w}
              for m in MESHES.values() for w in [_workloads(cluster, m.namespace)]]
    injected = []
    for kind in WORKLOAD_KINDS:
        for obj in cluster.list(BY_KIND[("apps/v1", kind)], namespace):
            template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
            for mesh, (field, key, value) in INJECT.items():
                if (template.get(field) or {}).get(key) == value:
                    injected.append({"workload": obj["metadata"]["name"], "kind": kind, "mesh": mesh})
    return {"namespace": namespace, "meshes": meshes, "injected": injected}


def installed_mesh(status: dict) -> str:
    """The one mesh whose control plane runs; exit 2 when none or both do."""
    running = [m["mesh"] for m in status["meshes"] if m["state"] != "not installed"]
    if len(running) != 1:
        raise UsageError("no service mesh is installed" if not running else
                         f"more than one mesh is installed ({', '.join(running)})",
                         hint="pass --mesh istio|linkerd" + ("" if running else
                                                             ", after `nself k8s.mesh.install istio|linkerd`"))
    return running[0]


def inject_plan(cluster: Callable, namespace: str, kind: str, name: str, mesh: str) -> Plan:
    """The merge patch that asks the mesh for a proxy in the workload's pods (they restart)."""
    field, key, value = INJECT[mesh]
    patch = {"spec": {"template": {"metadata": {field: {key: value}}}}}
    res = BY_KIND[("apps/v1", kind)]
    step = Step(f"set {key}: {value} on the pods of {kind} {name} (they restart with the {mesh} proxy)", "k8s",
                spec={"verb": "patch", "resource": kind, "name": name, "namespace": namespace, "body": patch},
                error_code=Exit.KUBERNETES, call=lambda _: cluster().patch(res, namespace, name, patch))
    return Plan(f"inject the {mesh} proxy into {name}", [step])


def find_workload(cluster, namespace: str, name: str) -> str:
    """The kind of the workload `name` (exit 9 when none is)."""
    for kind in WORKLOAD_KINDS:
        if any(o["metadata"]["name"] == name for o in cluster.list(BY_KIND[("apps/v1", kind)], namespace)):
            return kind
    raise NselfError(f"no Deployment, StatefulSet or DaemonSet named {name!r} in {namespace}", code=Exit.KUBERNETES,
                     hint="`nself k8s.status` lists the services")
