"""The overlays' patch layout (issue 21, scale). kustomize matches every patch against every
object, so the overlays hold one patch per kind and change (a preset that changes every
Deployment alike is one file), not one per object.

Before/after: on the stack and the seven real applications, in every environment, the
grouped overlay renders byte for byte what the layout before it renders (one JSON 6902
file per changed object, built here from the converted objects alone)."""
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import STACK, copy_tree, make_project
from nself.k8s import kustomize
from nself.k8s.generate import convert_environments
from nself.k8s.yamlout import dump, dump_all
from nself.project import load_project

APPS = Path(__file__).resolve().parent.parent / "data" / "apps"
FILES = {"mattermost": ("docker-compose.yml", "docker-compose.postgres.yml")}
PROJECTS = ["nself-stack", *sorted(p.name for p in APPS.iterdir())]
KUBECTL = shutil.which("kubectl")


def kustomize_build(folder: Path) -> str:
    assert KUBECTL, "kubectl is needed (`.ci/run` installs it)"
    out = subprocess.run([KUBECTL, "kustomize", str(folder)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def per_object_overlay(base: dict, env: kustomize.Environment) -> dict[str, bytes]:
    """The layout before: a JSON 6902 file per changed object, named by kind and name."""
    objects = {(o["kind"], o["metadata"]["name"]): o for o in env.manifests.all()
               if o["kind"] != "Namespace"}
    kustomization = {"apiVersion": kustomize.KUSTOMIZE_API, "kind": "Kustomization",
                     "namespace": env.namespace, "resources": ["../../base"], "patches": []}
    files = {}
    extra = [o for key, o in objects.items() if key not in base]
    if extra:
        files["extra.yaml"] = dump_all(extra).encode()
        kustomization["resources"].append("extra.yaml")
    for index, (key, old) in enumerate(sorted(base.items())):
        if key[0] == "Namespace":
            continue
        rel = f"p{index}.yaml"
        if key not in objects:
            files[rel] = dump({"apiVersion": old["apiVersion"], "kind": key[0],
                               "metadata": {"name": key[1]}, "$patch": "delete"}).encode()
            kustomization["patches"].append({"path": rel})
        elif ops := kustomize.json_patch(old, objects[key]):
            files[rel] = dump(ops).encode()
            kustomization["patches"].append({"path": rel, "target": {"kind": key[0], "name": key[1]}})
    files["kustomization.yaml"] = dump(kustomization).encode()
    return files


def by_key(docs) -> dict:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs if d}


def load(name: str, root: Path):
    return load_project(root, files=FILES.get(name, ()), process_env={}, lenient=True)


@pytest.mark.parametrize("name", PROJECTS)
def test_grouped_overlays_render_what_one_patch_per_object_renders(name, tmp_path):
    root = copy_tree(STACK if name == "nself-stack" else APPS / name, tmp_path / name)
    project = load(name, root)
    base, envs, _ = convert_environments(project, project.namespace)
    tree = kustomize.tree(base, envs, include_secrets=False)
    write(tmp_path / "after", tree)
    write(tmp_path / "before", {k: v for k, v in tree.items() if k.startswith("base/")})
    base_objects = {(o["kind"], o["metadata"]["name"]): o for o in base.all()}
    grouped = 0
    for env in envs:
        write(tmp_path / "before" / "overlays" / env.name, per_object_overlay(base_objects, env))
        after = kustomize_build(tmp_path / "after" / "overlays" / env.name)
        assert after == kustomize_build(tmp_path / "before" / "overlays" / env.name), env.name
        assert by_key(yaml.safe_load_all(after)) == by_key(
            kustomize.namespaced(env.manifests, env.namespace, include_secrets=False)), env.name
        listed = yaml.safe_load(tree[f"overlays/{env.name}/kustomization.yaml"]).get("patches", [])
        grouped += sum("|" in p.get("target", {}).get("name", "") or
                       ("target" in p and "name" not in p["target"]) for p in listed)
    if name == "nself-stack":
        assert grouped, "the stack's production preset changes several Deployments alike"


def synthetic(count: int) -> str:
    services = "".join(
        f"  web{i}: {{image: 'nginx:1.27', ports: ['{8000 + i}:80'], environment: {{N: '{i}'}}}}\n"
        for i in range(count))
    return "services:\n" + services + "  db: {image: 'postgres:16', volumes: ['pg:/var/lib/postgresql/data']}\n" \
        "volumes: {pg: {}}\n"


def production_patches(tmp_path: Path, count: int) -> list[dict]:
    root = make_project(tmp_path / f"p{count}", synthetic(count), {})
    project = load_project(root, process_env={})
    base, envs, _ = convert_environments(project, project.namespace)
    tree = kustomize.tree(base, envs, include_secrets=False)
    return yaml.safe_load(tree["overlays/production/kustomization.yaml"])["patches"]


def test_patch_count_does_not_grow_with_the_services(tmp_path):
    few, many = production_patches(tmp_path, 3), production_patches(tmp_path, 40)
    assert len(few) == len(many)
    assert {"kind": "Deployment"} in [p["target"] for p in many]   # every web Deployment alike


def test_a_name_group_selects_exactly_its_names(tmp_path):
    """`web1` changes and `web10` does not: the target must not select a name's prefix."""
    root = make_project(tmp_path / "p", synthetic(11), {
        "nself.yml": "kubernetes:\n  generate:\n    services:\n"
                     "      web1: {replicas: 3}\n      web2: {replicas: 3}\n"})
    project = load_project(root, process_env={})
    base, envs, _ = convert_environments(project, project.namespace)
    production = next(e for e in envs if e.name == "production")
    overlay = kustomize.overlay({(o["kind"], o["metadata"]["name"]): o for o in base.all()},
                                production)
    targets = [p["target"] for p in yaml.safe_load(overlay["kustomization.yaml"])["patches"]
               if "target" in p]
    assert {"kind": "Deployment", "name": "(web1|web2)"} in targets
    write(tmp_path / "tree", kustomize.tree(base, envs, include_secrets=False))
    rendered = by_key(yaml.safe_load_all(kustomize_build(tmp_path / "tree/overlays/production")))
    assert rendered == by_key(kustomize.namespaced(production.manifests, production.namespace,
                                                   include_secrets=False))
