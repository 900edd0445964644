"""k8s.generate end to end: the tree, kustomize, safety, and every corpus project."""
import hashlib
import json
import os
import shutil
import subprocess

import pytest
import yaml

from conftest import CORPUS, STACK, copy_tree, make_project
from nself.k8s import kustomize
from nself.k8s.generate import Options, environments, generate
from nself.project import load_project

KUBECTL = shutil.which("kubectl")
ENVS = ("local", "staging", "production")
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir() and p.name != "kompose-full-example")


@pytest.fixture(scope="session")
def kubectl():
    assert KUBECTL, "kubectl is needed (`.ci/run` installs it)"
    return KUBECTL


def render(kubectl, overlay):
    out = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def by_key(docs):
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def tree_hashes(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_validator_can_fail(validate_objects):
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                  "spec": {"selector": {}, "template": {"spec": {"containers": [
                      {"name": "x", "image": "y", "bogus": 1}]}}}}
    with pytest.raises(AssertionError, match="bogus"):
        validate_objects([deployment])
    with pytest.raises(AssertionError, match="does not exist"):
        validate_objects([{"apiVersion": "extensions/v1beta1", "kind": "Ingress",
                           "metadata": {"name": "old"}}])


def test_stack_tree_layout(nself, stack, kubectl):
    r = nself(["k8s.generate"], cwd=stack)
    assert r.code == 0, r.err
    k8s = stack / "k8s"
    for rel in ("base/kustomization.yaml", "base/namespace.yaml", "base/secrets.yaml",
                "base/postgres/statefulset.yaml", "base/postgres/service.yaml",
                "base/hasura/deployment.yaml", "base/hasura/configmap.yaml",
                "overlays/local/kustomization.yaml", "overlays/staging/kustomization.yaml",
                "overlays/production/kustomization.yaml", "overlays/production/hpa.yaml",
                "scripts/apply.sh", "scripts/delete.sh", "README.md", ".nself-generated.json"):
        assert (k8s / rel).is_file(), rel
    base = yaml.safe_load((k8s / "base/kustomization.yaml").read_text())
    assert "secrets.yaml" not in base["resources"]          # applying it would blank Secrets
    assert all((k8s / "base" / r).is_file() for r in base["resources"])
    assert (k8s / "scripts/apply.sh").stat().st_mode & 0o111
    secrets = list(yaml.safe_load_all((k8s / "base/secrets.yaml").read_text()))
    assert secrets and all(set(s["stringData"].values()) == {""} for s in secrets)


@pytest.mark.parametrize("env", ENVS)
def test_overlays_render_what_plain_prints(nself, stack, kubectl, env):
    assert nself(["k8s.generate"], cwd=stack).code == 0
    rendered = by_key(render(kubectl, stack / "k8s" / "overlays" / env))
    r = nself(["k8s.generate", "--plain", "--env", env], cwd=stack)
    assert r.code == 0, r.err
    plain = by_key(d for d in yaml.safe_load_all(r.out) if d)
    assert rendered.keys() == plain.keys()
    for key in plain:
        assert rendered[key] == plain[key], key


def test_generate_is_deterministic_and_idempotent(nself, stack):
    assert nself(["k8s.generate"], cwd=stack).code == 0
    first = tree_hashes(stack / "k8s")
    r = nself(["k8s.generate", "--json"], cwd=stack)
    assert r.json()["written"] == [] and r.json()["removed"] == []
    assert tree_hashes(stack / "k8s") == first
    other = copy_tree(STACK, stack.parent / "again")
    (other / "nself.yml").write_text((stack / "nself.yml").read_text())
    assert nself(["k8s.generate"], cwd=other).code == 0
    assert tree_hashes(other / "k8s") == first                # same input, same bytes, anywhere


def test_user_edits_are_protected(nself, stack):
    assert nself(["k8s.generate"], cwd=stack).code == 0
    edited = stack / "k8s/base/hasura/deployment.yaml"
    edited.write_text(edited.read_text() + "# my change\n")
    mine = stack / "k8s/overlays/production/my-patch.yaml"
    mine.write_text("# mine\n")
    before = tree_hashes(stack / "k8s")
    r = nself(["k8s.generate"], cwd=stack)
    assert r.code == 1 and "base/hasura/deployment.yaml" in r.err and "--force" in r.err
    assert tree_hashes(stack / "k8s") == before               # nothing touched
    assert nself(["k8s.generate", "--force"], cwd=stack).code == 0
    assert "# my change" not in edited.read_text()
    assert mine.read_text() == "# mine\n"                     # user files survive


def test_a_run_killed_mid_swap_is_recovered_by_the_next(nself, stack):
    """SIGKILL between the two renames leaves the previous tree as .k8s.old-PID and no k8s/."""
    import sys

    assert nself(["k8s.generate"], cwd=stack).code == 0
    (stack / "k8s/overlays/production/my-patch.yaml").write_text("# mine\n")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()                                          # a process id that is no longer running
    (stack / "k8s").rename(stack / f".k8s.old-{gone.pid}")
    (stack / f".k8s.new-{gone.pid}-x1y2").mkdir()
    (stack / f".k8s.new-{os.getpid()}-live").mkdir()    # a running writer's: left alone
    assert nself(["k8s.generate"], cwd=stack).code == 0
    assert (stack / "k8s/overlays/production/my-patch.yaml").read_text() == "# mine\n"
    assert sorted(p.name for p in stack.glob(".k8s.*")) == [f".k8s.new-{os.getpid()}-live"]


def test_refuses_a_folder_it_did_not_generate(nself, stack):
    (stack / "k8s").mkdir()
    (stack / "k8s" / "handwritten.yaml").write_text("kind: Foo\n")
    r = nself(["k8s.generate"], cwd=stack)
    assert r.code == 1 and "did not generate" in r.err


def test_strict_fails_before_writing(nself, stack):
    r = nself(["k8s.generate", "--strict"], cwd=stack)
    assert r.code == 3 and "with --strict" in r.err
    assert not (stack / "k8s").exists()


def test_split_and_plain_to_file(nself, stack):
    r = nself(["k8s.generate", "--split", "--output", "flat", "--env", "staging"], cwd=stack)
    assert r.code == 0, r.err
    files = sorted(p.name for p in (stack / "flat").glob("*.yaml"))
    assert "deployment-hasura.yaml" in files and "statefulset-postgres.yaml" in files
    doc = yaml.safe_load((stack / "flat/deployment-hasura.yaml").read_text())
    assert doc["metadata"]["namespace"] == "acme-stg"
    r = nself(["k8s.generate", "--plain", "--output", "all.yaml"], cwd=stack)
    assert r.code == 0 and (stack / "all.yaml").read_text().count("\nkind: ") >= 70
    assert nself(["k8s.generate", "--plain", "--split"], cwd=stack).code == 2


def test_include_secrets_writes_values_and_lists_them(nself, stack):
    r = nself(["k8s.generate", "--include-secrets", "--output", "secret-k8s"], cwd=stack)
    assert r.code == 0
    base = yaml.safe_load((stack / "secret-k8s/base/kustomization.yaml").read_text())
    assert "secrets.yaml" in base["resources"]
    assert "Zq8pLk2vWn4sTr7yXc1m" in (stack / "secret-k8s/base/secrets.yaml").read_text()


def test_environment_specific_values_land_in_overlays(nself, stack, kubectl):
    (stack / ".env.production").write_text("HASURA_LOG_LEVEL=warn\n")
    assert nself(["k8s.generate"], cwd=stack).code == 0
    prod = by_key(render(kubectl, stack / "k8s/overlays/production"))
    local = by_key(render(kubectl, stack / "k8s/overlays/local"))
    assert prod[("ConfigMap", "hasura-env")]["data"]["HASURA_GRAPHQL_LOG_LEVEL"] == "warn"
    assert local[("ConfigMap", "hasura-env")]["data"]["HASURA_GRAPHQL_LOG_LEVEL"] == "info"
    assert prod[("Namespace", "acme")]  # production namespace from nself.yml
    assert prod[("Deployment", "hasura")]["spec"]["replicas"] == 2


def test_custom_environments_from_nself_yml(tmp_path, nself, kubectl):
    root = make_project(tmp_path / "shop", "services:\n  web: {image: 'nginx:1.27', ports: ['80:80']}\n",
                        {"nself.yml": "environments:\n  qa: {namespace: shop-qa, replicas: 3}\n"})
    assert environments(load_project(root, process_env={})) == ["local", "staging", "production", "qa"]
    assert nself(["k8s.generate"], cwd=root).code == 0
    qa = by_key(render(kubectl, root / "k8s/overlays/qa"))
    assert qa[("Deployment", "web")]["spec"]["replicas"] == 3
    assert qa[("Deployment", "web")]["metadata"]["namespace"] == "shop-qa"


def test_json_report_lists_warnings(nself, stack):
    r = nself(["k8s.generate", "--json"], cwd=stack)
    report = r.json()
    assert report["mode"] == "kustomize" and report["objects"] > 70
    assert {"container_name", "devices"} <= {w["key"] for w in report["warnings"]}


# -- every corpus project ---------------------------------------------------------------------------
def _secret_values(project):
    """Secret values that could only come from a secret: a sample password that is
    also a service, image or plain value ("nextcloud") cannot be told apart."""
    values = set(project.variables.secret_values())
    public = {project.name}
    for svc in project.services.values():
        values |= {svc.environment[k] for k in svc.secret_env if len(svc.environment[k]) >= 6}
        public |= {svc.name, svc.object_name, svc.image or ""}
        public |= {v for k, v in svc.environment.items() if k not in svc.secret_env}
    public |= set(project.volumes) | set(project.networks)
    return {v for v in values if not any(v in p for p in public)}


@pytest.mark.parametrize("case", ["nself-stack", *CASES])
def test_corpus_case_generates_valid_kustomize(case, tmp_path, kubectl, validate_objects):
    source = STACK if case == "nself-stack" else CORPUS / case
    root = copy_tree(source, tmp_path / case)
    project = load_project(root, process_env={})
    report = generate(project, Options())
    assert report["mode"] == "kustomize"
    seen = set()
    text = ""
    for env in environments(project):
        docs = render(kubectl, root / "k8s" / "overlays" / env)
        assert docs, env
        keyed = {json.dumps(d, sort_keys=True): d for d in docs}
        validate_objects([d for k, d in keyed.items() if k not in seen])
        seen |= set(keyed)
        text += "".join(keyed)
    # Property: no secret value in any generated file without --include-secrets.
    written = "".join(p.read_text(errors="replace") for p in (root / "k8s").rglob("*") if p.is_file())
    for value in _secret_values(project):
        assert value not in written and value not in text, f"secret leaked ({len(value)} chars)"
    # Property: no probe holds an unwrapped shell string.
    for doc in yaml.safe_load_all(kustomize.plain(report_manifests(project), "x", include_secrets=False)):
        for container in _containers(doc):
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                command = container.get(probe, {}).get("exec", {}).get("command")
                if command:
                    assert not (len(command) == 1 and " " in command[0]), (case, container["name"])


def report_manifests(project):
    from nself.k8s.convert import convert
    from nself.k8s.settings import load_overlay

    return convert(project, load_overlay(project, project.env))


def _containers(doc):
    spec = (doc or {}).get("spec", {})
    template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
    if not template:
        return []
    return template["spec"].get("containers", []) + template["spec"].get("initContainers", [])


@pytest.mark.parametrize("case", ["nself-stack", *CASES])
def test_every_reachable_service_has_a_service(case):
    from nself.k8s.network import references

    project = load_project(STACK if case == "nself-stack" else CORPUS / case, process_env={})
    manifests = report_manifests(project)
    services = {o["metadata"]["name"] for o in manifests.all() if o["kind"] == "Service"}
    jobs = {o["metadata"]["name"] for o in manifests.all() if o["kind"] in ("Job", "CronJob")}
    warned = {w.service for w in manifests.warnings if w.code in ("no-port", "sidecar")}
    for name in references(project):
        svc = project.services[name]
        if svc.object_name in jobs or name in warned:
            continue
        assert svc.object_name in services, f"{case}: {name} is reached by name but has no Service"


def test_environment_image_tags_become_kustomize_images(nself, stack, kubectl):
    text = (stack / "nself.yml").read_text().replace(
        "  production:\n    namespace: acme\n",
        "  production:\n    namespace: acme\n    images: {hasura/graphql-engine: v2.40.0}\n")
    (stack / "nself.yml").write_text(text)
    assert nself(["k8s.generate"], cwd=stack).code == 0
    kustomization = yaml.safe_load((stack / "k8s/overlays/production/kustomization.yaml").read_text())
    assert {"name": "hasura/graphql-engine", "newTag": "v2.40.0"} in kustomization["images"]
    prod = by_key(render(kubectl, stack / "k8s/overlays/production"))
    assert prod[("Deployment", "hasura")]["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "hasura/graphql-engine:v2.40.0"
    local = by_key(render(kubectl, stack / "k8s/overlays/local"))
    assert local[("Deployment", "hasura")]["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "hasura/graphql-engine:v2.36.0"


def test_no_network_policies_flag(nself, stack):
    r = nself(["k8s.generate", "--plain", "--no-network-policies"], cwd=stack)
    assert r.code == 0 and "kind: NetworkPolicy" not in r.out
    assert "kind: NetworkPolicy" in nself(["k8s.generate", "--plain"], cwd=stack).out


@pytest.mark.parametrize("env", ["local", "production"])
def test_config_validate_and_generate_agree_on_warnings(nself, stack, env):
    """config.validate in CI says what k8s.generate will say about the same environment."""
    generated = nself(["--env", env, "k8s.generate", "--json"], cwd=stack).json()["warnings"]
    validated = nself(["--env", env, "config.validate", "--json"], cwd=stack).json()["warnings"]
    def keyed(found):
        return {(w["service"], w["key"], w["code"]) for w in found
                if env in w["message"] or w["code"] != "unpinned-image"}
    assert keyed(validated) == keyed(generated)
    assert any(w["code"] == "unpinned-image" for w in validated) == (env == "production")
