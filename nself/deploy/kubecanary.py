"""Canary and blue-green on Kubernetes: the `Driver.canary_*` verbs of `KubeDriver`, no controller.

The objects are nself.deploy.kuberoute's (twins `<svc>-canary` / `<svc>-green` beside the
stable Deployment, routed by a canary Ingress, HTTPRoute weights or a Service selector). Which
services run a twin: the deploy's `--service`s, else those the release has images for. The
router is ingress-nginx, or the Gateway API when `kubernetes.generate.ingress: gateway`.

State lives in the environment, in the ConfigMap `<project>-canary`: `data["state.json"]` the
CanaryState, `data["twins.json"]` what runs where (track, services, router, routes), and
annotations `nself.io/canary-*` for `kubectl get cm -o yaml` readers. Promote makes the stable
Deployment run the twin's pod template (a rolling update), then removes the twin; so between
canaries an environment is exactly what a rolling `deploy.to` leaves.
"""
from __future__ import annotations

import json
import time

from nself.deploy import kubeplan, kuberoute, prometheus
from nself.deploy.canary import CanaryState
from nself.deploy.core import DeployOptions, NotSupported
from nself.deploy.kubestate import CONFIGMAP, LABELS, get_or_none, status_of
from nself.errors import ConfigError, Exit, NselfError
from nself.plan import LocalRunner, Plan

STATE = "{project}-canary"
NOTE = "nself.io/canary-"


class KubeCanary:
    """Mixed into KubeDriver (uses its target, cluster, client, store and templates)."""

    # -- state ---------------------------------------------------------------------------------------
    @property
    def _state_name(self) -> str:
        return STATE.format(project=self.target.project)

    def _state_map(self) -> dict:
        return ((get_or_none(self.tgt.cluster, CONFIGMAP, self.target.namespace, self._state_name) or {})
                .get("data") or {})

    def canary_load(self) -> CanaryState | None:
        text = self._state_map().get("state.json")
        return CanaryState.from_dict(json.loads(text)) if text else None

    def canary_save(self, state: CanaryState) -> None:
        notes = {NOTE + "release": state.release, NOTE + "phase": state.phase, NOTE + "weight": str(state.weight),
                 NOTE + "strategy": state.strategy, NOTE + "updated": state.updated}
        self._write_state({"state.json": json.dumps(state.to_dict(), sort_keys=True)}, notes)

    def _twins(self) -> dict:
        text = self._state_map().get("twins.json")
        if not text:
            raise NselfError(f"{self._state_name} in {self.target.namespace} does not say which objects the canary "
                             "runs", code=Exit.KUBERNETES, hint="was it edited by hand? `kubectl get cm "
                                                                f"{self._state_name} -o yaml` shows it")
        return json.loads(text)

    def _write_state(self, data: dict, notes: dict | None = None) -> None:
        cluster, ns = self.tgt.cluster, self.target.namespace
        patch = {"metadata": {"annotations": notes or {}}, "data": data}
        try:
            cluster.patch(CONFIGMAP, ns, self._state_name, patch)
        except NselfError as exc:
            if status_of(exc) != 404:
                raise
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": self._state_name, "labels": LABELS, "annotations": notes or {}}, "data": data}
            cluster.request("POST", CONFIGMAP.path(ns), body=body)

    def _refuse_during_canary(self, what: str) -> None:
        """`deploy.to` and `deploy.rollback` wait until a running canary or blue-green ends."""
        from nself.deploy.progressive import busy

        state = self.canary_load()
        if state is not None and not state.done:
            raise busy(state, self.target.env, what)

    # -- start ---------------------------------------------------------------------------------------
    def canary_start(self, options: DeployOptions) -> None:
        if self.target.via == "helm":
            raise NotSupported(f"{self.target.env} deploys via helm, which has no canary or blue-green in nself",
                               "set environments.<env>.via: kustomize, or deploy with `deploy.to` (helm upgrade)")
        track = kuberoute.GREEN if options.strategy == "blue-green" else "canary"
        by_key = {kubeplan.key(o): o for o in kubeplan.desired(self.project, self.target.namespace,
                                                               options.release.images)}
        services = self._twin_services(options, by_key)
        live = self._stable(services)
        router = "gateway" if self._gateway() else "ingress"
        routes = self._routes_of(services) if track == "canary" and router == "gateway" else {}
        objects = []
        for svc in services:
            stable = by_key[f"Deployment/{svc}"]
            count = kuberoute.replicas_for(_replicas(live[svc]), 0) if track == "canary" else _replicas(live[svc])
            objects.append(kuberoute.twin_deployment(stable, track, options.release.id, count))
            objects.append(kuberoute.twin_service(by_key[f"Service/{svc}"], track,
                                                  "preview" if track == kuberoute.GREEN else None))
            if track == "canary" and router == "ingress":
                objects.append(kuberoute.canary_ingress(self._ingress(by_key, svc), 0))
        twins = {"track": track, "release": options.release.id, "services": services, "router": router,
                 "routes": {name: svc for svc, names in routes.items() for name in names}}
        self._write_state({"twins.json": json.dumps(twins, sort_keys=True)})
        rules = {name: kuberoute.route_rules(route, svc, 0) for svc, found in routes.items()
                 for name, route in found.items()}
        wait = [kuberoute.twin_name(s, track) for s in services]
        plan = kuberoute.start_plan(self.target, options.release.id, objects, rules, wait, options.timeout, self.client)
        try:
            plan.run(LocalRunner())
        except NselfError as exc:
            self._remove(twins)
            raise NselfError(f"{self.target.env}: release {options.release.id} did not start beside the stable one: "
                             f"{exc.message}", code=exc.code, details=exc.details,
                             hint="its objects were removed; the stable release serves as before") from None
        self.out.say(f"{self.target.env}: release {options.release.id} runs as {', '.join(wait)}"
                     + (f" (preview: Service {', '.join(s + '-preview' for s in services)})"
                        if track == kuberoute.GREEN else ", taking no traffic yet"))

    def _twin_services(self, options: DeployOptions, by_key: dict[str, dict]) -> list[str]:
        """Object names of the services that get a twin; each a Deployment with a Service."""
        names = options.services or tuple(options.release.images)
        if not names:
            raise NselfError(f"release {options.release.id} has no images, so nothing would differ from the "
                             "stable release", code=Exit.USAGE,
                             hint="build it first (`nself deploy.build`), or drop --skip-build")
        out = []
        for name in names:
            svc = self.project.service(name).object_name
            if f"Deployment/{svc}" not in by_key:
                raise NselfError(f"{name} is not a Deployment in {self.target.env}: only Deployments run a canary "
                                 "or a second colour", code=Exit.USAGE,
                                 hint="deploy stateful services with `deploy.to` (a rolling update)")
            if f"Service/{svc}" not in by_key:
                raise NselfError(f"{name} has no Service (no ports), so there is no traffic to move to it",
                                 code=Exit.USAGE, hint="deploy it with `deploy.to` (a rolling update)")
            out.append(svc)
        return sorted(set(out))

    def _stable(self, services: list[str]) -> dict[str, dict]:
        """The live stable Deployments; NselfError when one is not there yet."""
        from nself.k8s.resources import BY_KIND

        res = BY_KIND[("apps/v1", "Deployment")]
        live = {s: get_or_none(self.tgt.cluster, res, self.target.namespace, s) for s in services}
        missing = sorted(s for s, obj in live.items() if obj is None)
        if missing:
            raise NselfError(f"{self.target.env}: {', '.join(missing)} is not deployed yet, so there is no stable "
                             "release to run the new one beside", code=Exit.GENERAL,
                             hint=f"deploy one first: `nself deploy.to {self.target.env}`")
        return live

    def _gateway(self) -> bool:
        settings = self.project.settings
        return (settings.section("kubernetes", "generate", "ingress") if settings else None) == "gateway"

    def _ingress(self, by_key: dict[str, dict], svc: str) -> dict:
        found = by_key.get(f"Ingress/{svc}")
        if found is None:
            raise ConfigError(f"{svc} has no Ingress, so ingress-nginx cannot send it a share of traffic",
                              hint=f"make it public (x-nself: {{ingress: true}} on {svc}), or use blue-green "
                                   "(`nself deploy.blue-green`), which switches its Service")
        return found

    def _routes_of(self, services: list[str]) -> dict[str, dict[str, dict]]:
        """Per service, the live HTTPRoutes with a backendRef to it (name → route)."""
        from nself.k8s.resources import BY_KIND

        res = BY_KIND[("gateway.networking.k8s.io/v1", "HTTPRoute")]
        try:
            routes = self.tgt.cluster.list(res, self.target.namespace)
        except NselfError as exc:
            if status_of(exc) != 404:
                raise
            routes = []          # the cluster has no Gateway API
        found = {s: {r["metadata"]["name"]: r for r in routes if kuberoute.routes_to(r, s)} for s in services}
        bare = sorted(s for s, named in found.items() if not named)
        if bare:
            raise ConfigError(f"kubernetes.generate.ingress is gateway, but no HTTPRoute in {self.target.namespace} "
                              f"sends traffic to {', '.join(bare)}",
                              hint="attach an HTTPRoute with a backendRef to the Service to your Gateway (nself "
                                   "sets its weights); or use ingress-nginx (kubernetes.generate.ingress: nginx)")
        return found

    # -- traffic -------------------------------------------------------------------------------------
    def canary_weight(self, state: CanaryState, weight: int) -> None:
        twins = self._twins()
        ns, client = self.target.namespace, self.client
        if twins["track"] == kuberoute.GREEN:
            steps = [kuberoute.patch_step(f"point Service/{s} at {kuberoute.twin_name(s, kuberoute.GREEN)}",
                                          "Service", s, kuberoute.selector_patch(
                                              s, kuberoute.twin_name(s, kuberoute.GREEN) if weight else s), ns, client)
                     for s in twins["services"]]
            Plan(f"switch {self.target.env} to release {state.release}", steps).run(LocalRunner())
            return
        live = self._stable(twins["services"])
        steps, names = [], []
        for svc in twins["services"]:
            name = kuberoute.twin_name(svc, "canary")
            count = kuberoute.replicas_for(_replicas(live[svc]), weight)
            steps.append(kuberoute.patch_step(f"scale Deployment/{name} to {count}", "Deployment", name,
                                              {"spec": {"replicas": count}}, ns, client))
            names.append(name)
        timeout = float(self.project.settings.section("deploy", "timeout") or 300)
        steps.append(kuberoute.wait_for(names, ns, timeout, client))
        steps += self._weight_steps(twins, weight)
        Plan(f"send {weight}% to release {state.release} in {self.target.env}", steps).run(LocalRunner())

    def _weight_steps(self, twins: dict, weight: int | None) -> list:
        """The router's share for the canary (None: the canary's backendRefs taken out)."""
        ns, client = self.target.namespace, self.client
        if twins["router"] == "ingress":
            return [kuberoute.patch_step(f"send {weight}% through Ingress/{s}-canary", "Ingress", f"{s}-canary",
                                         kuberoute.weight_patch(weight or 0), ns, client) for s in twins["services"]]
        from nself.k8s.resources import BY_KIND

        res = BY_KIND[("gateway.networking.k8s.io/v1", "HTTPRoute")]
        steps = []
        for name, svc in sorted(twins["routes"].items()):
            route = get_or_none(self.tgt.cluster, res, ns, name)
            if route is not None:
                steps.append(kuberoute.route_step(name, kuberoute.route_rules(route, svc, weight), ns, client))
        return steps

    def canary_requests(self, state: CanaryState, since: float) -> list[tuple[int, float]]:
        step = state.next_step()
        name = step.analysis if step is not None and step.analysis else None
        settings = self.project.settings
        conf = ((settings.section("deploy", "canary", "analysis") if settings else None) or {}).get(name) or {}
        if not conf.get("prometheus"):
            raise NotSupported(f"canary analysis on Kubernetes reads the ingress controller's metrics from "
                               f"Prometheus, and deploy.canary.analysis.{name}.prometheus is not set",
                               f"set deploy.canary.analysis.{name}.prometheus: http://PROMETHEUS:9090 in nself.yml, "
                               "or use a pause step and judge by hand")
        window = max(1, round(time.time() - since))
        out = []
        for svc in self._twins()["services"]:
            by_status, p95 = prometheus.queries(conf, self.target.namespace, kuberoute.twin_name(svc, "canary"),
                                                window)
            out += prometheus.requests_of(prometheus.query(conf["prometheus"], by_status),
                                          prometheus.query(conf["prometheus"], p95))
        return out

    # -- the end -------------------------------------------------------------------------------------
    def canary_promote(self, state: CanaryState) -> None:
        """The stable Deployments get the twins' pod templates (waited for), traffic goes back to
        them, the twins go; the release's templates are saved for deploy.rollback."""
        from nself.k8s.resources import BY_KIND

        twins = self._twins()
        res = BY_KIND[("apps/v1", "Deployment")]
        found = {}
        for svc in twins["services"]:
            twin = get_or_none(self.tgt.cluster, res, self.target.namespace, kuberoute.twin_name(svc, twins["track"]))
            if twin is not None:           # gone: an earlier promote got this far already
                found[f"Deployment/{svc}"] = kuberoute.stable_template(twin, svc)
        timeout = float(self.project.settings.section("deploy", "timeout") or 300)
        if found:
            kubeplan.restore_plan(self.target, f"release {state.release}", found, self.client,
                                  timeout).run(LocalRunner())
        self._remove(twins)
        self.store.save_templates(state.release, kubeplan.encode_templates(self._live_templates()))

    def canary_abort(self, state: CanaryState) -> None:
        self._remove(self._twins())

    def _remove(self, twins: dict) -> None:
        """Traffic back on the stable Deployments, then the twins deleted (each step idempotent)."""
        ns, client, track = self.target.namespace, self.client, twins["track"]
        if track == kuberoute.GREEN:
            steps = [kuberoute.patch_step(f"point Service/{s} at {s}", "Service", s, kuberoute.selector_patch(s, s),
                                          ns, client) for s in twins["services"]]
        elif twins["router"] == "gateway":
            steps = self._weight_steps(twins, None)
        else:
            steps = [kuberoute.delete_step("Ingress", f"{s}-canary", ns, client) for s in twins["services"]]
        service = "preview" if track == kuberoute.GREEN else track
        for svc in twins["services"]:
            steps += [kuberoute.delete_step("Service", kuberoute.twin_name(svc, service), ns, client),
                      kuberoute.delete_step("Deployment", kuberoute.twin_name(svc, track), ns, client)]
        Plan(f"remove the {track} objects in {self.target.env}", steps).run(LocalRunner())


def _replicas(deployment: dict) -> int:
    return int(deployment.get("spec", {}).get("replicas", 1))
