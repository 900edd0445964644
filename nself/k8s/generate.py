"""`k8s.generate`: load every environment, convert, lay out, write safely."""
from __future__ import annotations

from dataclasses import dataclass

from nself.errors import ConfigError, NselfError
from nself.generated import write_tree
from nself.k8s import kustomize
from nself.k8s.convert import Manifests, convert
from nself.k8s.convert import Options as ConvertOptions
from nself.k8s.settings import generate_settings, load_overlay
from nself.project.envfiles import ALIASES, CANONICAL_ENVS
from nself.project.loader import for_environment
from nself.project.model import Project
from nself.project.names import check_namespace
from nself.project.warnings import Warning

ENV_SPECIFIC = ("unpinned-image", "unset-variable", "ingress-host")  # BASE_DOMAIN may differ


@dataclass(frozen=True)
class Options:
    output: str | None = None        # None: kubernetes.generate.output (tree/split) or stdout (plain)
    namespace: str | None = None
    include_secrets: bool = False
    plain: bool = False
    split: bool = False
    strict: bool = False
    force: bool = False
    network_policies: bool | None = None   # None: as nself.yml says (default on)


def convert_environments(project: Project, namespace: str, include_secrets: bool = False,
                         network_policies: bool | None = None,
                         ) -> tuple[Manifests, list[kustomize.Environment], list[Warning]]:
    """Every environment's objects: the selected one (the base/reference) and the others,
    with the warnings of all of them. Shared by k8s.generate and helm.init."""
    warnings: list[Warning] = list(project.warnings)
    # The base is the selected environment's objects; every overlay (its own included,
    # which is then empty) holds the differences from it.
    base = convert(project, load_overlay(project, project.env),
                   ConvertOptions(include_secrets, namespace, network_policies))
    warnings += base.warnings
    envs: list[kustomize.Environment] = []
    loaded_envs: list[Project] = [project]
    for env in environments(project):
        if env == project.env:
            envs.append(kustomize.Environment(env, namespace, base))
            continue
        loaded = for_environment(loaded_envs, env)
        loaded_envs.append(loaded)
        manifests = convert(loaded, load_overlay(loaded, env),
                            ConvertOptions(include_secrets, loaded.namespace, network_policies))
        # Base warnings cover the project; each environment adds only its own kind.
        own = [*manifests.warnings, *(loaded.warnings if loaded is not project else ())]
        warnings += [w for w in own if w.code in ENV_SPECIFIC]
        envs.append(kustomize.Environment(env, loaded.namespace, manifests))
    return base, envs, _unique(warnings)


def environments(project: Project) -> list[str]:
    """nself's three environments plus those declared in nself.yml, in a stable order."""
    declared = [ALIASES.get(e, e) for e in project.settings.environments()]
    return [*CANONICAL_ENVS, *sorted(set(declared) - set(CANONICAL_ENVS))]


def generate(project: Project, options: Options) -> dict:
    if options.plain and options.split:
        raise NselfError("--plain and --split are different layouts", code=2, hint="pass one of them")
    selected_ns = check_namespace(options.namespace) if options.namespace else project.namespace
    base, envs, warnings = convert_environments(project, selected_ns, options.include_secrets,
                                                options.network_policies)
    if options.strict and warnings:
        raise ConfigError(f"{len(warnings)} warning(s) with --strict",
                          details=[str(w) for w in warnings[:50]],
                          hint="fix them, or drop --strict")
    selected = next(e for e in envs if e.name == project.env)
    report = {"environment": project.env, "namespace": selected_ns,
              "objects": len(selected.manifests.all()),
              "secrets": len(selected.manifests.secrets),
              "warnings": [w.to_dict() for w in warnings]}
    if options.plain:
        text = kustomize.plain(selected.manifests, selected_ns, include_secrets=options.include_secrets)
        if options.output in (None, "-"):
            return {**report, "mode": "plain", "output": "-", "text": text}
        path = project.root / options.output
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return {**report, "mode": "plain", "output": str(path)}
    target = project.root / (options.output or generate_settings(project).output)
    if options.split:
        files_out = _split(selected.manifests, selected_ns, options.include_secrets)
    else:
        from nself.blueprints import render

        from nself.k8s.patches import user_patches

        files_out = dict(kustomize.tree(base, envs, include_secrets=options.include_secrets,
                                        user_patches=user_patches(target, envs)))
        skeleton = render("k8s", {"project": project.name, "output": target.name})
        files_out.update(skeleton)
    changes = write_tree(target, dict(sorted(files_out.items())), force=options.force)
    return {**report, "mode": "split" if options.split else "kustomize", "output": str(target),
            "files": len(files_out), **changes}


def _split(manifests: Manifests, namespace: str, include_secrets: bool) -> dict[str, bytes]:
    return {f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml":
            (kustomize.HEADER + kustomize.dump(doc)).encode()
            for doc in kustomize.namespaced(manifests, namespace, include_secrets=include_secrets)}


def _unique(warnings: list[Warning]) -> list[Warning]:
    seen, out = set(), []
    for w in warnings:
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out

