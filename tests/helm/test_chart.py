"""helm.init: a chart that lints, renders every environment, packages — and says the
same as the kustomize overlays (one model, two renderers)."""
import shutil
import subprocess

import pytest
import yaml

from conftest import CORPUS, STACK, copy_tree
from rendering import helm_render, normalise, run
from nself.helm.binary import HelmRunner
from nself.helm.init import InitOptions, init
from nself.helm.operations import secret_values
from nself.k8s.generate import Options, environments, generate
from nself.project import load_project

HELM = shutil.which("helm")
KUBECTL = shutil.which("kubectl")
EQUIVALENCE = ["nself-stack", "ac-elk", "ac-nextcloud-redis-mariadb", "ac-nginx-golang-postgres",
               "docker-elk", "kompose-env-file", "kompose-statefulset-wordpress", "kompose-v2-ports",
               "kompose-volume-type-labels", "netbox-docker", "swarmprom", "temporal-multirole",
               "voting-app", "plausible-ce"]
ALL_CASES = ["nself-stack", *sorted(p.name for p in CORPUS.iterdir()
                                    if p.is_dir() and p.name != "kompose-full-example")]


@pytest.fixture(scope="session")
def helm_bin():
    assert HELM, "helm is needed (`.ci/run` installs it)"
    return HELM


def project_copy(case, tmp_path, env=None):
    source = STACK if case == "nself-stack" else CORPUS / case
    return load_project(copy_tree(source, tmp_path / case), env=env, process_env={})


@pytest.mark.parametrize("case", EQUIVALENCE)
def test_helm_and_kustomize_render_the_same_objects(case, tmp_path, helm_bin):
    assert KUBECTL
    project = project_copy(case, tmp_path)
    generate(project, Options())
    report = init(project, InitOptions())
    chart = tmp_path / case / "charts" / report["chart"]
    for env in environments(project):
        env_project = project if env == project.env else load_project(project.root, env=env,
                                                                      process_env={}, lenient=True)
        rendered = {(d["kind"], d["metadata"]["name"]): d for d in helm_render(env_project, chart, env)}
        kustomized = {(d["kind"], d["metadata"]["name"]): d
                      for d in yaml.safe_load_all(run(KUBECTL, "kustomize",
                                                      str(project.root / "k8s/overlays" / env))) if d}
        helm_keys = {k for k in rendered if k[0] != "Secret"}
        # The chart leaves the namespace to `helm install --create-namespace` (issue 21).
        assert ("Namespace", project.namespace) not in rendered
        kustomized = {k: v for k, v in kustomized.items() if k[0] != "Namespace"}
        assert helm_keys == set(kustomized), (env, helm_keys ^ set(kustomized))
        for key in kustomized:
            assert normalise(rendered[key]) == normalise(kustomized[key]), (env, key)


@pytest.mark.parametrize("case", ALL_CASES)
def test_chart_lints_renders_and_packages(case, tmp_path, helm_bin, validate_objects):
    project = project_copy(case, tmp_path)
    report = init(project, InitOptions())
    chart = tmp_path / case / "charts" / report["chart"]
    stdin = secret_values(project)
    extra = ["--values", "-"] if stdin else []
    run(HELM, "lint", "--strict", str(chart), *extra, stdin=stdin)
    for env in environments(project):
        docs = helm_render(project, chart, env)
        assert any(d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job") for d in docs)
        validate_objects(d for d in docs if d["kind"] != "Secret")
    run(HELM, "package", str(chart), "--destination", str(tmp_path / "dist"))
    assert list((tmp_path / "dist").glob("*.tgz"))


def test_chart_layout_and_values(tmp_path, helm_bin):
    project = project_copy("nself-stack", tmp_path)
    (project.root / "nself.yml").write_text("helm:\n  chart: {name: acme, version: 1.2.3, appVersion: '0.9'}\n")
    project = load_project(project.root, process_env={})
    report = init(project, InitOptions())
    chart = project.root / "charts" / "acme"
    assert report["chart"] == "acme"
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    assert (meta["apiVersion"], meta["version"], meta["appVersion"]) == ("v2", "1.2.3", "0.9")
    for rel in (".helmignore", "templates/_helpers.tpl", "templates/NOTES.txt", "templates/namespace.yaml",
                "templates/secrets.yaml", "templates/postgres/statefulset.yaml",
                "templates/hasura/deployment.yaml", "templates/hasura/configmap.yaml",
                "values-local.yaml", "values-staging.yaml", "values-production.yaml", "values.schema.json"):
        assert (chart / rel).is_file(), rel
    helpers = (chart / "templates/_helpers.tpl").read_text()
    assert 'define "acme.labels"' in helpers and "<CHARTNAME>" not in helpers and "trunc 63" in helpers
    values = yaml.safe_load((chart / "values.yaml").read_text())
    hasura = values["services"]["hasura"]
    assert hasura["image"] == {"repository": "hasura/graphql-engine", "tag": "v2.36.0", "pullPolicy": ""}
    assert "HASURA_GRAPHQL_ADMIN_SECRET" in hasura["secrets"]
    assert "HASURA_GRAPHQL_ADMIN_SECRET" not in hasura["env"]
    assert values["services"]["postgres"]["persistence"]["postgres-data"]["size"] == "1Gi"
    production = yaml.safe_load((chart / "values-production.yaml").read_text())
    assert production["services"]["hasura"]["replicas"] == 2
    assert production["services"]["hasura"]["autoscaling"]["enabled"] is True
    text = "".join(p.read_text() for p in chart.rglob("*") if p.is_file())
    assert "Zq8pLk2vWn4sTr7yXc1m" not in text                 # no secret value in the chart


@pytest.mark.parametrize("setting, message", [
    ("services.hasura.replicaz=2", "replicaz"),
    ("services.hasura.replicas=many", "replicas"),
    ("services.nope.replicas=1", "nope"),
])
def test_values_schema_rejects_typos(tmp_path, helm_bin, setting, message):
    project = project_copy("nself-stack", tmp_path)
    init(project, InitOptions())
    chart = project.root / "charts" / "acme"
    out = subprocess.run([HELM, "template", "r", str(chart), "--set", setting, "--values", "-"],
                         input=secret_values(project), capture_output=True, text=True)
    assert out.returncode != 0 and message in out.stderr


def test_missing_secret_values_fail_clearly(tmp_path, helm_bin):
    project = project_copy("nself-stack", tmp_path)
    init(project, InitOptions())
    out = subprocess.run([HELM, "template", "r", str(project.root / "charts/acme")],
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "secret POSTGRES_PASSWORD of postgres-secrets is missing" in out.stderr


def test_templates_keep_literal_braces(tmp_path, helm_bin):
    root = tmp_path / "app"
    root.mkdir()
    (root / "compose.yaml").write_text("services:\n  web:\n    image: nginx:1.27\n"
                                       "    volumes: ['./tpl.conf:/etc/tpl.conf:ro']\n")
    (root / "tpl.conf").write_text("greeting {{ .Name }} {{- trim }}\n")
    project = load_project(root, process_env={})
    init(project, InitOptions())
    docs = helm_render(project, root / "charts/app", "local")
    conf = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "web-tpl-conf")
    assert conf["data"]["tpl.conf"] == "greeting {{ .Name }} {{- trim }}\n"


def test_from_k8s(tmp_path, helm_bin, nself):
    project = project_copy("voting-app", tmp_path)
    generate(project, Options())
    r = nself(["helm.init", "--from-k8s", "k8s/overlays/production", "--name", "vote"], cwd=project.root)
    assert r.code == 0, r.err
    run(HELM, "lint", "--strict", str(project.root / "charts/vote"), "--values", "-",
        stdin=secret_values(project) or "{}")


def test_init_is_deterministic_and_protects_edits(tmp_path, nself):
    project = project_copy("nself-stack", tmp_path)
    assert nself(["helm.init"], cwd=project.root).code == 0
    values = project.root / "charts/acme/values.yaml"
    first = values.read_bytes()
    assert nself(["helm.init", "--json"], cwd=project.root).json()["written"] == []
    values.write_text(first.decode() + "# mine\n")
    r = nself(["helm.init"], cwd=project.root)
    assert r.code == 1 and "values.yaml" in r.err
    assert nself(["helm.init", "--force"], cwd=project.root).code == 0 and values.read_bytes() == first


def test_bad_chart_name_is_a_configuration_error(tmp_path, nself):
    project = project_copy("voting-app", tmp_path)
    r = nself(["helm.init", "--name", "Bad_Name"], cwd=project.root)
    assert r.code == 3 and "not a valid name" in r.err


def test_helm_version_detection(helm_bin):
    assert HelmRunner(helm_bin).major == 3            # .ci/bin/helm is Helm 3.19


HELM4 = shutil.which("helm4")


@pytest.mark.parametrize("case", ["nself-stack", "voting-app"])
def test_helm_4_lints_and_renders_the_same_chart(case, tmp_path, validate_objects):
    assert HELM4, "helm4 is needed (`.ci/run` installs it)"
    assert HelmRunner(HELM4).major == 4
    project = project_copy(case, tmp_path)
    report = init(project, InitOptions())
    chart = tmp_path / case / "charts" / report["chart"]
    stdin = secret_values(project) or "{}"
    run(HELM4, "lint", "--strict", str(chart), "--values", "-", stdin=stdin)
    for env in environments(project):
        values = ["--values", str(chart / "values.yaml"), "--values", str(chart / f"values-{env}.yaml")]
        helm3 = run(HELM, "template", "r", str(chart), "--namespace", "n", *values, "--values", "-", stdin=stdin)
        helm4 = run(HELM4, "template", "r", str(chart), "--namespace", "n", *values, "--values", "-", stdin=stdin)
        docs3 = [d for d in yaml.safe_load_all(helm3) if d]
        docs4 = [d for d in yaml.safe_load_all(helm4) if d]
        validate_objects(d for d in docs4 if d["kind"] != "Secret")
        assert docs3 == docs4


def test_helm_4_commands(stack, nself):
    assert HELM4
    assert nself(["helm.init"], cwd=stack).code == 0
    # The plan is the same whichever helm is installed; the runner spells --atomic for Helm 4
    # (tests/helm/test_commands.py runs both against an unreachable cluster).
    plans = [nself(["helm.install", "--atomic", "--dry-run"], cwd=stack, env={"NSELF_HELM": helm}).out
             for helm in (HELM4, HELM)]
    assert plans[0] == plans[1] and "--wait --atomic" in plans[0]
