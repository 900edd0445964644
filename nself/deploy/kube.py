"""The Kubernetes deploy target: `environments.<env>.target: k8s` (docs/deploy.md).

`via: kustomize` (default) applies the environment's overlay objects by server-side apply,
waits through the watch API, and when the rollout is not ready in time puts back the previous
pod template of exactly the workloads this deploy changed (exit 10). `via: helm` runs
`helm upgrade --install … --wait` and, after a timeout, `helm rollback`. Both keep the lock (a
Lease) and the audit history (a ConfigMap) in the environment's namespace
(nself.deploy.kubestate). Plans are built by nself.deploy.kubeplan; their k8s steps call a
`KubeClient`, which opens the cluster only when a step runs.
"""
from __future__ import annotations

from pathlib import Path

from nself.deploy import kubediff, kubeplan
from nself.deploy.core import DeployOptions, Driver
from nself.deploy.kubecanary import KubeCanary
from nself.deploy.kubestate import NAMESPACE, History, LeaseLock, get_or_none, status_of
from nself.deploy.release import Release
from nself.errors import Exit, NselfError, UsageError
from nself.plan import LocalRunner, Plan, Step

CONCURRENT = 8                   # preview: API requests in flight at once
HELM_TIMEOUTS = ("timed out waiting for the condition", "context deadline exceeded")


class KubeDriver(KubeCanary, Driver):
    kind = "k8s"

    def __init__(self, project, target, out):
        super().__init__(project, target, out)
        self._ops_target = None

    # -- the cluster, opened on first use ------------------------------------------------------------
    @property
    def tgt(self):
        """nself.k8s.operations.Target of this environment (cluster, namespace, selector)."""
        if self._ops_target is None:
            from nself.k8s import operations

            self._ops_target = operations.target(self.project, namespace=self.target.namespace,
                                                 context=self.target.context, kubeconfig=self.target.kubeconfig)
        return self._ops_target

    @property
    def client(self) -> KubeClient:
        return KubeClient(self)

    @property
    def store(self) -> History:
        return History(self.tgt.cluster, self.target.namespace, self.target.project, self.target.keep)

    def lock(self) -> LeaseLock:
        return LeaseLock(self.tgt.cluster, self.target.namespace, self.target.project, self.target.env)

    # -- plan and apply ------------------------------------------------------------------------------
    def plan(self, options: DeployOptions) -> Plan:
        if self.target.via == "helm":
            return Plan(f"deploy release {options.release.id} to {self.target.describe()}",
                        [self._helm_step(options)])
        objects, secrets = self._objects(options)
        return kubeplan.apply_plan(self.target, options.release.id, objects, secrets, options.timeout, self.client)

    def _objects(self, options: DeployOptions) -> tuple[list[dict], list[dict]]:
        from nself.k8s import operations

        objects = kubeplan.desired(self.project, self.target.namespace, options.release.images)
        secrets, _ = operations.secrets(self.project, self.target.namespace)
        if options.services:
            wanted = {self.project.service(name).object_name for name in options.services}
            objects = objects[:1] + [o for o in objects[1:] if _service_of(o) in wanted]
            secrets = [s for s in secrets if _service_of(s) in wanted]
        return objects, secrets

    def _helm_step(self, options: DeployOptions) -> Step:
        chart, sets, secret = self._helm_inputs(options)
        return kubeplan.helm_upgrade(chart, options.release.id, sets, secret, options.timeout, self.target.kubeconfig)

    def _helm_inputs(self, options: DeployOptions) -> tuple:
        """The chart (helm.operations.Target), the `--set`s pinning the release's images, the secret values."""
        from nself.helm import operations as helm_ops
        from nself.project.yamlio import load

        chart = self._chart()
        services = set((load(Path(chart.values[0]), "the chart's values")[0] or {}).get("services") or {})
        return chart, kubeplan.image_sets(self.project, options.release.images, services), \
            helm_ops.secret_values(self.project)

    def apply(self, options: DeployOptions, plan: Plan) -> dict:
        self._refuse_during_canary("a deploy")
        if self.target.via == "helm":
            return self._apply_helm(plan)
        mine = {f"{s.spec['resource']}/{s.spec['name']}" for s in plan.steps if s.spec.get("verb") == "apply"}
        before = self._live_templates()
        try:
            plan.run(LocalRunner())
        except NselfError as exc:
            self._undo(before, mine, exc)
        after = self._live_templates()
        return {"objects": len(mine), "created": sorted(k for k in after if k in mine and k not in before),
                "changed": sorted(k for k in after if k in before and after[k] != before[k])}

    def _live_templates(self) -> dict[str, dict]:
        from nself.k8s.resources import BY_KIND

        found = {}
        for kind in kubeplan.WORKLOADS:
            for obj in self.tgt.cluster.list(BY_KIND[("apps/v1", kind)], self.target.namespace):
                found[kubeplan.key(obj)] = obj["spec"]["template"]
        return found

    def _undo(self, before: dict[str, dict], mine: set[str], cause: NselfError):
        """Put back the previous pod template of each workload this deploy changed (the live
        templates now against those before it), then raise: exit 10 when the rollout timed out,
        else the cause's code."""
        after = self._live_templates()
        changed = {k: before[k] for k in after if k in before and after[k] != before[k]}
        created = sorted(k for k in after if k in mine and k not in before)
        failed = []
        # no wait: the previous pods are still there; their ReplicaSets scale back up
        for step in kubeplan.restore_plan(self.target, "before this deploy", changed, self.client).steps:
            try:
                step.call(step)
            except NselfError as exc:
                failed.append(f"{step.spec['resource']}/{step.spec['name']}: {exc.message}")
        details = [f"put back the previous pod template of: {', '.join(sorted(changed)) or 'nothing (none changed)'}"]
        if created:
            details.append(f"left in place (new in this deploy, nothing to go back to): {', '.join(created)}")
        if failed:
            details.append("could NOT put back: " + "; ".join(failed))
        raise NselfError(f"{self.target.env}: {cause.message}" + ("; rolled back" if changed else ""),
                         code=Exit.TIMEOUT if cause.code == Exit.TIMEOUT else cause.code,
                         details=[*details, *cause.details],
                         hint=f"`nself deploy.status {self.target.env}` and `nself k8s.events --env "
                              f"{self.target.env}` show why; raise --timeout if it only needs longer") from None

    def _apply_helm(self, plan: Plan) -> dict:
        from nself.helm.binary import HelmRunner

        runner = HelmRunner()
        try:
            plan.run(runner)
        except NselfError as exc:       # helm_error: the message carries helm's words
            if not any(t in exc.message.lower() for t in HELM_TIMEOUTS):
                raise
            previous = self.current()
            if previous:
                Plan("undo", [kubeplan.helm_rollback(self._chart(), self.target.kubeconfig)]).run(runner)
            raise NselfError(f"{self.target.env}: helm timed out waiting for the release to become ready"
                             + (f"; rolled back to the revision of release {previous}" if previous else ""),
                             code=Exit.TIMEOUT, details=[exc.message],
                             hint="no earlier release to go back to: `nself helm.status` shows the failed one"
                             if not previous else "raise --timeout if it only needs longer") from None
        return {"helm": True}

    def _chart(self):
        from nself.helm import operations as helm_ops

        return helm_ops.target(self.project, namespace=self.target.namespace, context=self.target.context)

    # -- history ---------------------------------------------------------------------------------------
    def history(self) -> list[dict]:
        return self.store.records()

    def record(self, entry: dict) -> None:
        self.store.append(entry)

    def current(self) -> str | None:
        done = [r for r in self.history() if r.get("result") == "ok" and r.get("to")]
        return done[-1]["to"] if done else None

    def rollback(self, to: str | None) -> dict:
        plan, report = self._rollback(to)
        if self.target.via == "helm":
            self._apply_helm(plan)
        else:
            plan.run(LocalRunner())
        return report

    def rollback_plan(self, to: str | None) -> Plan:
        """What `deploy.rollback --dry-run` prints (it reads the release history in the cluster)."""
        return self._rollback(to)[0]

    def _rollback(self, to: str | None) -> tuple[Plan, dict]:
        """The plan that puts `to` (else the release before the current one) back, and its report."""
        self._refuse_during_canary("a rollback")
        records = self.history()
        current = self.current()
        release = to or _previous(records, current, self.target.env)
        timeout = float(self.project.settings.section("deploy", "timeout") or 300)
        if self.target.via == "helm":
            images = next((r.get("images") for r in reversed(records) if r.get("to") == release
                           and r.get("result") == "ok" and r.get("images") is not None), None)
            if images is None:
                raise _no_release(release, records, self.target.env)
            options = DeployOptions(Release(release, images), timeout=timeout)
            return self.plan(options), {"from": current, "to": release, "images": images}
        encoded = self.store.templates(release)
        if encoded is None:
            raise _no_release(release, records, self.target.env)
        live = self._live_templates()
        saved = kubeplan.decode_templates(encoded)
        plan = kubeplan.restore_plan(self.target, f"release {release}", {k: v for k, v in saved.items() if k in live},
                                     self.client, timeout)
        return plan, {"from": current, "to": release, "restored": sorted(k for k in saved if k in live),
                      "missing": sorted(k for k in saved if k not in live)}

    # -- looking ---------------------------------------------------------------------------------------
    def status(self) -> dict:
        from nself.k8s import operations

        rows = [{"service": r["service"], "kind": r["kind"], "ready": f"{r['ready']}/{r['desired']}",
                 "updated": r["updated"], "images": ", ".join(r["images"])} for r in operations.status(self.tgt)]
        return {"env": self.target.env, "namespace": self.target.namespace, "release": self.current(), "rows": rows}

    def check(self) -> dict:
        from nself.k8s import operations

        rows = [r for r in operations.status(self.tgt) if r["kind"] in kubeplan.WORKLOADS]
        if not rows:
            raise NselfError(f"nothing is deployed in {self.target.namespace}", code=Exit.KUBERNETES,
                             hint=f"deploy first: `nself deploy.to {self.target.env}`")
        services = [{"service": r["service"], "where": r["kind"], "healthy": bool(r["ready_state"]),
                     "detail": f"{r['ready']}/{r['desired']} ready, {r['updated']} updated"} for r in rows]
        return {"env": self.target.env, "healthy": all(s["healthy"] for s in services), "services": services}

    def preview(self, options: DeployOptions, diff: bool) -> dict:
        """What a deploy of `options.release` would change: per object, from the server's dry run."""
        if self.target.via == "helm":
            objects, secrets = self._helm_objects(options), []
        else:
            objects, secrets = self._objects(options)
        live = self._live(objects + secrets)
        # no namespace yet (the first deploy): a dry run in it would fail, as on a real cluster
        exists = get_or_none(self.tgt.cluster, NAMESPACE, None, self.target.namespace) is not None
        changes, lines, diffs = [], [], {}
        for obj, result in zip(objects, self._dry_run(objects) if exists else objects):
            name = kubeplan.key(obj)
            action, text = kubediff.change(live.get(name), result)
            changes.append({"object": name, "action": action})
            diffs[name] = text
        for secret in secrets:
            name = kubeplan.key(secret)
            action, text = kubediff.secret_change(live.get(name), secret)
            changes.append({"object": name, "action": action})
            diffs[name] = text
        for change in changes:
            if change["action"] != "unchanged":
                lines.append(f"{'+' if change['action'] == 'create' else '~'} {change['object']} ({change['action']})")
                if diff:
                    lines += [f"    {line}" for line in diffs[change["object"]]]
        changed = [c for c in changes if c["action"] != "unchanged"]
        lines.append(f"{self.target.env}: {len(changed)} of {len(changes)} objects would change "
                     f"(release {options.release.id}; nothing was changed)")
        report = {"env": self.target.env, "namespace": self.target.namespace, "release": options.release.id,
                  "server_dry_run": exists, "changes": changed, "unchanged": len(changes) - len(changed),
                  "lines": lines}
        if diff:
            report["diff"] = {c["object"]: diffs[c["object"]] for c in changed}
        return report

    def _dry_run(self, objects: list[dict]) -> list[dict]:
        """The server's dry-run apply result of each object."""
        cluster, namespace = self.tgt.cluster, self.target.namespace
        return _concurrently(lambda obj: cluster.apply(obj, namespace, dry_run=True), objects)

    def _live(self, objects: list[dict]) -> dict[str, dict]:
        """The live copies of `objects` (one list call per kind; a kind the API lacks: none)."""
        from nself.k8s.resources import for_object

        def listed(res) -> list[dict]:
            try:
                items = self.tgt.cluster.list(res, self.target.namespace if res.namespaced else None)
            except NselfError as exc:
                if status_of(exc) == 404:
                    return []
                raise
            return [{"apiVersion": res.api_version, "kind": res.kind, **item} for item in items]

        wanted = {kubeplan.key(o) for o in objects}
        kinds = sorted({for_object(o) for o in objects})
        return {kubeplan.key(item): item for items in _concurrently(listed, kinds) for item in items
                if kubeplan.key(item) in wanted}

    def _helm_objects(self, options: DeployOptions) -> list[dict]:
        """The chart rendered by `helm template` with the deploy's values (Secrets left out)."""
        import yaml

        from nself.helm.binary import HelmRunner

        result = HelmRunner()(kubeplan.helm_template(*self._helm_inputs(options)))
        docs = [d for d in yaml.safe_load_all(result.stdout) if isinstance(d, dict) and d.get("kind")]
        return sorted((d for d in docs if d["kind"] != "Secret"), key=lambda d: d["kind"] != "Namespace")

    def logs(self, service: str | None, follow: bool, tail: int) -> None:
        from nself.k8s import operations

        services = [service] if service else [r["service"] for r in operations.status(self.tgt)
                                              if r["kind"] in kubeplan.WORKLOADS]
        if follow and len(services) != 1:
            raise UsageError("--follow streams one service", hint=f"name it: `nself deploy.logs {self.target.env} "
                                                                   "SERVICE --follow`")
        for name in services:
            pod = operations.pod_for(self.tgt, name)
            result = operations.logs(self.tgt, pod, operations.log_query(tail=tail, follow=follow))
            for line in result.splitlines() if isinstance(result, str) else result:
                self.out.say(f"{name} | {line.rstrip()}")


class KubeClient:
    """The calls of nself.deploy.kubeplan's steps, on the driver's cluster (opened on first use)."""

    def __init__(self, driver: KubeDriver):
        self.driver = driver

    def apply(self, obj: dict) -> dict:
        return self.driver.tgt.cluster.apply(obj, self.driver.target.namespace)

    def patch(self, kind: str, name: str, body: dict | list) -> dict:
        from nself.k8s.cluster import resource

        return self.driver.tgt.cluster.patch(resource(kind), self.driver.target.namespace, name, body)

    def delete(self, kind: str, name: str) -> None:
        """Delete `kind/name`; already gone is fine."""
        from nself.k8s.cluster import resource

        try:
            self.driver.tgt.cluster.delete(resource(kind), self.driver.target.namespace, name)
        except NselfError as exc:
            if status_of(exc) != 404:
                raise

    def wait(self, names: list[str], timeout: float) -> list[str]:
        from nself.k8s import operations

        return operations.wait_ready(self.driver.tgt, set(names), max(1, int(timeout)))

    def save_templates(self, release: str, encoded: str) -> None:
        self.driver.store.save_templates(release, encoded)


def _concurrently(call, items: list) -> list:
    """`[call(i) for i in items]`, CONCURRENT requests in flight at once (a round trip each: on a
    remote cluster, one after another would take seconds)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(CONCURRENT) as pool:
        return list(pool.map(call, items))


def _service_of(obj: dict) -> str | None:
    return (obj["metadata"].get("labels") or {}).get("app.kubernetes.io/name")


def _previous(records: list[dict], current: str | None, env: str) -> str:
    for record in reversed(records):
        if record.get("result") == "ok" and record.get("to") and record["to"] != current:
            return record["to"]
    raise NselfError(f"{env} has no earlier release to go back to", code=Exit.GENERAL,
                     hint=f"`nself deploy.history {env}` lists the deploys")


def _no_release(release: str, records: list[dict], env: str) -> NselfError:
    known = sorted({r["to"] for r in records if r.get("result") == "ok" and r.get("to")})
    return NselfError(f"{env} has no saved release {release!r} to go back to", code=Exit.GENERAL,
                      hint="releases on record: " + (", ".join(known) or "none") +
                           " (only the last deploy.keep_releases keep their templates)")
