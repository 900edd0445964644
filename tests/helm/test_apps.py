"""Issue 21's proof: seven self-hosted applications' official compose files (tests/data/apps,
each with SOURCE.md) become manifests that run them safely in every environment. For each
app: the kustomize tree renders every overlay with kubectl, every object passes the
Kubernetes 1.30/1.37 schemas strictly, the safety rules hold, and the Helm chart lints and
renders the same objects (one model, two renderers). Reads nothing outside the repository."""
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import copy_tree
from nself.helm.init import InitOptions, init
from nself.k8s.generate import Options, environments, generate
from nself.project import load_project
from nself.project.yamlio import parse
from rendering import helm_render, normalise, run

APPS = Path(__file__).resolve().parent.parent / "data" / "apps"
FILES = {"mattermost": ("docker-compose.yml", "docker-compose.postgres.yml")}
KUBECTL, HELM = shutil.which("kubectl"), shutil.which("helm")
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
DATA_DIRS = {"/var/lib/postgresql/data", "/var/lib/mysql"}


def load(app, root, env):
    return load_project(root, env=env, files=FILES.get(app, ()), process_env={}, lenient=True)


def pod_of(o):
    spec = o["spec"]
    return (spec["jobTemplate"]["spec"] if o["kind"] == "CronJob" else spec)["template"]


def check_safety(docs, where):
    """The rules of issue 21, on one environment's rendered objects."""
    keys = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(keys) == len(set(keys)), f"{where}: duplicate objects"
    scaled = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    budgets = {d["metadata"]["name"] for d in docs if d["kind"] == "PodDisruptionBudget"}
    maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    for d in docs:                                          # kind 6: no certificate for no name
        if d["kind"] == "Ingress" and not all(r.get("host") for r in d["spec"]["rules"]):
            assert not any(a.startswith("cert-manager.io/") for a in
                           d["metadata"].get("annotations") or {}), (where, d["metadata"]["name"])
    for d in docs:
        if d["kind"] not in WORKLOADS:
            continue
        name, template = d["metadata"]["name"], pod_of(d)
        pod = template["spec"]
        claims = [v for v in pod.get("volumes", []) if "persistentVolumeClaim" in v]
        if d["kind"] == "Deployment" and claims:   # kind 1: RWO claim → one pod, Recreate
            assert d["spec"]["replicas"] == 1, (where, name)
            assert d["spec"]["strategy"] == {"type": "Recreate"}, (where, name)
            assert name not in scaled and name not in budgets, (where, name)
        for c in pod.get("initContainers", []) + pod["containers"]:
            for m in c.get("volumeMounts", []):            # kind 2: data dirs below the root
                if m["mountPath"].rstrip("/") in DATA_DIRS and not m.get("readOnly"):
                    assert m.get("subPath"), (where, name, m)
            caps = c.get("securityContext", {}).get("capabilities", {})
            assert not any(x.startswith("CAP_") or x != x.upper() for x in
                           caps.get("add", []) + caps.get("drop", [])), (where, name)
            for arg in c.get("args", []) + c.get("command", []):
                assert isinstance(arg, str), (where, name, arg)
        if pod.get("hostNetwork"):
            assert pod["dnsPolicy"] == "ClusterFirstWithHostNet", (where, name)
        read = [e["configMapRef"]["name"] for c in pod["containers"] for e in c.get("envFrom", [])
                if "configMapRef" in e] + [v["configMap"]["name"] for v in pod.get("volumes", [])
                                           if "configMap" in v]
        if any(r in maps for r in read):                   # kind 7: config changes roll pods
            assert "checksum/config" in template["metadata"].get("annotations", {}), (where, name)
    for cm in maps.values():                                # kind 4: strings stay strings
        assert all(isinstance(v, str) for v in cm.get("data", {}).values()), (where, cm["metadata"])


def check_tmpfs(project, docs):
    """Kind 5: every compose tmpfs is a Memory emptyDir at its target (Mattermost's /tmp)."""
    pods = {d["metadata"]["name"]: pod_of(d)["spec"] for d in docs if d["kind"] in WORKLOADS}
    for svc in project.services.values():
        for mount in (m for m in svc.volumes if m.type == "tmpfs"):
            pod = pods[svc.object_name]
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            names = [m["name"] for c in pod["containers"] for m in c.get("volumeMounts", [])
                     if m["mountPath"] == mount.target]
            assert names and volumes[names[0]]["emptyDir"]["medium"] == "Memory", (svc.name, mount)


@pytest.fixture(scope="module")
def tools():
    assert KUBECTL and HELM, "kubectl and helm are needed (`.ci/run` installs them)"


@pytest.mark.parametrize("app", sorted(p.name for p in APPS.iterdir()))
def test_an_official_compose_file_runs_safely_in_every_environment(app, tmp_path, tools,
                                                                    validate_objects):
    assert (APPS / app / "SOURCE.md").is_file()
    root = copy_tree(APPS / app, tmp_path / app)
    project = load(app, root, "production")
    generate(project, Options())
    chart = root / "charts" / init(project, InitOptions())["chart"]
    run(HELM, "lint", "--strict", str(chart))
    for env in environments(project):
        text = run(KUBECTL, "kustomize", str(root / "k8s" / "overlays" / env))
        kustomized = [d for d in yaml.safe_load_all(text) if d]
        # a YAML 1.2 reader (as kubectl's and Helm's are) sees the same values
        assert [parse(t, Path(env), "output", compose=True) for t in text.split("\n---\n")] == kustomized
        validate_objects(kustomized)
        check_safety(kustomized, f"{app}/{env}")
        check_tmpfs(load(app, root, env), kustomized)
        rendered = helm_render(load(app, root, env), chart, env)
        validate_objects(d for d in rendered if d["kind"] != "Secret")
        check_safety([d for d in rendered if d["kind"] != "Secret"], f"{app}/{env} (helm)")
        by_key = {(d["kind"], d["metadata"]["name"]): d for d in rendered if d["kind"] != "Secret"}
        expected = {(d["kind"], d["metadata"]["name"]): d for d in kustomized if d["kind"] != "Namespace"}
        assert set(by_key) == set(expected), (env, set(by_key) ^ set(expected))
        for key, doc in expected.items():
            assert normalise(by_key[key]) == normalise(doc), (app, env, key)


def test_plausible_reaches_its_renamed_databases(tmp_path):
    """Plausible names its databases `plausible_db` and `plausible_events_db` (no DNS labels:
    the Services are `plausible-db`, `plausible-events-db`). Its documented URLs, set in the
    env file, must reach them under the new names, the database names left alone."""
    from nself.k8s.convert import Options as ConvertOptions
    from nself.k8s.convert import convert
    from nself.k8s.settings import load_overlay

    root = copy_tree(APPS / "plausible", tmp_path / "plausible")
    with (root / ".env").open("a") as env:
        env.write("DATABASE_URL=postgres://postgres:postgres@plausible_db:5432/plausible_db\n"
                  "CLICKHOUSE_DATABASE_URL=http://plausible_events_db:8123/plausible_events_db\n")
    project = load("plausible", root, "production")
    manifests = convert(project, load_overlay(project, "production"), ConvertOptions(include_secrets=True))
    values = {k: v for o in manifests.all() if o["kind"] == "ConfigMap" for k, v in o.get("data", {}).items()}
    values.update({k: v for s in manifests.secrets for k, v in s.get("stringData", {}).items()})
    assert values["DATABASE_URL"] == "postgres://postgres:postgres@plausible-db:5432/plausible_db"
    assert values["CLICKHOUSE_DATABASE_URL"] == "http://plausible-events-db:8123/plausible_events_db"
    services = {o["metadata"]["name"] for o in manifests.all() if o["kind"] == "Service"}
    assert {"plausible-db", "plausible-events-db"} <= services
