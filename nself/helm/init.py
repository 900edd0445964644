"""`helm.init`: write the chart for a project (from compose, or from existing manifests)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nself.errors import ConfigError
from nself.generated import write_tree
from nself.helm.chart import chart_files
from nself.k8s.generate import convert_environments
from nself.project.model import Project
from nself.project.names import is_dns1035


@dataclass(frozen=True)
class InitOptions:
    name: str | None = None
    output: str = "charts"
    force: bool = False


def chart_name(project: Project, name: str | None) -> str:
    chosen = name or project.settings.section("helm", "chart", "name") or project.name
    if not is_dns1035(chosen):
        raise ConfigError(f"chart name {chosen!r} is not a valid name",
                          hint="use lowercase letters, digits and '-', starting with a letter")
    return chosen


def build(project: Project, name: str) -> tuple[dict[str, bytes], list]:
    from nself.blueprints import render

    reference, environments, warnings = convert_environments(project, project.namespace)
    chart = project.settings.section("helm", "chart") or {}
    files = chart_files(name, str(chart.get("version") or "0.1.0"),
                        str(chart.get("appVersion") or "0.1.0"),
                        str(chart.get("description") or f"{project.name}, from its compose project"),
                        next(e for e in environments if e.name == project.env), environments)
    for rel, data in render("helm", {"name": name}).items():
        files[rel] = data.replace(b"<CHARTNAME>", name.encode())
    return dict(sorted(files.items())), warnings


def init(project: Project, options: InitOptions) -> dict:
    name = chart_name(project, options.name)
    files, warnings = build(project, name)
    target = project.root / options.output / name
    changes = write_tree(target, files, force=options.force)
    return {"chart": name, "output": str(target), "files": len(files), **changes,
            "warnings": [w.to_dict() for w in warnings]}


def chart_dir(project: Project, name: str | None, output: str = "charts") -> Path:
    path = project.root / output / chart_name(project, name)
    if not (path / "Chart.yaml").is_file():
        raise ConfigError(f"no chart at {path}", hint="create it with `nself helm.init`")
    return path
