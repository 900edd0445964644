"""Shared fixtures: the vendored test data (tests/data), project copies, the CLI in-process."""
from __future__ import annotations

import http.server
import io
import json
import os
import shutil
import sys
import threading
import time
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# The fixtures and provider API descriptions the tests read, vendored (tests/data/README.md).
# NSELF_SHARED may point at another folder of the same layout (fixtures/, specs/) while developing.
DATA = Path(os.environ.get("NSELF_SHARED") or REPO / "tests" / "data").resolve()
STACK = DATA / "fixtures" / "nself-stack"
CORPUS = DATA / "fixtures" / "compose-corpus"
SPECS = DATA / "specs"
# helm, helm4 and kubectl that .ci/install_tools.py put into .ci/bin when the machine lacks them.
if (REPO / ".ci" / "bin").is_dir():
    os.environ["PATH"] = f"{REPO / '.ci' / 'bin'}{os.pathsep}{os.environ['PATH']}"


def copy_tree(src: Path, dest: Path) -> Path:
    """Copy a (read-only) fixture so the test can write into it."""
    shutil.copytree(src, dest, dirs_exist_ok=True)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    return dest


@pytest.fixture(scope="session", autouse=True)
def _data_present():
    if not STACK.is_dir():
        pytest.exit(f"test data not found at {DATA} (unset NSELF_SHARED to use tests/data)", returncode=3)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    """Every test starts with its own empty cache directory: a warm ~/.cache/nself would hide a
    broken blueprint render or compose validation, and tests must not write into the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


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


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/* from the current output (then review the diff)")


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")


def make_project(root: Path, compose: str, files: dict[str, str] | None = None) -> Path:
    """A project folder from a compose text and extra files (relative path → text)."""
    import textwrap

    root.mkdir(parents=True, exist_ok=True)
    (root / "compose.yaml").write_text(textwrap.dedent(compose))
    for name, text in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.fixture(scope="session")
def validate_objects():
    """Validate objects strictly against the Kubernetes 1.30 and 1.37 schemas that
    kubernetes-validate ships (nself.testing.schema: one validator per kind, built once)."""
    from nself.testing import schema

    def check(docs):
        for doc in docs:
            for version in ("1.30", "1.37"):
                assert schema.validator(version, doc["kind"], doc["apiVersion"]) is not None, \
                    f"{doc['apiVersion']} {doc['kind']} does not exist in Kubernetes {version}"
                error = schema.problem(doc, version)
                if error is not None:
                    raise AssertionError(f"{doc['kind']}/{doc['metadata']['name']} (Kubernetes "
                                         f"{version}): {error}")
    return check


pytest_plugins = ["nself.testing.plugin"]


@contextmanager
def serve_folder(folder: Path):
    """A static HTTP server for `folder` on 127.0.0.1 (chart repositories, installer scripts);
    yields its base URL."""
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kw):
            super().__init__(*args, directory=str(folder), **kw)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@contextmanager
def answering(body: bytes, delay: float = 0.0):
    """An HTTP server that answers every request 200 with `body` after `delay` seconds: an
    outage page, a proxy's `null`, or a provider that hangs."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the standard library's name
            time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture
def oci_registry(tmp_path):
    """A real OCI registry (Debian's docker-registry) on 127.0.0.1; yields `127.0.0.1:PORT`."""
    import socket
    import subprocess
    import time

    import yaml

    binary = shutil.which("docker-registry")
    assert binary, "docker-registry is needed (`.ci/run` installs it)"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "registry.yml"
    config.write_text(yaml.safe_dump({
        "version": 0.1, "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "registry-data")}},
        "http": {"addr": f"127.0.0.1:{port}"}}))
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)
