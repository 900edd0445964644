"""`nself new` and `blueprint.*`: create a project from a blueprint, add blueprints to it,
and keep it up to date with its template by three-way merges.

A project remembers how it was made in `.nself/blueprints/<name>/`: the answers and the
pristine render. `blueprint.update` merges (pristine → today's render) into the project
with `git merge-file`, so the user's edits survive; `blueprint.check` says whether the
project is behind (for CI).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from nself import __version__
from nself.blueprints import render
from nself.errors import Exit, NselfError, UsageError
from nself.project.names import is_dns1035
from nself.resources import data_dir

STATE = Path(".nself") / "blueprints"
# The 26 providers of the product plan (the cloud registry decides what each one supports).
PROVIDERS = ("aws", "gcp", "azure", "digitalocean", "hetzner", "linode", "vultr", "ionos", "ovh",
             "scaleway", "oracle", "ibm", "upcloud", "contabo", "netcup", "hostinger", "hostwinds",
             "kamatera", "ssdnodes", "exoscale", "alibaba", "tencent", "yandex", "racknerd", "buyvm",
             "time4vps")
DESCRIPTIONS = {
    "project": "a new project: tasks.py, nself.yml, docker-compose.yml, env files (nself new)",
    "k8s": "the kustomize tree skeleton that k8s.generate completes",
    "helm": "the chart skeleton that helm.init completes",
    "provider": "provider settings and a cloud-init that prepares a container host (provider:<name>)",
}
_NEVER_TRACKED = {".env.secrets"}   # written by the post-generation hook, never merged


def available() -> list[dict]:
    folder = data_dir("blueprints")
    return [{"name": p.name, "description": DESCRIPTIONS.get(p.name, "")}
            for p in sorted(folder.iterdir()) if (p / "cookiecutter.json").is_file()]


def parse_extra(blueprint: str, extra: list[str]) -> dict:
    """`key=value` pairs checked against the blueprint's variables (booleans converted)."""
    defaults = json.loads((data_dir("blueprints") / blueprint / "cookiecutter.json").read_text())
    out = {}
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep or key not in defaults or key.startswith("_"):
            known = ", ".join(k for k in defaults if not k.startswith("_"))
            raise UsageError(f"--extra {item!r}: not a variable of the {blueprint} blueprint",
                             hint=f"use KEY=VALUE with one of: {known}")
        default = defaults[key]
        if isinstance(default, bool):
            if value.lower() not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
                raise UsageError(f"--extra {item!r}: {key} is yes or no", hint=f"e.g. {key}=no")
            out[key] = value.lower() in ("true", "yes", "1", "on")
        elif isinstance(default, list):
            if value not in default:
                raise UsageError(f"--extra {item!r}: {key} is one of {', '.join(map(str, default))}",
                                 hint=f"e.g. {key}={default[0]}")
            out[key] = value
        else:
            out[key] = value
    return out


def new(name: str, *, blueprint: str = "project", no_input: bool = False, extra: list[str] = (),
        output: Path) -> dict:
    if not is_dns1035(name) or len(name) > 42:
        raise UsageError(f"{name!r} is not a valid project name",
                         hint="use lowercase letters, digits and '-', starting with a letter (≤ 42)")
    if blueprint != "project":
        raise UsageError(f"`nself new` makes projects; {blueprint!r} is added with `nself blueprint.add`",
                         hint="nself new NAME [--blueprint project]")
    target = (output / name).resolve()
    if target.exists() and any(target.iterdir()):
        raise NselfError(f"{target} already exists and is not empty", code=Exit.GENERAL,
                         hint="choose another name or --output")
    if not no_input and not sys.stdin.isatty():
        raise UsageError("no terminal to ask the blueprint's questions on", hint="pass --no-input")
    extra_context = {**parse_extra(blueprint, list(extra)), "project_name": name}
    if no_input:
        extra_context = _minimal_defaults(blueprint, extra_context)
    from cookiecutter.exceptions import FailedHookException
    from cookiecutter.generate import generate_context, generate_files
    from cookiecutter.prompt import prompt_for_config

    template = data_dir("blueprints") / blueprint
    context = generate_context(context_file=str(template / "cookiecutter.json"),
                               extra_context=extra_context)
    answers = {k: v for k, v in prompt_for_config(context, no_input).items() if not k.startswith("_")}
    if answers["project_name"] != name:
        raise UsageError("the project name is the NAME argument", hint=f"nself new {answers['project_name']}")
    output.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=output))
    try:
        try:
            made = Path(generate_files(repo_dir=str(template),
                                       context={"cookiecutter": {**context["cookiecutter"], **answers}},
                                       output_dir=str(staging), accept_hooks=True))
        except FailedHookException as exc:
            raise UsageError(f"the {blueprint} blueprint refused: {exc}", hint="check the answers") from None
        _remember(made, blueprint, answers)
        os.rename(made, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"project": name, "path": str(target), "blueprint": blueprint, "answers": answers}


def _minimal_defaults(blueprint: str, chosen: dict) -> dict:
    """Without questions, `stack=minimal` means PostgreSQL alone: the optional services
    default to no, and only those named with --extra (`redis=yes`) are added."""
    if chosen.get("stack") != "minimal":
        return chosen
    defaults = json.loads((data_dir("blueprints") / blueprint / "cookiecutter.json").read_text())
    return {**{key: False for key, value in defaults.items() if isinstance(value, bool)}, **chosen}


def _remember(project: Path, blueprint: str, answers: dict) -> None:
    state = project / STATE / blueprint
    pristine = state / "pristine"
    if pristine.exists():
        shutil.rmtree(pristine)
    for rel, data in _render_project(blueprint, answers).items():
        path = pristine / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (state / "answers.json").write_text(json.dumps({"nself": __version__, "answers": answers},
                                                   indent=2, sort_keys=True) + "\n")


def _render_project(blueprint: str, answers: dict) -> dict[str, bytes]:
    return {rel: data for rel, data in render(blueprint, answers).items() if rel not in _NEVER_TRACKED}


def _state(root: Path, blueprint: str) -> tuple[dict, dict[str, bytes]]:
    state = root / STATE / blueprint
    try:
        answers = json.loads((state / "answers.json").read_text())["answers"]
    except (OSError, ValueError, KeyError):
        raise NselfError(f"{root} has no record of the {blueprint} blueprint", code=Exit.CONFIG,
                         hint="only projects made by `nself new` can be checked and updated") from None
    pristine = {p.relative_to(state / "pristine").as_posix(): p.read_bytes()
                for p in sorted((state / "pristine").rglob("*")) if p.is_file()}
    return answers, pristine


def check(root: Path, blueprint: str = "project") -> dict:
    answers, pristine = _state(root, blueprint)
    current = _render_project(blueprint, answers)
    behind = sorted(rel for rel in set(pristine) | set(current) if pristine.get(rel) != current.get(rel))
    return {"blueprint": blueprint, "behind": bool(behind), "files": behind}


def update(root: Path, blueprint: str = "project") -> dict:
    _refuse_dirty(root)
    answers, pristine = _state(root, blueprint)
    current = _render_project(blueprint, answers)
    merged, conflicts, kept = [], [], []
    for rel in sorted(set(pristine) | set(current)):
        base, theirs = pristine.get(rel), current.get(rel)
        if base == theirs:
            continue
        path = root / rel
        ours = path.read_bytes() if path.is_file() else None
        if ours is None:
            if base is None and theirs is not None:      # a file the template gained
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(theirs)
                merged.append(rel)
            else:
                kept.append(rel)                            # the user deleted it: leave it gone
            continue
        if theirs is None:                                 # the template dropped it
            if ours == base:
                path.unlink()
                merged.append(rel)
            else:
                kept.append(rel)
            continue
        result, clean = _merge_file(ours, base or b"", theirs, rel)
        path.write_bytes(result)
        (merged if clean else conflicts).append(rel)
    _remember(root, blueprint, answers)
    report = {"blueprint": blueprint, "merged": merged, "conflicts": conflicts, "kept": kept}
    if conflicts:
        raise NselfError(f"{len(conflicts)} file(s) have conflicts between your edits and the template",
                         code=Exit.GENERAL, details=conflicts,
                         hint="resolve the <<<<<<< / >>>>>>> markers in them, then commit")
    return report


def _merge_file(ours: bytes, base: bytes, theirs: bytes, rel: str) -> tuple[bytes, bool]:
    git = shutil.which("git")
    if not git:
        raise NselfError("git is needed for three-way merges", code=Exit.NOT_FOUND,
                         hint="install git")
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for label, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(tmp) / label
            path.write_bytes(data)
            paths.append(str(path))
        out = subprocess.run([git, "merge-file", "-p", "-L", f"{rel} (yours)", "-L", f"{rel} (before)",
                              "-L", f"{rel} (template)", *paths], capture_output=True)
    if out.returncode < 0 or out.returncode > 127:
        raise NselfError(f"git merge-file failed on {rel}: {out.stderr.decode(errors='replace')}",
                         code=Exit.GENERAL, hint="merge the file by hand")
    return out.stdout, out.returncode == 0


def _refuse_dirty(root: Path) -> None:
    git = shutil.which("git")
    if not git:
        return
    inside = subprocess.run([git, "-C", str(root), "rev-parse", "--is-inside-work-tree"],
                            capture_output=True, text=True)
    if inside.returncode != 0:
        return
    status = subprocess.run([git, "-C", str(root), "status", "--porcelain"], capture_output=True,
                            text=True)
    if status.stdout.strip():
        raise NselfError("the project has uncommitted changes", code=Exit.GENERAL,
                         details=status.stdout.strip().splitlines()[:20],
                         hint="commit or stash them first, so the merge can be reviewed and undone")


def add_provider(root: Path, provider: str, project_name: str, force: bool) -> dict:
    from nself.generated import write_tree

    if provider not in PROVIDERS:
        raise UsageError(f"unknown provider {provider!r}", hint="one of: " + ", ".join(PROVIDERS))
    files = render("provider", {"provider": provider, "project": project_name})
    target = root / "providers" / provider
    return {"output": str(target), **write_tree(target, files, force=force)}
