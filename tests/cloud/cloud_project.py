"""What the cloud tests share: a project folder with its own credentials file location, a
deploy key, and the inventory nself wrote. Test modules load it with `pytest_plugins`."""
import subprocess

import pytest
import yaml


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "app"
    root.mkdir()
    (root / "compose.yaml").write_text("services: {web: {image: 'nginx:1.27'}}\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):       # AWS's home region is the default one
        monkeypatch.delenv(name, raising=False)
    return root


@pytest.fixture
def key(tmp_path):
    """A deploy key (private path) for tests that need no SSH server."""
    path = tmp_path / "deploy_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@pytest.fixture
def inventory(project):
    """inventory() → the servers nself wrote into the project's .nself/servers.yml ({} without it)."""
    def read() -> dict:
        path = project / ".nself/servers.yml"
        return yaml.safe_load(path.read_text())["servers"] if path.exists() else {}
    return read


def provision_with_ssh(nself, project, fake, host, tmp_path, provider: str, region: str):
    """`cloud.provision PROVIDER --size medium --trust-new` with cloud-init user data, the sshd
    `host` playing the instance the fake reports at 127.0.0.1 → the CLI's Result."""
    init = tmp_path / "init.yaml"
    init.write_text("#cloud-config\npackages: [htop]\n")
    return nself(["cloud.provision", provider, "--name", "web1", "--region", region, "--size", "medium",
                  "--ssh-key", f"{host.user_key}.pub", "--port", str(host.port), "--user", "root",
                  "--user-data", str(init), "--trust-new", "--yes", "--json"], cwd=project, env=fake.env())
