"""What the helm tasks share: the chart, release, namespace, values files and the
secret values of an environment, turned into helm steps."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nself.helm.init import chart_dir, chart_name
from nself.k8s.convert import convert
from nself.k8s.settings import load_overlay
from nself.k8s.yamlout import dump
from nself.project.model import Project


@dataclass(frozen=True)
class Target:
    chart: Path
    release: str
    namespace: str
    env: str
    context: str | None
    values: tuple[str, ...]        # values files, values.yaml first

    @property
    def chart_arg(self) -> str:
        return str(self.chart)


def target(project: Project, *, name: str | None = None, namespace: str | None = None,
           context: str | None = None, extra_values: tuple[str, ...] = (),
           output: str = "charts") -> Target:
    chart = chart_dir(project, None, output)
    release = name or project.settings.section("helm", "release") or chart_name(project, None)
    env_values = chart / f"values-{project.env}.yaml"
    values = [str(chart / "values.yaml")] + ([str(env_values)] if env_values.is_file() else [])
    values += [str(project.root / v) for v in extra_values]
    return Target(chart=chart, release=release, namespace=namespace or project.namespace,
                  env=project.env, context=context or project.settings.env_target(project.env).get("context"),
                  values=tuple(values))


def secret_values(project: Project) -> str | None:
    """The environment's secret values as a values document for stdin (never a file)."""
    manifests = convert(project, load_overlay(project, project.env), include_secrets=True)
    values = {s["metadata"]["name"]: dict(s["stringData"]) for s in manifests.secrets}
    return dump({"secretValues": values}) if values else None


def archive_name(chart: Path, version: str | None = None) -> str:
    """The file `helm package` writes: <name>-<version>.tgz, the version from Chart.yaml unless given."""
    import yaml

    from nself.errors import ConfigError

    if not (chart / "Chart.yaml").is_file():
        raise ConfigError(f"no chart at {chart}", hint="create it with `nself helm.init`")
    meta = yaml.safe_load((chart / "Chart.yaml").read_text()) or {}
    return f"{meta.get('name', chart.name)}-{version or meta.get('version')}.tgz"
