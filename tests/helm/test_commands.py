"""The helm command family: exact command lines, dry runs, and real runs against local
chart repositories, an OCI registry and an upload API."""
import gzip
import http.server
import io
import os
import shutil
import socket
import subprocess
import tarfile
import threading

import pytest
import yaml

from nself.helm import binary
from tests.conftest import serve_folder

HELM = shutil.which("helm")


def test_install_and_upgrade_command_lines():
    step = binary.install("acme", "charts/acme", "acme", ["charts/acme/values.yaml"], ["a.b=1"],
                          "secretValues: {}", wait=True, timeout=300, atomic=True, context="prod")
    assert list(step.argv) == ["helm", "install", "acme", "charts/acme", "--namespace", "acme",
                               "--create-namespace", "--values", "charts/acme/values.yaml", "--values", "-",
                               "--set", "a.b=1", "--wait", "--timeout", "300s", "--atomic", "--kube-context", "prod"]
    assert step.data == "secretValues: {}" and "secretValues" not in step.display() + str(step.to_dict())
    up = binary.install("acme", "c", "ns", [], [], None, upgrade=True, install=True, reuse_values=True)
    assert list(up.argv) == ["helm", "upgrade", "--install", "acme", "c", "--namespace", "ns",
                             "--create-namespace", "--reuse-values"]


@pytest.mark.parametrize("helm, spelling", [("helm", "--atomic"), ("helm4", "--rollback-on-failure")])
def test_the_runner_spells_atomic_for_the_installed_helm(helm, spelling):
    step = binary.install("acme", "c", "ns", [], [], None, atomic=True)
    runner = binary.HelmRunner(shutil.which(helm))
    assert runner.argv(step)[1:] == (*step.argv[1:-1], spelling)
    assert runner.argv(binary.status("acme", "ns"))[1:] == binary.status("acme", "ns").argv[1:]


def test_other_command_lines():
    assert list(binary.rollback("acme", "ns", 3).argv) == ["helm", "rollback", "acme", "3", "--namespace", "ns",
                                                           "--wait"]
    assert list(binary.rollback("acme", "ns").argv) == ["helm", "rollback", "acme", "--namespace", "ns", "--wait"]
    assert list(binary.uninstall("acme", "ns", keep_history=True).argv) == [
        "helm", "uninstall", "acme", "--namespace", "ns", "--keep-history"]
    assert list(binary.list_releases(None, all_releases=True, all_namespaces=True).argv) == [
        "helm", "list", "--output", "json", "--all-namespaces", "--all"]
    assert list(binary.history("acme", "ns", 5).argv) == [
        "helm", "history", "acme", "--namespace", "ns", "--output", "json", "--max", "5"]
    assert list(binary.status("acme", "ns").argv) == ["helm", "status", "acme", "--namespace", "ns", "--output",
                                                      "json"]
    assert list(binary.package("c", "dist", "1.0.0", "2.0").argv) == [
        "helm", "package", "c", "--destination", "dist", "--version", "1.0.0", "--app-version", "2.0"]
    assert list(binary.repo("add", "b", "https://x").argv) == ["helm", "repo", "add", "b", "https://x"]
    assert list(binary.push("a.tgz", "oci://r/c", plain_http=True).argv) == ["helm", "push", "a.tgz", "oci://r/c",
                                                                            "--plain-http"]


@pytest.fixture
def stack_chart(stack, nself):
    assert nself(["helm.init"], cwd=stack).code == 0
    return stack


@pytest.fixture
def helm_home(tmp_path, monkeypatch):
    """Helm's config, cache and data in the test's own folder."""
    for name in ("HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return tmp_path


def test_dry_run_prints_the_plan_without_secrets(stack_chart, nself):
    r = nself(["helm.install", "--dry-run", "--env", "prod", "--atomic", "--json"], cwd=stack_chart)
    assert r.code == 0, r.err
    step, = r.json()["plan"]["steps"]
    argv = step["argv"]
    assert step["data"].endswith("bytes, not shown)") and step["kind"] == "run" and step["on"] == "local"
    assert argv[:6] == ["helm", "install", "acme", str(stack_chart / "charts/acme"), "--namespace", "acme"]
    assert str(stack_chart / "charts/acme/values-production.yaml") in argv and "--values" in argv
    assert "Zq8pLk2vWn4sTr7yXc1m" not in r.out
    r = nself(["helm", "rollback", "2", "--dry-run"], cwd=stack_chart)
    assert "helm rollback acme 2 --namespace acme-local --wait" in r.out


def test_missing_helm_binary_is_a_clear_error(stack_chart, nself):
    r = nself(["helm.lint"], cwd=stack_chart, env={"NSELF_HELM": "/nonexistent/helm"})
    assert r.code == 127 and "helm binary was not found" in r.err and "https://helm.sh" in r.err


def test_template_prints_manifests_without_secret_values(stack_chart, nself):
    r = nself(["helm.template", "--env", "staging"], cwd=stack_chart)
    assert r.code == 0, r.err
    docs = [d for d in yaml.safe_load_all(r.out) if d]
    assert any(d["kind"] == "StatefulSet" and d["metadata"]["name"] == "postgres" for d in docs)
    assert "Zq8pLk2vWn4sTr7yXc1m" not in r.out and "[REDACTED]" not in r.out
    r = nself(["helm.template", "--set", "services.hasura.replicaz=3"], cwd=stack_chart)
    assert r.code == 3 and "replicaz" in r.err


def test_lint_and_package(stack_chart, nself, helm_home):
    r = nself(["helm.lint", "--strict"], cwd=stack_chart)
    assert r.code == 0 and "0 chart(s) failed" in r.out, r.err
    r = nself(["helm.package", "--version", "1.2.3", "--json"], cwd=stack_chart)
    assert r.code == 0 and r.json()["archive"].endswith("acme-1.2.3.tgz")


def test_unreachable_cluster_is_exit_9(stack_chart, nself, helm_home, tmp_path, monkeypatch):
    config = tmp_path / "kubeconfig"
    port = _free_port()  # nothing listens there
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "u"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(config))
    r = nself(["helm.install", "--timeout", "5"], cwd=stack_chart)
    assert r.code == 9 and "To fix" in r.err, r.err
    for helm in ("helm", "helm4"):          # --atomic reaches each helm in its own spelling
        r = nself(["helm.install", "--timeout", "5", "--atomic"], cwd=stack_chart,
                  env={"NSELF_HELM": shutil.which(helm)})
        assert r.code == 9 and "unknown flag" not in r.err, (helm, r.err)
    r = nself(["helm.status"], cwd=stack_chart)
    assert r.code == 9


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_folder(tmp_path):
    """A static HTTP server on 127.0.0.1 (a chart repository is an index.yaml and archives)."""
    folder = tmp_path / "repo"
    folder.mkdir()

    with serve_folder(folder) as url:
        yield folder, url


def test_repo_add_update_list_remove(stack_chart, nself, helm_home, http_folder):
    folder, url = http_folder
    subprocess.run([HELM, "package", str(stack_chart / "charts/acme"), "--destination", str(folder)],
                   check=True, capture_output=True)
    subprocess.run([HELM, "repo", "index", str(folder), "--url", url], check=True)
    assert nself(["helm.repo.add", "local", url], cwd=stack_chart).code == 0
    assert nself(["helm", "repo", "update"], cwd=stack_chart).code == 0
    r = nself(["helm.repo.list", "--json"], cwd=stack_chart)
    assert r.json() == [{"name": "local", "url": url}]
    found = subprocess.run([HELM, "search", "repo", "local/acme", "-o", "json"], capture_output=True,
                           text=True, check=True)
    assert '"local/acme"' in found.stdout
    assert nself(["helm.repo.remove", "local"], cwd=stack_chart).code == 0
    r = nself(["helm", "repo", "--json"], cwd=stack_chart)
    assert r.code == 0 and r.json() == []


def test_push_to_an_oci_registry(stack_chart, nself, helm_home, oci_registry, tmp_path):
    r = nself(["helm.push", "--registry", f"oci://{oci_registry}/charts", "--plain-http"], cwd=stack_chart)
    assert r.code == 0, r.err
    version = yaml.safe_load((stack_chart / "charts/acme/Chart.yaml").read_text())["version"]
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    out = subprocess.run([HELM, "pull", f"oci://{oci_registry}/charts/acme", "--version", version,
                          "--plain-http", "--destination", str(pulled)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (pulled / f"acme-{version}.tgz").is_file()


@pytest.fixture
def upload_api():
    """A fake of ChartMuseum's upload API: POST /api/charts stores the archive; 409 on repeats."""
    received: list[bytes] = []
    stored: set[tuple[str, str]] = set()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(body))) as archive:
                chart_yaml = next(m for m in archive.getmembers() if m.name.endswith("/Chart.yaml"))
                meta = yaml.safe_load(archive.extractfile(chart_yaml).read())
            key = (meta["name"], str(meta["version"]))
            if self.path != "/api/charts":
                self.send_response(404)
            elif key in stored:      # like ChartMuseum: a name and version are stored once
                self.send_response(409)
            else:
                stored.add(key)
                received.append(body)
                self.send_response(201)
            self.end_headers()
            self.wfile.write(b'{"saved": true}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()


def test_push_to_a_chart_repository_upload_api(stack_chart, nself, helm_home, upload_api):
    url, received = upload_api
    r = nself(["helm.push", "--registry", url], cwd=stack_chart)
    assert r.code == 0, r.err
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(received[0]))) as archive:
        assert "acme/Chart.yaml" in archive.getnames()
    r = nself(["helm.push", "--registry", url], cwd=stack_chart)
    assert r.code == 1 and "already exists" in r.err


def test_push_needs_a_registry(stack_chart, nself):
    r = nself(["helm.push"], cwd=stack_chart)
    assert r.code == 2 and "--registry" in r.err


@pytest.mark.skipif(not os.environ.get("NSELF_TEST_CLUSTER"),
                    reason="not run: set NSELF_TEST_CLUSTER=1 with KUBECONFIG pointing at a real cluster")
def test_install_upgrade_rollback_uninstall_on_a_real_cluster(stack_chart, nself):
    for argv in (["helm.install", "--wait", "--timeout", "600"], ["helm.upgrade"], ["helm.history", "--json"],
                 ["helm.rollback"], ["helm.status", "--json"], ["helm.uninstall", "--yes"]):
        r = nself(argv, cwd=stack_chart)
        assert r.code == 0, (argv, r.err)
