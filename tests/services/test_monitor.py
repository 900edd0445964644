"""`monitor enable|profile` on a project made by `nself new`: the components each profile
brings, the scrape configuration (checked by Prometheus's own `promtool`), and round trips."""
from __future__ import annotations

import stat
import subprocess

import pytest
import yaml

from nself.services.monitor import COMPONENTS, PROFILES
from tests.services.test_enable import new_project, snapshot


def compose(root) -> dict:
    return yaml.safe_load((root / "docker-compose.yml").read_text())


def jobs(root) -> list[str]:
    config = yaml.safe_load((root / "monitoring" / "prometheus.yml").read_text())
    return [j["job_name"] for j in config["scrape_configs"]]


def test_enable_gives_the_minimal_profile_with_a_secret_grafana_password(nself, tmp_path):
    root = new_project(nself, tmp_path)
    r = nself(["monitor", "enable", "--json"], cwd=root)
    assert r.code == 0, r.err
    assert r.json()["components"] == ["prometheus", "grafana"] and r.json()["secrets"] == ["GRAFANA_ADMIN_PASSWORD"]
    services = compose(root)["services"]
    assert all(services[n] == COMPONENTS[n].block for n in ("prometheus", "grafana"))
    secrets = (root / ".env.secrets").read_text()
    assert "\nGRAFANA_ADMIN_PASSWORD=" in secrets and stat.S_IMODE((root / ".env.secrets").stat().st_mode) == 0o600
    password = secrets.split("GRAFANA_ADMIN_PASSWORD=")[1].split("\n")[0]
    assert password not in r.out + r.err
    assert jobs(root) == ["prometheus"]
    assert nself(["config.validate"], cwd=root).code == 0
    r = nself(["monitor", "enable"], cwd=root)
    assert r.code == 2 and "already enabled (profile minimal)" in r.err


@pytest.mark.parametrize("level, scraped", [
    ("standard", ["prometheus", "node-exporter", "postgres-exporter"]),
    ("full", ["prometheus", "node-exporter", "postgres-exporter", "cadvisor"]),
])
def test_profiles_add_their_exporters_and_scrape_them_and_going_back_restores_the_files(nself, tmp_path, level,
                                                                                       scraped):
    root = new_project(nself, tmp_path)
    assert nself(["monitor", "enable"], cwd=root).code == 0
    minimal = snapshot(root)
    r = nself(["monitor", "profile", level, "--json"], cwd=root)
    assert r.code == 0, r.err
    assert set(PROFILES[level]) <= set(compose(root)["services"]) and jobs(root) == scraped
    alerting = yaml.safe_load((root / "monitoring" / "prometheus.yml").read_text()).get("alerting")
    assert (alerting is not None) == (level == "full")
    assert nself(["monitor", "status", "--json"], cwd=root).json()["profile"] == level
    assert nself(["config.validate"], cwd=root).code == 0
    assert nself(["monitor", "profile", "minimal"], cwd=root).code == 0
    assert snapshot(root) == minimal and jobs(root) == ["prometheus"]


@pytest.mark.parametrize("level", list(PROFILES))
def test_promtool_accepts_each_profiles_scrape_config(nself, tmp_path, level):
    """promtool: Debian's prometheus package (.ci/run installs it)."""
    root = new_project(nself, tmp_path)
    assert nself(["monitor", "enable"], cwd=root).code == 0
    assert nself(["monitor", "profile", level], cwd=root).code == 0
    done = subprocess.run(["promtool", "check", "config", str(root / "monitoring" / "prometheus.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_unknown_profile_changes_nothing(nself, tmp_path):
    root = new_project(nself, tmp_path)
    before = snapshot(root)
    r = nself(["monitor", "profile", "maximal"], cwd=root)
    assert r.code == 2 and "unknown monitoring profile" in r.err
    assert snapshot(root) == before and not (root / "monitoring").exists()


def test_a_refused_enable_leaves_no_scrape_config_or_folder_behind(nself, tmp_path):
    """.env.secrets already sets GRAFANA_ADMIN_PASSWORD, empty: the grafana block's `:?` fails
    validation, and every file, the new monitoring/ folder too, is as it was."""
    root = new_project(nself, tmp_path)
    with open(root / ".env.secrets", "a") as handle:
        handle.write("GRAFANA_ADMIN_PASSWORD=\n")
    before = snapshot(root)
    r = nself(["monitor", "enable"], cwd=root)
    assert r.code == 3 and "nothing was changed" in r.err
    assert snapshot(root) == before and not (root / "monitoring").exists()
