"""A non-editable install into a fresh venv carries the package data and a working `nself`."""
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import REPO, STACK, copy_tree


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pkg")
    wheels = tmp / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels), str(REPO)], check=True, capture_output=True)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    wheel = next(wheels.glob("nself-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                    str(wheel)], check=True, capture_output=True)
    # The dependencies come from this environment (installing them again from the
    # network would only test PyPI); nself itself must come from the wheel.
    deps = sysconfig.get_paths()["purelib"]
    Path(purelib, "zz_test_deps.pth").write_text(deps + "\n")
    return venv


def run(venv, *args, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_") and k != "PYTHONPATH"}
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_wheel_holds_the_package_data(installed):
    r = run(installed, "python", "-c",
            "import nself, nself.resources as r; print(nself.__file__); "
            "print(r.data_dir('blueprints')); print(r.data_dir('overlays'))", cwd="/")
    module, blueprints, overlays = r.stdout.split()
    assert module.startswith(str(installed)), "nself was imported from the source tree"
    assert blueprints.endswith("nself/_data/blueprints") and Path(blueprints, "README.md").is_file()
    assert {p.name for p in Path(overlays).iterdir()} == {"local.yml", "staging.yml", "production.yml"}
    assert Path(module).parent.joinpath("project", "data", "compose-spec.json").is_file()
    assert Path(module).parent.joinpath("testing", "clouds", "data", "aws.yml").is_file()   # the fakes' catalogs


def test_the_console_script_works(installed, tmp_path):
    root = copy_tree(STACK, tmp_path / "acme")
    r = run(installed, "nself", "config.validate", cwd=root)
    assert r.returncode == 0, r.stderr
    r = run(installed, "nself", "config.show", "--json", cwd=root)
    assert r.returncode == 0 and '"project": "acme"' in r.stdout
