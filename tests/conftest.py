"""Shared fixtures: the read-only shared fixtures, project copies, the CLI in-process."""
from __future__ import annotations

import io
import json
import os
import shutil
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NSELF_SHARED", REPO.parent / "shared")).resolve()
STACK = SHARED / "fixtures" / "nself-stack"
CORPUS = SHARED / "fixtures" / "compose-corpus"


def copy_tree(src: Path, dest: Path) -> Path:
    """Copy a (read-only) fixture so the test can write into it."""
    shutil.copytree(src, dest, dirs_exist_ok=True)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    return dest


@pytest.fixture(scope="session", autouse=True)
def _shared_present():
    if not STACK.is_dir():
        pytest.exit(f"shared fixtures not found at {SHARED} (set NSELF_SHARED)", returncode=3)


@pytest.fixture
def stack(tmp_path) -> Path:
    """A writable copy of the full nself stack, with an nself.yml like `nself new` writes."""
    root = copy_tree(STACK, tmp_path / "acme")
    (root / "nself.yml").write_text(
        "version: '1'\n"
        "project:\n  name: acme\n"
        "environments:\n  default: local\n"
        "  staging:\n    namespace: acme-stg\n    pass_env: [CI_COMMIT_SHA]\n"
        "  production:\n    namespace: acme\n"
        "kubernetes:\n  generate:\n    ingress: nginx\n    replicas:\n      default: 1\n      hasura: 2\n"
        "    resources:\n      postgres: large\n      hasura: medium\n"
        "helm:\n  chart:\n    name: acme\n    version: 1.0.0\n"
        "providers:\n  default: hetzner\n"
        "sync:\n  exclude: ['*.log', node_modules]\n"
        "deploy:\n  hooks:\n    pre-deploy: ['nself config.validate']\n")
    # The fixture's .env sets ENV=dev; a real project keeps it there too.
    return root


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def nself(monkeypatch):
    """Run the nself Program in-process: nself(["config.show"], cwd=root) → Result."""
    from nself.cli import NselfConfig, NselfProgram
    from nself import __version__

    def run(argv: list[str], cwd: Path | None = None, env: dict | None = None) -> Result:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        for key in [k for k in os.environ if k.startswith("NSELF_") or k == "ENV"]:
            monkeypatch.delenv(key)
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        out, err = io.StringIO(), io.StringIO()
        program = NselfProgram(name="nself", binary="nself", binary_names=["nself"],
                               version=__version__, config_class=NselfConfig)
        with redirect_stdout(out), redirect_stderr(err):
            sys.modules.pop("tasks", None)
            code = program.run(["nself", *argv], exit=False)
        return Result(code or 0, out.getvalue(), err.getvalue())

    return run
